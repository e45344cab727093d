"""The sample workflows and the UI <-> API converter they are generated with (no ComfyUI needed)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.workflow import apply_overrides, is_ui_format, spec_type, types_match, ui_to_api, ui_widget_names
from workflows.ui_graph import all_inputs, api_to_ui, is_link
from workflows import build_workflows as build

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS_DIR = REPO / "workflows"
BUILDER = WORKFLOWS_DIR / "build_workflows.py"
NAMES = ["txt2vid", "motionlora", "controlnet_depth", "long_context", "domain_adapter", "prompt_travel",
         "train_motionlora"]
USER_FILE_NAMES = {"v1-5-pruned-emaonly.safetensors", "mm_sd_v15_v2.ckpt", "v3_sd15_mm.ckpt", "v2_lora_ZoomIn.ckpt",
                   "v2_lora_PanLeft.ckpt", "control_v11f1p_sd15_depth.pth", "v3_sd15_adapter.ckpt",
                   "depth_frames.mp4", "camera_stills/", "none"}
SCHEMAS = build.load_schemas()


def read(name: str) -> dict:
    return json.loads((WORKFLOWS_DIR / name).read_text(encoding="utf-8"))


def api_of(name: str) -> dict:
    return read(f"api/{name}.api.json")


def nodes_of(api: dict, class_type: str) -> list[dict]:
    return [node for node in api.values() if node["class_type"] == class_type]


def check_links(api: dict, schemas: dict) -> list:
    """Every problem that would stop the server running the prompt's graph, as sentences: the
    samples' own check (a server validates a prompt itself when it is submitted)."""
    problems = []
    for node_id, node in api.items():
        label = f"node {node_id} ({node.get('class_type')})"
        schema = schemas.get(node.get("class_type"))
        if schema is None:
            problems.append(f"{label}: unknown node type")
            continue
        specs = all_inputs(schema)
        problems += [f"{label}: required input '{name}' is missing"
                     for name in schema["input"].get("required", {}) if name not in node["inputs"]]
        for name, value in node["inputs"].items():
            if name not in specs:
                problems.append(f"{label}: '{name}' is not an input of this node type")
                continue
            if not is_link(value):
                continue
            source = api.get(value[0])
            if source is None:
                problems.append(f"{label}: input '{name}' links to missing node {value[0]}")
                continue
            outputs = (schemas.get(source["class_type"]) or {}).get("output")
            if outputs is None:
                continue  # the unknown source type is reported on its own
            if not 0 <= value[1] < len(outputs):
                problems.append(f"{label}: input '{name}' links to output {value[1]} of node {value[0]} "
                                f"({source['class_type']}), which has {len(outputs)} outputs")
                continue
            output_type, input_type = spec_type(outputs[value[1]]), spec_type(specs[name])
            if not types_match(output_type, input_type):
                problems.append(f"{label}: input '{name}' takes {input_type} but node {value[0]} "
                                f"({source['class_type']}) output {value[1]} gives {output_type}")
    return problems


# --- the generated files ---------------------------------------------------------------

