"""Model files built once into a cache, and linked into the model folders a server reads.

Full-size random models take seconds to minutes to build, so they are kept in a cache
under names that encode everything that shapes their bytes; a server's models folder only
holds symlinks to them.
"""

import contextlib
import os
import subprocess
from pathlib import Path

from .child_process import TIED_TO_PARENT

BUILDER = Path(__file__).with_name("random_models.py")
# Part of every built file's name: bump it when random_models.py changes what it writes,
# so stale caches are rebuilt rather than silently reused.
BUILDER_VERSION = 1
BUILD_TIMEOUT_SECONDS = 1800


class BuildFailed(RuntimeError):
    """random_models.py failed; the message quotes its output."""


def cache_dir(env_var: str, default: Path) -> Path:
    """``$env_var`` if set, else ``default``; created if missing."""
    configured = os.environ.get(env_var)
    path = Path(configured).expanduser() if configured else default
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: Path):
    """A temporary name beside ``path`` to write to; renamed to ``path`` if the block succeeds,
    deleted if not. A concurrent reader sees the whole file or none of it."""
    # Keeps the suffix: loaders pick the file format from it.
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def built_model(kind: str, cache: Path, comfyui_path: Path | None, python: str) -> Path:
    """A random_models.py product (``sd15``, ``controlnet``, ``motion_v2``) in ``cache``,
    built with ``python`` (ComfyUI's) on first use."""
    path = cache / f"{kind}-random-seed0-v{BUILDER_VERSION}.safetensors"
    if path.exists():
        return path
    command = [python, str(BUILDER), kind]
    with atomic_path(path) as partial:
        command.append(str(partial))
        if comfyui_path is not None:
            command += ["--comfyui", str(comfyui_path)]
        try:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=BUILD_TIMEOUT_SECONDS, preexec_fn=TIED_TO_PARENT)
        except subprocess.TimeoutExpired:
            raise BuildFailed(f"building the random {kind} model took over {BUILD_TIMEOUT_SECONDS} s") from None
        if result.returncode != 0:
            raise BuildFailed(f"building the random {kind} model failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return path


def link_model(target: Path, models_dir: Path, folder: str, name: str) -> str:
    """Make ``target`` appear as ``<models_dir>/<folder>/<name>``; returns ``name`` for a node input."""
    link = models_dir / folder / name
    if link.is_symlink():
        if link.resolve() != target.resolve():
            raise ValueError(f"{folder}/{name} already names a different model ({link.resolve()})")
        return name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return name
