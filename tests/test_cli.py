"""The command line without ComfyUI: arguments, what is checked before a server starts, the
--demo rewriting and motion module, output paths, error texts, the websocket, the progress bar."""

import argparse
import io
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import demo_models
from animatediff_core import load_motion_model
from cli import main as cli_main
from cli.comfy_client import (ComfyClient, PromptInterrupted, describe_execution_error, describe_rejection,
                              output_files)
from cli.comfy_server import ComfyProcess
from cli.main import ProgressBar, deliver, read_workflow
from demo_models import CHECKPOINT_NAME, MOTION_MODULE_NAME, motion_v2_state_dict, point_at_demo_models
from tests.factories import TINY, motion_state_dict

REPO = Path(__file__).resolve().parents[1]
UI_WORKFLOW = REPO / "workflows" / "txt2vid.json"
API_WORKFLOW = REPO / "workflows" / "api" / "txt2vid.api.json"


@pytest.fixture
def comfyui_dir(tmp_path) -> Path:
    """Enough of a ComfyUI checkout for the argument checks."""
    (tmp_path / "ComfyUI").mkdir()
    (tmp_path / "ComfyUI" / "main.py").write_text("")
    return tmp_path / "ComfyUI"


# -- arguments ---------------------------------------------------------------------------

def test_render_arguments_become_a_request(comfyui_dir, tmp_path):
    request = cli_main.parse_request([
        "render", str(UI_WORKFLOW), "--comfyui", str(comfyui_dir), "--python", "/opt/py", "--set", "KSampler.steps=2",
        "--set", "Positive prompt.text=a cat", "--out", str(tmp_path / "out"), "--demo", "--timeout", "90", "--cpu",
        "--base-directory", str(tmp_path / "base"),
    ])

    assert request.workflow == UI_WORKFLOW
    assert request.comfyui == comfyui_dir.resolve()
    assert request.python == "/opt/py"
    assert request.assignments == ["KSampler.steps=2", "Positive prompt.text=a cat"]
    assert (request.out, request.demo, request.timeout, request.cpu) == (tmp_path / "out", True, 90.0, True)
    assert request.base_directory == (tmp_path / "base").resolve()
    assert request.connect is None


def test_connect_needs_no_comfyui_and_defaults_are_plain():
    request = cli_main.parse_request(["render", "w.json", "--connect", "http://127.0.0.1:8188"])

    assert request.connect == "http://127.0.0.1:8188"
    assert (request.comfyui, request.assignments, request.out, request.demo, request.cpu) == (None, [], None, False, False)


@pytest.mark.parametrize("argv, complaint", [
    (["render", "w.json"], "--comfyui PATH"),
    (["render", "w.json", "--connect", "http://192.168.1.5:8188"], "on this machine"),
    (["render", "w.json", "--connect", "http://127.0.0.1:8188", "--demo"], "drop --connect"),
    (["render", "w.json", "--comfyui", "{comfyui}", "--timeout", "0"], "--timeout"),
    (["render", "w.json", "--comfyui", "/nonexistent/ComfyUI"], "no main.py"),
])
def test_command_line_mistakes_exit_2_with_a_reason(argv, complaint, comfyui_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.parse_request([a.format(comfyui=comfyui_dir) for a in argv])

    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


# -- checks before any server starts -----------------------------------------------------

def test_unknown_set_node_fails_before_a_server_starts(comfyui_dir, monkeypatch, capsys):
    def no_server(*args, **kwargs):
        raise AssertionError("a server was started")

    monkeypatch.setattr(ComfyProcess, "start", no_server)
    monkeypatch.setattr(demo_models, "prepare_demo_models", no_server)

    code = cli_main.main(["render", str(UI_WORKFLOW), "--comfyui", str(comfyui_dir), "--demo",
                          "--set", "NoSuchSampler.steps=2"])

    assert code == 1
    err = capsys.readouterr().err
    assert "no node 'NoSuchSampler'" in err
    assert "Traceback" not in err


def test_ui_workflow_set_targets_are_checked_by_id_title_and_type():
    # Input names of a UI node are only known from the server's schemas: not judged yet.
    read_workflow(UI_WORKFLOW, ["7.steps=1", "Positive prompt.text=a cat", "EmptyLatentImage.any_name=3"], demo=True)
    with pytest.raises(ValueError, match="'CLIPTextEncode' matches nodes"):
        read_workflow(UI_WORKFLOW, ["CLIPTextEncode.text=x"], demo=False)
    with pytest.raises(ValueError, match="expected node.input=value"):
        read_workflow(UI_WORKFLOW, ["KSampler.steps"], demo=False)


def test_api_prompt_set_nodes_are_checked_before_a_server_starts():
    read_workflow(API_WORKFLOW, ["KSampler.steps=1", "4.model_name=x.ckpt"], demo=False)
    with pytest.raises(ValueError, match="no node 'KSamplr'"):
        read_workflow(API_WORKFLOW, ["KSamplr.steps=1"], demo=False)


def test_demo_needs_a_loader_to_point_at_its_models(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}))

    with pytest.raises(ValueError, match="--demo found no CheckpointLoaderSimple or AnimateDiffLoadMotionModule"):
        read_workflow(path, [], demo=True)


