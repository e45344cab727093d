"""Synthetic model files for host tests: built once, kept in a cache, linked into each session.

The random SD1.5 checkpoint, the cache and the linking are the pack's ``demo_models.py``
(which the command line's ``--demo`` uses too); the ControlNet and the motion-model files
are the tests' own. The ControlNet is built like the checkpoint, by this file run as a script
with ComfyUI's Python:

    python tests/host/model_files.py controlnet OUT.safetensors --comfyui /path/to/ComfyUI
"""

import sys
from pathlib import Path

if __name__ == "__main__":  # the build script: the pack's modules are at the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import safetensors.torch  # noqa: E402
import torch  # noqa: E402

import demo_models  # noqa: E402
from video.whole_files import atomic_path  # noqa: E402


def write_once(path: Path, make_state_dict) -> Path:
    """Write ``make_state_dict()`` to ``path`` unless it is there already.

    ``.safetensors`` is written with safetensors, anything else (``.ckpt``, ``.pth``) as a
    pickled plain dict, as those files are found in the wild.
    """
    if not path.exists():
        state_dict = make_state_dict()
        with atomic_path(path) as partial:
            if path.suffix == ".safetensors":
                safetensors.torch.save_file(state_dict, str(partial))
            else:
                torch.save(state_dict, partial)
    return path


def write_depth_video(input_dir: Path, name: str, frames: int, fps: float) -> Path:
    """A small test-pattern video standing in for a depth-map video in ComfyUI's input folder."""
    import subprocess

    from video.formats import ffmpeg_exe

    path = input_dir / name
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={fps:g}",
                    "-frames:v", str(frames), "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def build_controlnet(generator) -> dict:
    """A full-size SD1.5 ControlNet with random weights, from ComfyUI's own class."""
    import comfy.cldm.cldm
    import comfy.ops

    config = {k: v for k, v in demo_models.SD15_UNET_CONFIG.items() if k != "out_channels"}
    control_model = comfy.cldm.cldm.ControlNet(
        **config, num_heads=8, num_head_channels=-1, hint_channels=3,
        dtype=torch.float32, device="cpu", operations=comfy.ops.disable_weight_init,
    )
    demo_models.randomize(control_model, generator)
    return demo_models.to_fp16(control_model.state_dict())


def check_controlnet(path: str):
    import comfy.controlnet
    import comfy.model_detection
    import comfy.supported_models
    import comfy.utils

    state_dict = comfy.utils.load_torch_file(path, safe_load=True)
    detected = comfy.model_detection.model_config_from_unet(state_dict, "", True)
    if type(detected) is not comfy.supported_models.SD15:
        raise SystemExit(f"{path}: ControlNet detected as {type(detected).__name__}, not SD15")
    if comfy.controlnet.load_controlnet(path) is None:
        raise SystemExit(f"{path}: ComfyUI's ControlNet loader rejected it")


if __name__ == "__main__":
    demo_models.run_build_script({"controlnet": (build_controlnet, check_controlnet)}, __doc__)
