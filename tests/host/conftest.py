"""Fixtures for tests that run the pack inside real ComfyUI servers, one release at a time.

Host tests run only when ``COMFYUI_PATH`` names ComfyUI source trees, several separated by
``os.pathsep`` (``:``); ``COMFYUI_PYTHON`` names the Python of each, in the same order (a
Python with that release's requirements; default: this one). Each tree is copied before
use (the release trees may be read-only), and every host test runs once per release, with
the release in its id (``test_x[0.8.0]``). Without COMFYUI_PATH every test here is skipped
with one summary line.

Fixtures (session-scoped, one session per release, but for comfy_pack):
  comfyui_install  the release under test: its copied tree, Python and version
  comfy            one ComfyUI server (``server.ComfyServer``) with the pack symlinked in
  comfy_pack       the same server, failing the test with ComfyUI's log if the pack did not import
  sd15_checkpoint  name of a full-size random-weight SD1.5 checkpoint in models/checkpoints
  controlnet_file  name of a full-size random-weight SD1.5 ControlNet in models/controlnet
  motion_module / motion_lora / domain_adapter
                   factories: write a synthetic file into a models folder, return its name

Import this package's helpers relatively (``from .api import txt2vid_prompt``) so that
every test sees the same ``PromptFailed`` class.
"""

import atexit
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from demo_models import built_model, cache_dir, link_model
from tests.factories import FULL, domain_adapter_state_dict, motion_lora_state_dict, motion_state_dict

from . import model_files
from .model_files import write_once
from .server import ComfyServer

REPO_ROOT = Path(__file__).resolve().parents[2]  # the repository root is the pack
SKIP_REASON = ("host tests skipped: set COMFYUI_PATH to ComfyUI trees (and COMFYUI_PYTHON to their Pythons), "
               "separated by ':', to run them")
# What the pack and the harness import inside the host's Python (aiohttp: the websocket listener).
HOST_IMPORTS = {"torch": "torch", "einops": "einops", "safetensors": "safetensors", "numpy": "numpy",
                "imageio_ffmpeg": "imageio-ffmpeg", "aiohttp": "aiohttp"}

# Large enough that a motion module visibly changes a random SD1.5 model's output,
# small enough that every value stays finite.
DEFAULT_MOTION_STD = 0.02
DEFAULT_LORA_STD = 0.05
DEFAULT_DTYPE = torch.float16  # as most published files are; halves the cache


class HostRelease(NamedTuple):
    tree: Path
    python: str
    version: str


class ComfyUIInstall(NamedTuple):
    path: Path  # a writable copy of the release's tree
    python: str
    version: str


def configured_releases() -> list[HostRelease]:
    trees = [t for t in os.environ.get("COMFYUI_PATH", "").split(os.pathsep) if t]
    pythons = [p for p in os.environ.get("COMFYUI_PYTHON", "").split(os.pathsep) if p]
    if pythons and len(pythons) != len(trees):
        raise pytest.UsageError(f"COMFYUI_PYTHON names {len(pythons)} Pythons for {len(trees)} COMFYUI_PATH trees")
    releases = []
    for i, configured in enumerate(trees):
        tree = Path(configured).expanduser().resolve()
        if not (tree / "main.py").is_file():
            raise pytest.UsageError(f"COMFYUI_PATH: {configured} is not a ComfyUI tree (no main.py)")
        releases.append(HostRelease(tree, pythons[i] if pythons else sys.executable, release_version(tree)))
    return releases


def release_version(tree: Path) -> str:
    version_file = tree / "comfyui_version.py"
    found = re.search(r'__version__\s*=\s*"([^"]+)"', version_file.read_text()) if version_file.exists() else None
    return found[1] if found else tree.name


RELEASES = configured_releases()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Skipping here (not with a marker, not in a fixture) gives every skipped test the
    # same location, this line, so `-ra` folds them all into ONE summary line.
    if not RELEASES:
        pytest.skip(SKIP_REASON)


def check_host_python(release: HostRelease) -> None:
    """Stop the whole run with one line if the release's Python lacks what the pack imports."""
    probe = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    try:
        result = subprocess.run([release.python, "-c", probe, *HOST_IMPORTS], capture_output=True, text=True,
                                timeout=120)
    except OSError as error:
        pytest.exit(f"host tests: ComfyUI {release.version}: cannot run {release.python} ({error})", returncode=3)
    missing = result.stdout.split() if result.returncode == 0 else list(HOST_IMPORTS)
    if missing:
        packages = " ".join(HOST_IMPORTS[m] for m in missing)
        pytest.exit(f"host tests: ComfyUI {release.version}'s Python ({release.python}) lacks {packages}: run "
                    f"{release.python} -m pip install -r {REPO_ROOT / 'requirements.txt'} aiohttp", returncode=3)