@pytest.mark.parametrize("text, problem", [
    ("{not json", "is not JSON"),
    ('{"nodes": "x"}', "neither a ComfyUI workflow"),
    ("[1, 2]", "neither a ComfyUI workflow"),
    ("{}", "neither a ComfyUI workflow"),
])
def test_unusable_workflow_files_are_named(tmp_path, text, problem):
    path = tmp_path / "w.json"
    path.write_text(text)

    with pytest.raises(ValueError, match=problem):
        read_workflow(path, [], demo=False)


# -- --demo --------------------------------------------------------------------------------

def test_demo_points_the_loaders_of_an_api_prompt_at_its_files():
    prompt = json.loads(API_WORKFLOW.read_text())

    demo = point_at_demo_models(prompt)

    assert demo["1"]["inputs"] == {"ckpt_name": CHECKPOINT_NAME}
    assert demo["4"]["inputs"] == {"model_name": MOTION_MODULE_NAME}
    assert prompt["1"]["inputs"]["ckpt_name"] == "v1-5-pruned-emaonly.safetensors"  # a copy was changed
    assert {k: v for k, v in demo.items() if k not in ("1", "4")} == {k: v for k, v in prompt.items() if k not in ("1", "4")}


def test_demo_motion_module_loads_as_v2_in_the_official_layout(tmp_path):
    level_channels = (TINY[0], TINY[1], TINY[2], TINY[2])  # SD1.5's 320/640/1280/1280, scaled down
    state_dict = motion_v2_state_dict(torch.Generator().manual_seed(0), level_channels)
    path = tmp_path / "demo_mm.safetensors"
    save_file(state_dict, str(path))

    model = load_motion_model(path)

    assert (model.family, model.base_model, model.pe_length, model.has_mid_block) == ("v2", "sd15", 32, True)
    assert all(t.dtype == torch.float16 and torch.isfinite(t).all() for t in state_dict.values())
    # The layout the tests' factory writes from the spec's tables, independently of the core.
    official = motion_state_dict("v2", channels=TINY)
    assert {k: t.shape for k, t in state_dict.items()} == {k: t.shape for k, t in official.items()}


# -- outputs ---------------------------------------------------------------------------------

HISTORY_OUTPUTS = {
    "9": {"images": [{"filename": "txt2vid_00001.mp4", "subfolder": "AnimateDiff", "type": "output"}],
          "animated": [True]},
    "12": {"latents": [{"filename": "test_00001_.latent", "subfolder": "latents", "type": "output"}]},
    "13": {"images": [{"filename": "ComfyUI_temp_abc_00001_.png", "subfolder": "", "type": "temp"},
                      {"filename": "txt2vid_00001.mp4", "subfolder": "AnimateDiff", "type": "output"}]},
    "14": {"text": ["not a file"]},
}


def test_output_files_are_collected_from_a_history_entry_in_node_order():
    files = output_files(HISTORY_OUTPUTS)

    assert [f["filename"] for f in files] == ["txt2vid_00001.mp4", "test_00001_.latent", "ComfyUI_temp_abc_00001_.png"]


def test_output_files_are_found_in_the_started_servers_folders_or_at_view_urls(tmp_path):
    mp4, _, preview = output_files(HISTORY_OUTPUTS)
    client = ComfyClient("http://127.0.0.1:8188/")
    started = argparse.Namespace(out=None, connect=None, comfyui=tmp_path / "ComfyUI", base_directory=None)

    assert deliver(client, [mp4, preview], started) == [
        tmp_path / "ComfyUI" / "output" / "AnimateDiff" / "txt2vid_00001.mp4",
        tmp_path / "ComfyUI" / "temp" / "ComfyUI_temp_abc_00001_.png"]
    started.base_directory = tmp_path / "base"
    assert deliver(client, [mp4], started) == [tmp_path / "base" / "output" / "AnimateDiff" / "txt2vid_00001.mp4"]
    connected = argparse.Namespace(out=None, connect="http://127.0.0.1:8188")
    assert deliver(client, [mp4], connected) == [
        "http://127.0.0.1:8188/view?filename=txt2vid_00001.mp4&subfolder=AnimateDiff&type=output"]


