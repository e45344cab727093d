"""The real ComfyUI server the host benchmarks measure in: this pack, random full-size SD1.5
weights and a synthetic v2 motion module from the host-test cache."""

import contextlib
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from demo_models import built_model, link_model  # noqa: E402
from tests.host.server import ComfyServer  # noqa: E402

CHECKPOINT = "sd15_random.safetensors"
MOTION_MODULE = "mm_sd_v15_v2.safetensors"


@contextlib.contextmanager
def started_server(comfyui: Path, python: str):
    """A started ComfyServer with CHECKPOINT and MOTION_MODULE in its model folders; stopped on exit."""
    with tempfile.TemporaryDirectory() as base:
        server = ComfyServer(comfyui.resolve(), python, Path(base), REPO)
        try:
            server.start()
            link_model(built_model("sd15", comfyui, python), server.models_dir, "checkpoints", CHECKPOINT)
            link_model(built_model("motion_v2", comfyui, python), server.models_dir, "animatediff_models",
                       MOTION_MODULE)
            yield server
        finally:
            server.stop()
