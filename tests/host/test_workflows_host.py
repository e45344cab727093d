"""The sample workflows, run end to end in the real server at a tiny size, and Load Frames through its node.

Every model file is a synthetic one under the name the workflow uses; the depth video is
written into the server's input folder. Sizes, steps and frame counts are cut down with
`apply_overrides`, keeping context windows meaningful (more frames than one window holds).
"""

import re

import numpy as np
import pytest
import safetensors.torch
import torch

from video.files import read_video_frames, save_video
from cli.workflow import apply_overrides
from demo_models import cache_dir, link_model
from workflows import build_workflows as build

from .api import PromptFailed, node
from .model_files import write_depth_video, write_once

SIZE = 32
FPS = 8.0  # every workflow's Video Combine frame_rate
DEPTH_VIDEO_FRAMES = 24
LOAD_FRAMES = "AnimateDiffLoadFrames"


@pytest.fixture(scope="module")
def workflow_files(comfy, sd15_checkpoint, controlnet_file, motion_module, motion_lora, domain_adapter):
    """Every file the workflows name, under that name, plus the depth video in the input folder."""
    if comfy.pack_import_error():
        pytest.fail(f"ComfyUI could not import the pack:\n{comfy.pack_import_error()}", pytrace=False)
    if LOAD_FRAMES not in comfy.object_info():
        pytest.fail(f"{LOAD_FRAMES} is not registered: add it to NODE_CLASS_MAPPINGS in nodes/__init__.py")
    models = comfy.models_dir
    link_model((models / "checkpoints" / sd15_checkpoint).resolve(), models, "checkpoints", build.CHECKPOINT)
    controlnet = (models / "controlnet" / controlnet_file).resolve()
    # A .pth is read with torch.load: the same weights, pickled as a plain dict.
    pickled = write_once(cache_dir() / f"{controlnet.stem}.pth", lambda: safetensors.torch.load_file(str(controlnet)))
    link_model(pickled, models, "controlnet", build.DEPTH_CONTROLNET)
    motion_module(build.MOTION_V2, "v2")
    motion_module(build.MOTION_V3, "v3")
    motion_lora(build.ZOOM_IN, seed=1)
    motion_lora(build.PAN_LEFT, seed=2)
    domain_adapter(build.DOMAIN_ADAPTER, folder="loras")
    write_depth_video(comfy.base_dir / "input", build.DEPTH_VIDEO, DEPTH_VIDEO_FRAMES, FPS)
    write_stills(comfy.base_dir / "input" / build.STILLS_FOLDER, 3)
    return comfy


def write_stills(folder, count: int) -> None:
    """Test-pattern PNGs standing in for an artist's training images."""
    import subprocess

    from video.formats import ffmpeg_exe

    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=1",
                    "-frames:v", str(count), str(folder / "still_%02d.png")], check=True)


def tiny(api: dict, frames: int) -> list[str]:
    """Overrides for a small, one-step run of `frames` frames."""
    assignments = []
    for node_id, entry in api.items():
        inputs = entry["inputs"]
        if entry["class_type"] == "KSampler":
            assignments.append(f"{node_id}.steps=1")
        if entry["class_type"] in ("EmptyLatentImage", LOAD_FRAMES):
            assignments += [f"{node_id}.width={SIZE}", f"{node_id}.height={SIZE}"]
        if entry["class_type"] == "EmptyLatentImage" and not isinstance(inputs["batch_size"], list):
            assignments.append(f"{node_id}.batch_size={frames}")
        if entry["class_type"] == LOAD_FRAMES:
            assignments.append(f"{node_id}.frame_cap={frames}")
    return assignments


def run_workflow(comfy, name: str, frames: int, extra=()) -> tuple:
    """Run `name`'s workflow cut down to `frames` frames: (its decoded output video, the server's log)."""
    api = build.WORKFLOWS[name]()
    prompt = apply_overrides(api, tiny(api, frames) + list(extra))
    outputs = comfy.run(prompt)
    (combine_id,) = [i for i, n in prompt.items() if n["class_type"] == "AnimateDiffVideoCombine"]
    (video,) = outputs[combine_id]["images"]
    path = comfy.output_file(video)
    assert path.suffix == ".mp4"
    return read_video_frames(path), comfy.log_text()


def assert_video(decoded, frames: int, width: int = SIZE, height: int = SIZE):
    assert decoded.frames.shape == (frames, height, width, 3)
    assert decoded.fps == pytest.approx(FPS)


def test_stored_schemas_equal_the_live_servers(workflow_files):
    live = workflow_files.object_info()
    stored = build.load_schemas()
    for class_type in build.used_node_types():
        assert build.portable_schema(class_type, live[class_type]) == stored[class_type], (
            f"{class_type} changed: run python workflows/build_workflows.py --refresh <server url>")


def test_txt2vid(workflow_files):
    decoded, _ = run_workflow(workflow_files, "txt2vid", 16)
    assert_video(decoded, 16)


def test_motionlora(workflow_files):
    decoded, _ = run_workflow(workflow_files, "motionlora", 16)
    assert_video(decoded, 16)