def test_out_gets_each_file_through_view_in_its_subfolder(tmp_path, monkeypatch):
    mp4, latent, _ = output_files(HISTORY_OUTPUTS)
    client = ComfyClient("http://127.0.0.1:8188")
    monkeypatch.setattr(client, "view", lambda file_info: file_info["filename"].encode())

    copies = deliver(client, [mp4, latent], argparse.Namespace(out=tmp_path / "out"))

    assert copies == [tmp_path / "out" / "AnimateDiff" / "txt2vid_00001.mp4",
                      tmp_path / "out" / "latents" / "test_00001_.latent"]
    assert copies[0].read_bytes() == b"txt2vid_00001.mp4"
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == sorted(
        ["AnimateDiff", "latents", "txt2vid_00001.mp4", "test_00001_.latent"])  # no partial file left


# -- the server's error texts ----------------------------------------------------------------

def test_rejection_text_names_each_node_and_input():
    body = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                  "details": "", "extra_info": {}},
        "node_errors": {"4": {"class_type": "AnimateDiffLoadMotionModule", "dependent_outputs": ["9"], "errors": [
            {"type": "value_not_in_list", "message": "Value not in list",
             "details": "model_name: 'missing.ckpt' not in ['a.ckpt']", "extra_info": {}}]}},
    }

    text = describe_rejection(body)

    assert text.startswith("prompt rejected: Prompt outputs failed validation")
    assert "node '4' (AnimateDiffLoadMotionModule): Value not in list: model_name: 'missing.ckpt' not in" in text


def test_execution_error_text_is_the_node_and_exception_with_the_traceback_kept_aside():
    status = {"status_str": "error", "messages": [
        ["execution_start", {"prompt_id": "p"}],
        ["execution_error", {"prompt_id": "p", "node_id": "4", "node_type": "AnimateDiffLoadMotionModule",
                             "exception_type": "MotionModelError", "exception_message": "broken.ckpt: not a motion module",
                             "traceback": ["  File \"x.py\", line 1\n", "    raise\n"]}],
    ]}

    failure = describe_execution_error("p", status)

    assert str(failure) == ("prompt p failed in node '4' (AnimateDiffLoadMotionModule): "
                            "MotionModelError: broken.ckpt: not a motion module")
    assert "x.py" in failure.server_traceback and "x.py" not in str(failure)
    interrupted = describe_execution_error("p", {"messages": [
        ["execution_interrupted", {"node_id": "7", "node_type": "KSampler"}]]})
    assert isinstance(interrupted, PromptInterrupted) and "'7' (KSampler)" in str(interrupted)


# -- the websocket ---------------------------------------------------------------------------

def _frame(opcode: int, payload: bytes) -> bytes:
    """A server's websocket frame: unmasked, its length in 1, 2 or 8 bytes."""
    if len(payload) < 126:
        return bytes([0x80 | opcode, len(payload)]) + payload
    if len(payload) < 1 << 16:
        return bytes([0x80 | opcode, 126]) + len(payload).to_bytes(2, "big") + payload
    return bytes([0x80 | opcode, 127]) + len(payload).to_bytes(8, "big") + payload


def test_events_are_read_from_the_websocket_text_frames_only():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    events = [{"type": "progress", "data": {"value": i, "max": 9, "prompt_id": "p"}} for i in range(3)]
    wire = (_frame(1, json.dumps({"type": "status", "data": {}}).encode())
            + _frame(2, b"\x00" * 70000)  # a preview image
            + b"".join(_frame(1, json.dumps(e).encode()) for e in events[:2])
            + _frame(1, json.dumps(dict(events[2], pad="x" * 300)).encode()))

    def serve():
        connection, _ = listener.accept()
        request = connection.recv(4096)
        assert request.startswith(b"GET /ws?clientId=")
        connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        for start in range(0, len(wire), 1000):  # frames split across reads
            connection.sendall(wire[start:start + 1000])
        connection.close()

    threading.Thread(target=serve, daemon=True).start()
    client = ComfyClient(f"http://127.0.0.1:{port}")
    client.listen(timeout=10)
    received = []
    while len(received) < 3:
        new = client.receive(10)
        assert new, "the events did not arrive"
        received += new

    assert [e["data"]["value"] for e in received] == [0, 1, 2] and received[2]["pad"] == "x" * 300
    assert client.receive(0.2) == []  # closed by the server: nothing more, no error
    client.close()
    listener.close()


