"""What artists see, in the real frontend of each host release (1.27.10 with 0.3.64, 1.35.9 with
0.8.0) in headless Chromium: the pack's nodes, the sample workflows, and workflows dropped back
from Video Combine's files."""

import copy
import json
import time
from pathlib import Path

import pytest

from video.formats import FORMATS, RESTORES_WORKFLOW
from workflows import build_workflows as build

from .api import node
from .frontend import open_frontend
from .model_files import write_depth_video

WORKFLOWS = Path(build.__file__).resolve().parent
MIME = {"gif": "image/gif", "webp": "image/webp", "mp4": "video/mp4", "webm": "video/webm",
        "mov": "video/quicktime", "mkv": "video/x-matroska", "png": "image/png"}


@pytest.fixture(scope="session")
def frontend(comfy):
    if comfy.pack_import_error():
        pytest.fail(f"ComfyUI could not import the pack:\n{comfy.pack_import_error()}", pytrace=False)
    # The depth video the controlnet_depth workflow's note asks for, so its preview loads.
    write_depth_video(comfy.base_dir / "input", build.DEPTH_VIDEO, 24, 8.0)
    frontend, close = open_frontend(comfy)
    yield frontend
    close()


def test_every_pack_node_is_registered_with_a_description_and_input_tooltips(frontend, comfy_pack):
    pack_types = sorted(t for t, info in comfy_pack.object_info().items() if info.get("category") == "AnimateDiff")
    assert len(pack_types) == 8
    registered = frontend.evaluate("""(types) => Object.fromEntries(types.map(type => {
        const nodeClass = LiteGraph.registered_node_types[type];
        if (!nodeClass) return [type, null];
        const data = nodeClass.nodeData;
        const specs = Object.entries({...(data.input.required || {}), ...(data.input.optional || {})});
        return [type, {description: data.description,
                       untipped: specs.filter(([, spec]) => !(spec[1] && spec[1].tooltip)).map(([name]) => name)}];
    }))""", pack_types)
    for node_type, found in registered.items():
        assert found is not None, f"{node_type} is not registered in the frontend"
        assert found["description"], f"{node_type} has no description"
        assert found["untipped"] == [], f"{node_type}: inputs without a tooltip"


def server_inputs(prompt: dict, object_info: dict) -> dict:
    """The prompt as the server reads it: inputs a node does not declare (the frontend's own widgets,
    such as the video preview 1.35 adds to Load Frames) are ignored there."""
    def declared(class_type):
        spec = object_info[class_type]["input"]
        return {**spec.get("required", {}), **spec.get("optional", {})}

    return {node_id: {**node, "inputs": {k: v for k, v in node["inputs"].items() if k in declared(node["class_type"])}}
            for node_id, node in prompt.items()}


@pytest.mark.parametrize("name", list(build.WORKFLOWS))
def test_sample_workflow_opens_without_missing_nodes_and_queues_as_its_api_twin(frontend, comfy, name):
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    frontend.errors.clear()
    frontend.load(ui)
    unknown = frontend.evaluate("() => window.app.graph._nodes.map(n => n.type)"
                                ".filter(type => !LiteGraph.registered_node_types[type])")
    assert unknown == [] and "missing" not in frontend.visible_dialog_text().lower()
    frontend.page.wait_for_load_state("networkidle")
    assert unexpected(frontend.errors) == [], frontend.errors
    queued = server_inputs(frontend.prompt(), comfy.object_info())
    assert queued == json.loads((WORKFLOWS / "api" / f"{name}.api.json").read_text())


def unexpected(errors: list[str]) -> list[str]:
    """Browser errors but one known and left alone: the frontend previews a Load Frames folder
    choice (train_motionlora's image folder) as if it were a file, and the server has no such file."""
    folder_preview = f"/view?type=input&filename={build.STILLS_FOLDER.rstrip('/')}&"
    return [e for e in errors if folder_preview not in e]


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _within(inner, outer) -> bool:
    return (outer[0] <= inner[0] and inner[0] + inner[2] <= outer[0] + outer[2]
            and outer[1] <= inner[1] and inner[1] + inner[3] <= outer[1] + outer[3])


