"""The command line end to end, as a user runs it: ``python <pack> render workflows/txt2vid.json``
with ``--demo`` models, starting its own real ComfyUI.

The command runs with this test's Python (which has no aiohttp): only the server and the
model builder need ComfyUI's. Its server gets a fresh ``--base-directory`` per test.
"""

import subprocess
import sys
from pathlib import Path

from video.files import read_video_frames

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "workflows" / "txt2vid.json"
FRAMES, SIZE = 8, 32
TINY = ["--set", f"EmptyLatentImage.batch_size={FRAMES}", "--set", f"EmptyLatentImage.width={SIZE}",
        "--set", f"EmptyLatentImage.height={SIZE}", "--set", "KSampler.steps=1"]
RUN_TIMEOUT_SECONDS = 900


def render(comfyui_install, base: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO), "render", str(WORKFLOW), "--comfyui", str(comfyui_install.path),
               "--python", comfyui_install.python, "--cpu", "--base-directory", str(base), *args]
    # The demo's SD1.5 checkpoint is the harness's own build, in the one cache of built models.
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=RUN_TIMEOUT_SECONDS)


def test_demo_render_writes_the_video_and_says_it_is_noise(comfyui_install, tmp_path):
    out = tmp_path / "renders"

    result = render(comfyui_install, tmp_path / "base", "--demo", "--out", str(out), *TINY)

    assert result.returncode == 0, result.stderr
    printed, first_frame = result.stdout.splitlines()  # Video Combine's video and its first frame
    video = Path(printed)
    assert Path(first_frame).suffix == ".png" and Path(first_frame).is_file()
    assert video.is_absolute() and video.parent.parent == out.resolve() and video.suffix == ".mp4"
    decoded = read_video_frames(video)
    assert decoded.frames.shape == (FRAMES, SIZE, SIZE, 3)
    assert "output is noise" in result.stderr
    assert "KSampler [" in result.stderr  # the progress bar, drawn from the websocket events
    assert "Traceback" not in result.stderr


def test_failing_node_exits_non_zero_with_the_servers_error(comfyui_install, tmp_path):
    result = render(comfyui_install, tmp_path / "base", "--demo", *TINY,
                    "--set", "AnimateDiffLoadMotionModule.model_name=no_such_motion_module.ckpt")

    assert result.returncode == 1
    assert result.stdout == ""
    error = result.stderr[result.stderr.index("error: "):]
    assert "AnimateDiffLoadMotionModule" in error and "model_name" in error
    assert "no_such_motion_module.ckpt" in error
    assert "Traceback" not in result.stderr


def test_unknown_set_node_is_refused_before_a_server_starts(comfyui_install, tmp_path):
    base = tmp_path / "base"

    result = render(comfyui_install, base, "--set", "NoSuchNode.steps=3")

    assert result.returncode == 1
    assert "no node 'NoSuchNode'" in result.stderr
    assert "starting ComfyUI" not in result.stderr
    assert not base.exists()  # a started server would have had its folders made