@pytest.fixture(scope="session", params=RELEASES or [None], ids=lambda r: r.version if r else "no-host")
def comfyui_install(request, tmp_path_factory) -> ComfyUIInstall:
    release: HostRelease = request.param
    check_host_python(release)
    copy = tmp_path_factory.mktemp("comfyui-tree") / f"comfyui-{release.version}"
    shutil.copytree(release.tree, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return ComfyUIInstall(copy, release.python, release.version)


@pytest.fixture(scope="session")
def comfy(comfyui_install, tmp_path_factory) -> ComfyServer:
    server = ComfyServer(comfyui_install.path, comfyui_install.python, tmp_path_factory.mktemp("comfyui-base"),
                         REPO_ROOT)
    atexit.register(server.stop)  # a KeyboardInterrupt can skip fixture teardown
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def comfy_pack(comfy) -> ComfyServer:
    error = comfy.pack_import_error()
    if error:
        pytest.fail(f"ComfyUI could not import the pack:\n{error}", pytrace=False)
    return comfy


@pytest.fixture(scope="session")
def sd15_checkpoint(comfy, comfyui_install) -> str:
    path = built_model("sd15", comfyui_install.path, comfyui_install.python)
    return link_model(path, comfy.models_dir, "checkpoints", "sd15_random_fp16.safetensors")


@pytest.fixture(scope="session")
def controlnet_file(comfy, comfyui_install) -> str:
    path = built_model("controlnet", comfyui_install.path, comfyui_install.python, model_files.__file__)
    return link_model(path, comfy.models_dir, "controlnet", "control_v11f1p_sd15_depth_fp16.safetensors")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _cast(state_dict: dict, dtype: torch.dtype) -> dict:
    return {k: v.to(dtype) for k, v in state_dict.items()}


def _provide(comfy, folder: str, name: str, cache_key: str, make_state_dict) -> str:
    """Link ``models/<folder>/<name>`` to the cached file ``cache_key`` (built if missing)."""
    path = cache_dir() / f"{cache_key}{Path(name).suffix}"  # the suffix decides the file format
    link_model(path, comfy.models_dir, folder, name)  # first, so a name clash fails before any building
    write_once(path, make_state_dict)
    return name


@pytest.fixture(scope="session")
def motion_module(comfy):
    """``motion_module(name, family, seed=0, std=..., dtype=fp16, folder="animatediff_models") -> name``.

    A full-size motion module of ``family`` (see tests/factories.py) in that family's
    official key layout; ``.safetensors``, or a pickled plain dict for ``.ckpt``/``.pth``.
    """
    def make(name: str, family: str, seed: int = 0, std: float = DEFAULT_MOTION_STD, dtype=DEFAULT_DTYPE,
             folder: str = "animatediff_models") -> str:
        return _provide(comfy, folder, name, f"motion-{family}-seed{seed}-std{std}-{_dtype_name(dtype)}",
                        lambda: motion_state_dict(family, channels=FULL, seed=seed, std=std, dtype=dtype))

    return make


@pytest.fixture(scope="session")
def motion_lora(comfy):
    """``motion_lora(name, family="v2", seed=1, rank=4, std=..., spelling="original",
    folder="animatediff_motion_lora") -> name``: a full-size fp16 MotionLoRA."""
    def make(name: str, family: str = "v2", seed: int = 1, rank: int = 4, std: float = DEFAULT_LORA_STD,
             spelling: str = "original", folder: str = "animatediff_motion_lora") -> str:
        return _provide(
            comfy, folder, name, f"motion-lora-{family}-{spelling}-rank{rank}-seed{seed}-std{std}-float16",
            lambda: _cast(motion_lora_state_dict(family, channels=FULL, rank=rank, seed=seed, std=std,
                                                 spelling=spelling), torch.float16),
        )

    return make


@pytest.fixture(scope="session")
def domain_adapter(comfy):
    """``domain_adapter(name, folder="animatediff_adapters", seed=2, rank=8, std=...) -> name``:
    a full-size fp16 v3 domain adapter (LoRA on SD1.5 spatial attention)."""
    def make(name: str, folder: str = "animatediff_adapters", seed: int = 2, rank: int = 8,
             std: float = DEFAULT_LORA_STD) -> str:
        return _provide(
            comfy, folder, name, f"domain-adapter-rank{rank}-seed{seed}-std{std}-float16",
            lambda: _cast(domain_adapter_state_dict(channels=FULL, rank=rank, seed=seed, std=std), torch.float16),
        )

    return make