def test_generated_files_are_up_to_date():
    assert list(build.WORKFLOWS) == NAMES
    result = subprocess.run([sys.executable, str(BUILDER), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_check_mode_notices_a_changed_file(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "HERE", tmp_path)
    assert build.main(["--check"]) == 1  # nothing written yet
    assert build.main([]) == 0
    assert build.main(["--check"]) == 0
    edited = tmp_path / "txt2vid.json"
    edited.write_text(edited.read_text().replace("512", "768"))
    assert build.main(["--check"]) == 1


@pytest.mark.parametrize("name", NAMES)
def test_ui_file_converts_to_exactly_its_api_file(name):
    ui = read(f"{name}.json")
    assert is_ui_format(ui) and not is_ui_format(api_of(name))
    assert ui["version"] == 0.4
    assert ui_to_api(ui, SCHEMAS) == api_of(name)


@pytest.mark.parametrize("name", NAMES)
def test_every_link_type_matches(name):
    assert check_links(api_of(name), SCHEMAS) == []


def test_stored_schemas_are_exactly_the_node_types_used():
    used = {node["class_type"] for name in NAMES for node in api_of(name).values()}
    assert set(SCHEMAS) == used


def test_pack_node_types_are_registered_by_the_pack():
    registered = set(re.findall(r'^\s*"(\w+)":\s*\w+,$', (REPO / "nodes" / "__init__.py").read_text(), re.M))
    used = {t for t in SCHEMAS if t.startswith("AnimateDiff")}
    assert used and used <= registered


@pytest.mark.parametrize("name", NAMES)
def test_models_are_named_as_users_have_them(name):
    chosen = {node["inputs"][input_name] for class_type, input_name in build.FILE_CHOICES
              for node in nodes_of(api_of(name), class_type)}
    assert chosen and chosen <= USER_FILE_NAMES


def test_txt2vid_is_16_frames_at_512_to_h264():
    api = api_of("txt2vid")
    (latent,) = nodes_of(api, "EmptyLatentImage")
    assert (latent["inputs"]["width"], latent["inputs"]["height"], latent["inputs"]["batch_size"]) == (512, 512, 16)
    (combine,) = nodes_of(api, "AnimateDiffVideoCombine")
    assert combine["inputs"]["format"] == "video/h264-mp4"


def test_motionlora_chains_two_loras_with_strengths():
    api = api_of("motionlora")
    loras = nodes_of(api, "AnimateDiffApplyMotionLoRA")
    assert {n["inputs"]["lora_name"] for n in loras} == {"v2_lora_ZoomIn.ckpt", "v2_lora_PanLeft.ckpt"}
    feeds = {n["inputs"]["motion_model"][0] for n in loras}
    assert any(api[i]["class_type"] == "AnimateDiffApplyMotionLoRA" for i in feeds)  # the second takes the first's


def test_controlnet_depth_feeds_one_depth_frame_per_frame_through_context_windows():
    api = api_of("controlnet_depth")
    (frames,) = nodes_of(api, "AnimateDiffLoadFrames")
    frames_id = next(i for i, n in api.items() if n is frames)
    assert frames["inputs"]["frame_cap"] == 32
    (apply,) = nodes_of(api, "ControlNetApplyAdvanced")
    assert apply["inputs"]["image"] == [frames_id, 0]
    (latent,) = nodes_of(api, "EmptyLatentImage")
    assert latent["inputs"]["batch_size"] == [frames_id, 1]  # as many latent frames as depth frames
    (inject,) = nodes_of(api, "AnimateDiffInjectIntoModel")
    assert api[inject["inputs"]["context_options"][0]]["class_type"] == "AnimateDiffContextOptions"


def test_long_context_is_64_frames_in_a_closed_loop():
    api = api_of("long_context")
    (latent,) = nodes_of(api, "EmptyLatentImage")
    (context,) = nodes_of(api, "AnimateDiffContextOptions")
    assert latent["inputs"]["batch_size"] == 64 and context["inputs"]["closed_loop"] is True


def test_domain_adapter_compares_two_alphas_side_by_side():
    api = api_of("domain_adapter")
    injects = nodes_of(api, "AnimateDiffInjectIntoModel")
    assert sorted(n["inputs"]["adapter_alpha"] for n in injects) == [0.5, 1.0]
    assert {n["inputs"]["domain_adapter"] for n in injects} == {"v3_sd15_adapter.ckpt"}
    (stitch,) = nodes_of(api, "ImageStitch")
    assert stitch["inputs"]["direction"] == "right"


def test_prompt_travel_is_48_frames_of_four_seasons_with_freenoise():
    api = api_of("prompt_travel")
    (latent,) = nodes_of(api, "EmptyLatentImage")
    (travel,) = nodes_of(api, "AnimateDiffPromptSchedule")
    (context,) = nodes_of(api, "AnimateDiffContextOptions")
    (ksampler,) = nodes_of(api, "KSampler")
    assert latent["inputs"]["batch_size"] == 48 and api[travel["inputs"]["latent"][0]] is latent
    assert len(travel["inputs"]["schedule"].splitlines()) == 4 and context["inputs"]["freenoise"] is True
    assert api[ksampler["inputs"]["positive"][0]] is travel


# --- the converter, on small hand-written schemas ---------------------------------------

def schema(required=None, optional=None, output=(), order=True) -> dict:
    entry = {"input": {"required": required or {}, "optional": optional or {}}, "output": list(output),
             "output_name": list(output), "display_name": "Shown"}
    if order:
        entry["input_order"] = {"required": list(required or {}), "optional": list(optional or {})}
    return entry


TEST_SCHEMAS = {
    "Source": schema({"seed": ["INT", {"default": 0, "control_after_generate": True}], "steps": ["INT"]},
                     output=["IMAGE", "INT"]),
    "Filter": schema({"image": ["IMAGE"], "amount": ["FLOAT", {"default": 0.5}]}, output=["IMAGE"]),
    "Sink": schema({"image": ["IMAGE"], "count": ["INT", {"default": 1}], "mode": [["a", "b"]]},
                   {"mask": ["MASK"]}),
    "Upload": schema({"file": [["x.mp4"], {"video_upload": True}], "cap": ["INT"]}, {"path": ["STRING"]},
                     output=["IMAGE"]),
    "Anything": schema({"value": ["*"]}, output=["*"]),
}


def ui_node(node_id, type_, widgets=(), inputs=(), outputs=(), mode=0, title=None):
    node = {"id": node_id, "type": type_, "mode": mode, "widgets_values": list(widgets),
            "inputs": [dict(i) for i in inputs], "outputs": [dict(o) for o in outputs]}
    if title:
        node["title"] = title
    return node


def socket(name, type_, link, widget=False):
    entry = {"name": name, "type": type_, "link": link}
    if widget:
        entry["widget"] = {"name": name}
    return entry


def ui_graph(nodes, links):
    return {"nodes": nodes, "links": links, "version": 0.4}


def source_sink_graph(middle_mode=0, middle_type="Filter"):
    """Source -> middle -> Sink, with Source's IMAGE also offered to the middle node's input."""
    return ui_graph([
        ui_node(1, "Source", [5, "randomize", 20]),
        ui_node(2, middle_type, [0.3], [socket("image", "IMAGE", 1)], mode=middle_mode),
        ui_node(3, "Sink", [4, "b"], [socket("image", "IMAGE", 2)]),
    ], [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]])


def test_seed_control_value_is_skipped_and_links_become_pairs():
    api = ui_to_api(source_sink_graph(), TEST_SCHEMAS)
    assert api["1"]["inputs"] == {"seed": 5, "steps": 20}
    assert api["3"] == {"inputs": {"count": 4, "mode": "b", "image": ["2", 0]}, "class_type": "Sink",
                        "_meta": {"title": "Shown"}}


def test_widget_converted_to_a_socket_takes_the_link():
    graph = source_sink_graph()
    graph["nodes"][2]["inputs"].append(socket("count", "INT", 3, widget=True))
    graph["links"].append([3, 1, 1, 3, 1, "INT"])
    assert ui_to_api(graph, TEST_SCHEMAS)["3"]["inputs"]["count"] == ["1", 1]


def test_bypassed_node_passes_its_same_type_input_through():
    api = ui_to_api(source_sink_graph(middle_mode=4), TEST_SCHEMAS)
    assert "2" not in api and api["3"]["inputs"]["image"] == ["1", 0]


def test_bypassed_node_without_a_matching_input_leaves_a_required_input_unconnected():
    graph = source_sink_graph(middle_mode=4)
    graph["links"][1][5] = "MASK"  # the consumer wants a MASK; the bypassed node only has an IMAGE input
    with pytest.raises(ValueError, match=r"node 3 \(Sink\): required input 'image' is not connected"):
        ui_to_api(graph, TEST_SCHEMAS)


def test_muted_node_is_dropped_and_its_consumers_lose_the_input():
    with pytest.raises(ValueError, match=r"node 3 \(Sink\): required input 'image'"):
        ui_to_api(source_sink_graph(middle_mode=2), TEST_SCHEMAS)


def test_reroute_passes_through_and_note_is_dropped():
    graph = ui_graph([
        ui_node(1, "Source", [5, "fixed", 20]),
        ui_node(2, "Reroute", [], [socket("", "*", 1)]),
        ui_node(3, "Sink", [4, "a"], [socket("image", "IMAGE", 2)]),
        ui_node(4, "Note", ["remember the seed"]),
    ], [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]])
    api = ui_to_api(graph, TEST_SCHEMAS)
    assert set(api) == {"1", "3"} and api["3"]["inputs"]["image"] == ["1", 0]