# -- progress --------------------------------------------------------------------------------

def test_progress_bar_redraws_one_line_from_events():
    stream = io.StringIO()
    bar = ProgressBar(stream, {"7": "KSampler", "9": "Video Combine"})

    for event in [
        {"type": "executing", "data": {"node": "7", "prompt_id": "p"}},
        {"type": "progress", "data": {"value": 1, "max": 4, "node": "7", "prompt_id": "p"}},
        {"type": "progress", "data": {"value": 4, "max": 4, "node": "7", "prompt_id": "p"}},
        {"type": "executing", "data": {"node": "9", "prompt_id": "p"}},
        {"type": "executing", "data": {"node": None, "prompt_id": "p"}},  # the prompt is done
    ]:
        bar.on_event(event)
    bar.finish()
    bar.finish()  # once is enough

    text = stream.getvalue()
    assert "\rKSampler [######..................] 1/4" in text
    assert "\rKSampler [########################] 4/4" in text
    assert text.endswith("\rVideo Combine ...".ljust(len("\rKSampler [########################] 4/4")) + "\n")
    assert text.count("\n") == 1


# -- failures while rendering ------------------------------------------------------------------

class FakeServer:
    def pack_import_error(self):
        return "ImportError: cannot import name 'X'"


class FakeClient:
    """A started server that knows no node type and renders until interrupted."""
    server = FakeServer()
    url = "http://127.0.0.1:8188"

    def __init__(self):
        self.interrupted = []

    def get_json(self, path):
        return {}

    def submit(self, prompt, extra_data=None):
        return "p"

    def wait(self, prompt_id, timeout, on_event):
        raise KeyboardInterrupt

    def interrupt(self, prompt_id):
        self.interrupted.append(prompt_id)


def test_an_unknown_node_type_comes_with_the_reason_the_pack_did_not_load(comfyui_dir, monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "_open_server", lambda request, cleanup: FakeClient())

    assert cli_main.main(["render", str(UI_WORKFLOW), "--comfyui", str(comfyui_dir)]) == 1
    err = capsys.readouterr().err
    assert "unknown node type" in err and "could not load this pack:\nImportError: cannot import name 'X'" in err


def test_ctrl_c_interrupts_the_prompt_and_exits_130(comfyui_dir, monkeypatch, capsys):
    client = FakeClient()
    monkeypatch.setattr(cli_main, "_open_server", lambda request, cleanup: client)

    assert cli_main.main(["render", str(API_WORKFLOW), "--comfyui", str(comfyui_dir)]) == 130
    assert client.interrupted == ["p"]
    assert capsys.readouterr().err.endswith("interrupted\n")


# -- the started server's model paths ----------------------------------------------------------

def test_the_pack_is_added_to_the_server_unless_it_is_installed(tmp_path):
    comfyui = tmp_path / "ComfyUI"
    (comfyui / "custom_nodes").mkdir(parents=True)
    server = ComfyProcess(comfyui, "python", REPO, tmp_path / "work", model_folders={"checkpoints": tmp_path / "ck"})
    server.work_dir.mkdir()

    config = server._write_paths_config().read_text()
    assert f'custom_nodes: "{tmp_path / "work" / "pack"}"' in config
    assert (tmp_path / "work" / "pack" / "animatediff_pack").resolve() == REPO
    assert f'checkpoints: "{tmp_path / "ck"}"' in config

    (comfyui / "custom_nodes" / "ComfyUI-AnimateDiff").symlink_to(REPO)
    config = server._write_paths_config().read_text()
    assert "custom_nodes" not in config
    assert server.pack_name == "ComfyUI-AnimateDiff"  # whose import errors the log is searched for


def test_the_command_line_needs_no_torch():
    """It only talks to a server: a Python without torch (or numpy) runs it, --out and --demo included."""
    script = ("import sys; sys.modules.update(torch=None, numpy=None)  # importing either now fails\n"
              "import cli.main, demo_models, video.whole_files\n"
              "cli.main.parse_request(['render', 'w.json', '--connect', 'http://127.0.0.1:8188'])\n")
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True)