@pytest.mark.parametrize("name, frames, plan", [
    ("controlnet_depth", 20, r"20 frames, 3 windows of 8 \(overlap >= 2\)"),  # 20 depth frames set the batch size
    ("long_context", 24, r"24 frames, \d+ windows of 8 \(overlap >= 2, around the loop\)"),
    ("prompt_travel", 40, r"40 frames, \d+ windows of 8 \(overlap >= 2\)"),  # with FreeNoise
])
def test_windowed_workflows_sample_in_the_planned_windows(workflow_files, name, frames, plan):
    decoded, log = run_workflow(workflow_files, name, frames, [
        "AnimateDiffContextOptions.context_length=8", "AnimateDiffContextOptions.context_overlap=2"])
    assert_video(decoded, frames)
    assert re.search(plan, log)


def test_domain_adapter_side_by_side(workflow_files):
    decoded, _ = run_workflow(workflow_files, "domain_adapter", 16)
    assert_video(decoded, 16, width=2 * SIZE)
    left, right = decoded.frames[..., :SIZE, :], decoded.frames[..., SIZE:, :]
    assert not np.array_equal(left, right)  # alpha 1.0 and 0.5 give different videos


def test_train_motionlora(workflow_files):
    decoded, log = run_workflow(workflow_files, "train_motionlora", 8, [
        "AnimateDiffCameraMotionClips.frames=8", "AnimateDiffCameraMotionClips.width=64",
        "AnimateDiffCameraMotionClips.height=64", "AnimateDiffTrainMotionLoRA.steps=2",
        "AnimateDiffTrainMotionLoRA.rank=4"])
    assert_video(decoded, 8)
    saved = sorted((workflow_files.models_dir / "animatediff_motion_lora").glob("my_zoom_in_*.safetensors"))
    assert saved and re.search(rf"saved {saved[-1].name}: 2 steps", log)


# --- Load Frames through the real node ---------------------------------------------------

SHADES = [8 * i + 20 for i in range(12)]  # frame i of the test video is grey SHADES[i]


@pytest.fixture(scope="module")
def shades_video(workflow_files) -> str:
    """A lossless 12-frame 16 fps video of flat greys in the input folder; returns its name."""
    frames = torch.tensor(SHADES, dtype=torch.float32).div(255).view(-1, 1, 1, 1).expand(-1, 48, 64, 3)
    input_dir = workflow_files.base_dir / "input"
    saved = save_video(frames, "video/ffv1-mkv", input_dir, "shades", frame_rate=16.0, preview_dir=input_dir)
    return saved.video.name


def load_frames_prompt(video="", path="", frame_cap=0, skip_first=0, every_nth=1, width=0, height=0) -> dict:
    """Load Frames -> Video Combine (near-lossless, at the loaded fps) and frame_count -> a latent batch size."""
    return {
        "load": node(LOAD_FRAMES, video=video, path=path, frame_cap=frame_cap, skip_first=skip_first,
                     every_nth=every_nth, width=width, height=height),
        "latent": node("EmptyLatentImage", width=16, height=16, batch_size=["load", 1]),
        "count": node("SaveLatent", samples=["latent", 0], filename_prefix="latents/load_frames"),
        "combine": node("AnimateDiffVideoCombine", images=["load", 0], frame_rate=["load", 2], loop_count=0,
                        filename_prefix="hosttest/load_frames", format="video/h264-mp4", pingpong=False,
                        save_output=True, crf=0, pix_fmt="auto", webp_quality=90, webp_lossless=False,
                        prores_profile="auto"),
    }


def run_load_frames(comfy, **inputs):
    outputs = comfy.run(load_frames_prompt(**inputs))
    (video,) = outputs["combine"]["images"]
    return read_video_frames(comfy.output_file(video)), len(comfy.latent(outputs, "count"))


def greys(frames) -> list[int]:
    return [int(frame[..., 0].astype(float).mean().round()) for frame in frames]


def test_load_frames_skip_every_nth_cap_and_resize(workflow_files, shades_video):
    decoded, count = run_load_frames(workflow_files, video=shades_video, skip_first=2, every_nth=3, frame_cap=3,
                                     width=32)
    assert count == 3 and decoded.frames.shape == (3, 24, 32, 3)  # height follows the aspect ratio
    assert greys(decoded.frames) == pytest.approx([SHADES[2], SHADES[5], SHADES[8]], abs=2)
    assert decoded.fps == pytest.approx(16.0 / 3, abs=0.01)


def test_load_frames_from_a_folder_path(workflow_files, tmp_path):
    frames = torch.tensor(SHADES[:5], dtype=torch.float32).div(255).view(-1, 1, 1, 1).expand(-1, 16, 16, 3)
    folder = save_video(frames, "image/png-sequence", tmp_path, "depth", frame_rate=8.0, preview_dir=tmp_path).video
    decoded, count = run_load_frames(workflow_files, video="any.mp4", path=str(folder))
    assert count == 5 and greys(decoded.frames) == pytest.approx(SHADES[:5], abs=2)


def test_load_frames_corrupt_file_is_a_node_error_naming_the_input(workflow_files):
    (workflow_files.base_dir / "input" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    with pytest.raises(PromptFailed, match=r"video: cannot read '.*broken\.mp4'"):
        run_load_frames(workflow_files, video="broken.mp4")


def test_load_frames_missing_file_is_refused_before_running(workflow_files):
    with pytest.raises(PromptFailed, match=r"video: '.*nowhere\.mp4' does not exist") as failure:
        run_load_frames(workflow_files, video="nowhere.mp4")
    assert "load" in failure.value.node_errors


def test_load_frames_skipping_past_the_end(workflow_files, shades_video):
    with pytest.raises(PromptFailed, match=r"video: .*no frames are left after skip_first 50"):
        run_load_frames(workflow_files, video=shades_video, skip_first=50)