def test_primitive_value_goes_into_the_inputs_it_feeds():
    graph = source_sink_graph()
    graph["nodes"].append(ui_node(9, "PrimitiveNode", [12, "fixed"]))
    graph["nodes"][2]["inputs"].append(socket("count", "INT", 5, widget=True))
    graph["links"].append([5, 9, 0, 3, 1, "INT"])
    api = ui_to_api(graph, TEST_SCHEMAS)
    assert "9" not in api and api["3"]["inputs"]["count"] == 12


def test_upload_button_value_is_skipped_where_the_frontend_puts_it():
    assert ui_widget_names(TEST_SCHEMAS["Upload"]) == ["file", "cap", "path", None]
    unordered = schema(TEST_SCHEMAS["Upload"]["input"]["required"], TEST_SCHEMAS["Upload"]["input"]["optional"],
                       order=False)
    assert ui_widget_names(unordered) == ["file", "cap", None, "path"]
    graph = ui_graph([ui_node(1, "Upload", ["x.mp4", 3, "/tmp/frames", "image"])], [])
    assert ui_to_api(graph, TEST_SCHEMAS)["1"]["inputs"] == {"file": "x.mp4", "cap": 3, "path": "/tmp/frames"}


def test_unknown_node_type_is_named():
    graph = ui_graph([ui_node(7, "NotInstalled", [1])], [])
    with pytest.raises(ValueError, match=r"node 7 \(NotInstalled\): unknown node type 'NotInstalled'"):
        ui_to_api(graph, TEST_SCHEMAS)


