"""Synthetic model files for host tests: built once, kept in a cache, linked into each session.

Full-size files take seconds to minutes to build, so they live in
``$ANIMATEDIFF_TEST_CACHE`` (default ``~/.cache/animatediff-pack-tests``) under names
that encode everything that shapes their bytes; a session's models folder only holds
symlinks to them.
"""

import os
import subprocess
from pathlib import Path

import safetensors.torch
import torch

# Part of every cached SD1.5/ControlNet name: bump it when build_host_models.py changes
# what it writes, so stale caches are rebuilt rather than silently reused.
BUILDER_VERSION = 1
BUILD_TIMEOUT_SECONDS = 1800
BUILDER = Path(__file__).with_name("build_host_models.py")


def cache_dir() -> Path:
    configured = os.environ.get("ANIMATEDIFF_TEST_CACHE")
    path = Path(configured) if configured else Path.home() / ".cache" / "animatediff-pack-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def host_built_model(kind: str, comfyui_path: Path, python: str) -> Path:
    """A ``build_host_models.py`` product (``sd15`` or ``controlnet``), built on first use."""
    path = cache_dir() / f"{kind}-random-seed0-v{BUILDER_VERSION}.safetensors"
    if not path.exists():
        result = subprocess.run(
            [python, str(BUILDER), kind, str(path), "--comfyui", str(comfyui_path)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building the {kind} test model failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return path


def write_once(path: Path, make_state_dict) -> Path:
    """Write ``make_state_dict()`` to ``path`` unless it is there already.

    ``.safetensors`` is written with safetensors, anything else (``.ckpt``, ``.pth``) as a
    pickled plain dict, as those files are found in the wild.
    """
    if not path.exists():
        partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
        state_dict = make_state_dict()
        if path.suffix == ".safetensors":
            safetensors.torch.save_file(state_dict, str(partial))
        else:
            torch.save(state_dict, partial)
        os.replace(partial, path)  # atomic: a concurrent session sees all of it or nothing
    return path


def link_model(target: Path, models_dir: Path, folder: str, name: str) -> str:
    """Make ``target`` appear as ``models/<folder>/<name>``; returns ``name`` for a node input."""
    link = models_dir / folder / name
    if link.is_symlink():
        if link.resolve() != target.resolve():
            raise ValueError(f"{folder}/{name} already names a different test model ({link.resolve()})")
        return name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return name
