"""A real ComfyUI server in a subprocess, with this pack installed, and a client for it.

The product's command line (``cli/``) does the work: ``ComfyProcess`` starts and stops the
server, ``ComfyClient`` speaks HTTP and receives the websocket events. This class gives each
test session a fresh base folder and adds what only tests need.
"""

import time
from pathlib import Path

import safetensors.torch

from cli.comfy_server import ComfyProcess

from .api import PromptFailed

FINISH_EVENTS = ("execution_success", "execution_error", "execution_interrupted")


class ComfyServer:
    def __init__(self, comfyui_path: Path, python: str, base_dir: Path, pack_dir: Path):
        self.base_dir = base_dir
        self.models_dir = base_dir / "models"
        self.process = ComfyProcess(
            comfyui_path, python, pack_dir, work_dir=base_dir, base_directory=base_dir,
            # Cross-attention through PyTorch's kernel: ComfyUI's CPU default is much slower.
            comfy_args=("--cpu", "--use-pytorch-cross-attention"),
        )
        self.client = None

    @property
    def url(self) -> str:
        return self.process.url

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 120.0):
        for name in ("models", "input", "output", "temp"):
            (self.base_dir / name).mkdir(parents=True, exist_ok=True)
        self.client = self.process.start(timeout)
        self.client.listen(timeout=30.0)

    def stop(self):
        if self.client is not None:
            self.client.close()
        self.process.stop()

    # -- the server's log ------------------------------------------------------------------

    def log_text(self) -> str:
        return self.process.log_text()

    def pack_import_error(self) -> str | None:
        return self.process.pack_import_error()

    # -- prompts ---------------------------------------------------------------------------

    def object_info(self) -> dict:
        return self.client.get_json("/object_info")

    def submit(self, prompt: dict) -> str:
        return self.client.submit(prompt)

    def wait(self, prompt_id: str, timeout: float = 900) -> dict:
        """The finished prompt's ``outputs``; raises PromptFailed (PromptInterrupted) otherwise,
        with the server's traceback in the message."""
        try:
            return self.client.wait(prompt_id, timeout)
        except PromptFailed as failure:
            if failure.server_traceback:
                raise type(failure)(f"{failure}\n{failure.server_traceback}", failure.node_errors,
                                    failure.server_traceback) from None
            raise

    def run(self, prompt: dict, timeout: float = 900) -> dict:
        return self.wait(self.submit(prompt), timeout)

    def interrupt(self, prompt_id: str | None = None):
        """Stop the running prompt (only if it is ``prompt_id``, when given)."""
        self.client.interrupt(prompt_id)

    def wait_for_progress(self, prompt_id: str, min_value: int, timeout: float = 300) -> dict:
        """Block until a sampler of ``prompt_id`` reports step ``min_value``; returns that event's data.

        Sampler callbacks send ``progress`` after each step, so interrupting right after
        this returns stops the prompt mid-sampling.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.process.raise_if_dead()
            for event in self.client.receive(min(1.0, deadline - time.monotonic())):
                data = event.get("data") or {}
                if data.get("prompt_id") != prompt_id:
                    continue
                if event["type"] == "progress" and data["value"] >= min_value:
                    return data
                if event["type"] in FINISH_EVENTS:
                    raise PromptFailed(f"prompt {prompt_id} ended ({event['type']}) before progress "
                                       f"reached {min_value}")
        raise PromptFailed(f"prompt {prompt_id}: no progress {min_value} within {timeout:.0f} s")

    # -- files -----------------------------------------------------------------------------

    def output_file(self, file_info: dict) -> Path:
        """The file a UI result entry ``{"filename", "subfolder", "type"}`` names."""
        return self.base_dir / file_info.get("type", "output") / file_info.get("subfolder", "") / file_info["filename"]

    def view(self, file_info: dict) -> bytes:
        """The same file, fetched through ``GET /view`` as the frontend does."""
        return self.client.view(file_info)

    def latent(self, outputs: dict, node_id: str):
        """The latent batch (frames, 4, H/8, W/8) that the stock SaveLatent node ``node_id`` wrote."""
        (file_info,) = outputs[node_id]["latents"]
        return safetensors.torch.load_file(str(self.output_file(file_info)))["latent_tensor"]