def test_a_workflow_saved_before_an_optional_input_existed_still_converts():
    schemas = {"Knob": schema({"amount": ["FLOAT"]}, {"extra": ["BOOLEAN", {"default": False}]})}
    assert ui_to_api(ui_graph([ui_node(1, "Knob", [0.3])], []), schemas)["1"]["inputs"] == {"amount": 0.3}
    with pytest.raises(ValueError, match="has 0 widget values but Knob takes 2"):
        ui_to_api(ui_graph([ui_node(1, "Knob", [])], []), schemas)  # a required one is still missing


def test_wrong_number_of_widget_values_is_named():
    graph = ui_graph([ui_node(1, "Source", [5, 20])], [])
    with pytest.raises(ValueError, match=r"node 1 \(Source\): has 2 widget values but Source takes 3"):
        ui_to_api(graph, TEST_SCHEMAS)


def test_api_to_ui_round_trips_links_seeds_uploads_and_converted_widgets():
    api = {
        "1": {"inputs": {"seed": 9, "steps": 3}, "class_type": "Source", "_meta": {"title": "Shown"}},
        "2": {"inputs": {"file": "x.mp4", "cap": ["1", 1], "path": ""}, "class_type": "Upload",
              "_meta": {"title": "My frames"}},
        "3": {"inputs": {"image": ["2", 0], "count": ["1", 1], "mode": "a"}, "class_type": "Sink",
              "_meta": {"title": "Shown"}},
    }
    ui = api_to_ui(api, TEST_SCHEMAS)
    assert ui_to_api(ui, TEST_SCHEMAS) == api
    nodes = {n["id"]: n for n in ui["nodes"]}
    assert nodes[1]["widgets_values"] == [9, "fixed", 3]
    assert nodes[2]["widgets_values"] == ["x.mp4", 0, "", "image"]  # a linked widget keeps its default
    assert nodes[2]["title"] == "My frames" and "title" not in nodes[1]
    assert nodes[3]["pos"][0] > nodes[2]["pos"][0] > nodes[1]["pos"][0]  # columns by depth, left to right
    assert (ui["last_node_id"], ui["last_link_id"]) == (3, 3)
    for link_id, from_node, from_slot, to_node, to_slot, link_type in ui["links"]:
        assert link_id in nodes[from_node]["outputs"][from_slot]["links"]
        assert nodes[to_node]["inputs"][to_slot]["link"] == link_id
        assert nodes[from_node]["outputs"][from_slot]["type"] == link_type


def test_groups_hold_their_nodes_and_nothing_else_and_the_note_comes_first():
    api = {
        "1": {"inputs": {"seed": 9, "steps": 3}, "class_type": "Source", "_meta": {"title": "Noise"}},
        "2": {"inputs": {"file": "x.mp4", "cap": ["1", 1], "path": ""}, "class_type": "Upload", "_meta": {}},
        "3": {"inputs": {"image": ["2", 0], "count": ["1", 1], "mode": "a"}, "class_type": "Sink", "_meta": {}},
    }
    ui = api_to_ui(api, TEST_SCHEMAS, note="**hello**", bands=[("Sources", {"Source", "Upload"})])
    ui_to_api(ui, TEST_SCHEMAS)  # the note is the frontend's own, left out of the prompt
    note = ui["nodes"][-1]
    assert (note["type"], note["widgets_values"], note["id"]) == ("MarkdownNote", ["**hello**"], 4)
    (group,) = ui["groups"]
    x, y, w, h = group["bounding"]

    def inside(node):
        return (x <= node["pos"][0] and node["pos"][0] + node["size"][0] <= x + w
                and y <= node["pos"][1] - 30 and node["pos"][1] + node["size"][1] <= y + h)

    assert group["title"] == "Sources" and [n["id"] for n in ui["nodes"] if inside(n)] == [1, 2]
    assert note["pos"][1] + note["size"][1] < y  # above everything else
    assert 0 < ui["extra"]["ds"]["scale"] <= 1


