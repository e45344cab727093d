"""Synthetic model files for host tests: built once, kept in a cache, linked into each session.

The random SD1.5 files, the cache and the linking are the pack's ``demo_models.py`` (which
the command line's ``--demo`` uses too); the motion-model files are the tests' own.
"""

from pathlib import Path

import safetensors.torch
import torch

from demo_models import atomic_path


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