@pytest.mark.parametrize("name", list(build.WORKFLOWS))
def test_sample_workflow_is_readable_at_open(frontend, name):
    """At the frontend's own node sizes: nothing overlaps, everything is in view, groups hold whole nodes."""
    frontend.load(json.loads((WORKFLOWS / f"{name}.json").read_text()))
    layout = frontend.evaluate("""() => {
        const canvas = window.app.canvas, ds = canvas.ds, graph = window.app.graph;
        // What is not under the side bar (64 px) and the top bars (80 px), in canvas pixels.
        const rect = canvas.canvas.getBoundingClientRect();
        const left = Math.max(rect.x, 64) - rect.x, top = Math.max(rect.y, 80) - rect.y;
        return {
            view: [left / ds.scale - ds.offset[0], top / ds.scale - ds.offset[1],
                   (rect.width - left) / ds.scale, (rect.height - top) / ds.scale],
            nodes: graph._nodes.map(n => ({title: n.title, type: n.type, box: Array.from(n.getBounding())})),
            groups: (graph._groups || graph.groups || []).map(g => ({title: g.title,
                                                                   box: Array.from(g._bounding || g.bounding)})),
        };
    }""")
    nodes, groups = layout["nodes"], layout["groups"]
    overlapping = [(a["title"], b["title"]) for i, a in enumerate(nodes) for b in nodes[i + 1:]
                   if _overlap(a["box"], b["box"])]
    assert overlapping == []
    assert [n["title"] for n in nodes if not _within(n["box"], layout["view"])] == []
    for group in groups:
        cut = [n["title"] for n in nodes if _overlap(n["box"], group["box"]) and not _within(n["box"], group["box"])]
        assert cut == [], f"group {group['title']} cuts through {cut}"
    bands = build.BANDS_OF.get(name, build.BANDS)
    assert {g["title"] for g in groups} == {title for title, types in bands if any(n["type"] in types for n in nodes)}
    assert len(groups) >= 3
    assert [n["type"] for n in nodes].count("MarkdownNote") == 1


def video_combine_files(comfy, format_name: str, workflow: dict) -> dict:
    """[the video (for a PNG sequence, its first frame), the first-frame PNG beside it] that Video
    Combine writes with ``workflow`` embedded, as {filename, subfolder, type} entries."""
    prompt = {
        "image": node("EmptyImage", width=64, height=48, batch_size=4, color=0x3366CC),
        "combine": node("AnimateDiffVideoCombine", images=["image", 0], frame_rate=8.0, loop_count=0,
                        filename_prefix=f"dragback/{format_name.split('/')[1]}", format=format_name,
                        pingpong=False, save_output=True, crf=19, pix_fmt="auto", webp_quality=90,
                        webp_lossless=False, prores_profile="auto"),
    }
    outputs = comfy.wait(comfy.client.submit(prompt, {"extra_pnginfo": {"workflow": workflow}}))
    written = outputs["combine"]["animatediff_files"]
    if FORMATS[format_name].is_sequence:
        folder = written[0]
        return [{"filename": "frame_00001.png", "subfolder": f"{folder['subfolder']}/{folder['filename']}",
                 "type": "output"}]
    return written


def restores(frontend, comfy, file_info: dict, marker: str) -> bool:
    frontend.evaluate("() => window.app.graph.clear()")
    name = file_info["filename"]
    frontend.drop_file(comfy.view(file_info), name, MIME[name.rsplit(".", 1)[1]])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if marker in frontend.node_titles():
            return True
        time.sleep(0.25)
    return False


@pytest.mark.parametrize("format_name", list(FORMATS))
def test_dropping_a_file_restores_the_workflow_exactly_where_the_pack_says_it_does(frontend, comfy_pack,
                                                                                   format_name):
    marker = f"dropped back from {format_name}"
    workflow = copy.deepcopy(json.loads((WORKFLOWS / "txt2vid.json").read_text()))
    next(n for n in workflow["nodes"] if n["type"] == "AnimateDiffVideoCombine")["title"] = marker
    video, *first_frame = video_combine_files(comfy_pack, format_name, workflow)
    assert restores(frontend, comfy_pack, video, marker) == (format_name in RESTORES_WORKFLOW)
    assert all(restores(frontend, comfy_pack, png, marker) for png in first_frame)


def test_the_packs_template_cards_are_the_sample_workflows_and_each_opens(frontend, comfy):
    status, body = comfy.client.request("GET", "/api/workflow_templates")
    assert status == 200
    cards = json.loads(body)[comfy.process.pack_name]
    assert sorted(cards) == sorted(build.WORKFLOWS)  # no API twin or schema file among them
    for name in cards:
        frontend.errors.clear()
        # What a click on the card does: fetch the template from the pack's folder, load it.
        types = frontend.evaluate("""async ([pack, name]) => {
            const response = await fetch(`api/workflow_templates/${pack}/${name}.json`);
            await window.app.loadGraphData(await response.json());
            return window.app.graph._nodes.map(node => node.type);
        }""", [comfy.process.pack_name, name])
        assert "AnimateDiffInjectIntoModel" in types, name
        frontend.page.wait_for_load_state("networkidle")
        assert unexpected(frontend.errors) == [], (name, frontend.errors)