# --- editing and checking prompts --------------------------------------------------------

PROMPT = {
    "1": {"inputs": {"seed": 1, "steps": 2}, "class_type": "Source", "_meta": {"title": "Noise"}},
    "2": {"inputs": {"image": ["1", 0], "amount": 0.5}, "class_type": "Filter", "_meta": {"title": "Blur.v2"}},
    "3": {"inputs": {"image": ["2", 0], "count": 1, "mode": "a"}, "class_type": "Sink", "_meta": {"title": "Out"}},
    "4": {"inputs": {"image": ["2", 0], "count": 1, "mode": "a"}, "class_type": "Sink", "_meta": {"title": "Out 2"}},
}


def test_overrides_by_id_title_and_type_with_json_values():
    edited = apply_overrides(PROMPT, ["1.seed=42", "Blur.v2.amount=0.25", "Source.steps=7", "Out.mode=b",
                                      'Out 2.mode="[1]"', "3.count=true"])
    assert edited["1"]["inputs"] == {"seed": 42, "steps": 7}
    assert edited["2"]["inputs"]["amount"] == 0.25
    assert edited["3"]["inputs"] == {"image": ["2", 0], "count": True, "mode": "b"}
    assert edited["4"]["inputs"]["mode"] == "[1]"
    assert PROMPT["1"]["inputs"]["seed"] == 1  # the input prompt is left alone


@pytest.mark.parametrize("assignment, message", [
    ("Sink.count=2", r"'Sink' matches nodes 3, 4: use a node id"),
    ("Nowhere.count=2", r"no node 'Nowhere'.*1 'Noise'"),
    ("1.sead=3", r"has no input 'sead' \(it has seed, steps\)"),
    ("1.seed", r"expected node.input=value"),
    ("seed=3", r"expected node.input=value"),
])
def test_bad_overrides_are_explained(assignment, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(PROMPT, [assignment])


def test_check_links_passes_a_good_prompt_and_any_type_matches():
    prompt = dict(PROMPT, **{"5": {"inputs": {"value": ["1", 1]}, "class_type": "Anything"},
                             "6": {"inputs": {"image": ["5", 0], "count": ["1", 1], "mode": "a"},
                                   "class_type": "Sink"}})
    assert check_links(prompt, TEST_SCHEMAS) == []


def test_check_links_finds_every_kind_of_problem():
    prompt = {
        "1": {"inputs": {"seed": 1, "steps": 2}, "class_type": "Source"},
        "2": {"inputs": {"image": ["1", 1], "amount": 0.5}, "class_type": "Filter"},  # INT into IMAGE
        "3": {"inputs": {"image": ["9", 0], "mode": "a"}, "class_type": "Sink"},  # missing node and input
        "4": {"inputs": {"image": ["1", 5], "count": 1, "mode": "a", "colour": 3}, "class_type": "Sink"},
        "5": {"inputs": {}, "class_type": "Mystery"},
    }
    problems = check_links(prompt, TEST_SCHEMAS)
    assert problems == [
        "node 2 (Filter): input 'image' takes IMAGE but node 1 (Source) output 1 gives INT",
        "node 3 (Sink): required input 'count' is missing",
        "node 3 (Sink): input 'image' links to missing node 9",
        "node 4 (Sink): input 'image' links to output 5 of node 1 (Source), which has 2 outputs",
        "node 4 (Sink): 'colour' is not an input of this node type",
        "node 5 (Mystery): unknown node type",
    ]


def test_train_motionlora_trains_on_camera_clips_then_samples_with_the_result():
    api = api_of("train_motionlora")
    (clips,) = nodes_of(api, "AnimateDiffCameraMotionClips")
    clips_id = next(i for i, n in api.items() if n is clips)
    (train,) = nodes_of(api, "AnimateDiffTrainMotionLoRA")
    train_id = next(i for i, n in api.items() if n is train)
    assert api[clips["inputs"]["images"][0]]["class_type"] == "AnimateDiffLoadFrames"
    assert train["inputs"]["clips"] == [clips_id, 0] and train["inputs"]["frames_per_clip"] == [clips_id, 1]
    (inject,) = nodes_of(api, "AnimateDiffInjectIntoModel")
    assert inject["inputs"]["motion_model"] == [train_id, 0]
    previews = {tuple(n["inputs"]["images"]) for n in nodes_of(api, "PreviewImage")}
    assert previews == {(clips_id, 2), (train_id, 1)}  # the clips' contact sheet and the loss curve
