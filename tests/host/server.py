"""A real ComfyUI server in a subprocess, with this pack installed, and a client for it.

HTTP goes through urllib (the test environment needs nothing else). Waiting for a prompt
polls ``/history/<id>``: the entry appears exactly when the prompt has finished, whatever
happened. Progress events exist only on the websocket, so a listener subprocess running
with ComfyUI's Python (``ws_listener.py``, aiohttp) streams them to us as JSON lines.
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import safetensors.torch

from .api import PromptFailed, describe_execution_error, describe_rejection

PACK_NAME = "animatediff_pack"
LOG_NAME = "comfyui.log"
POLL_SECONDS = 0.2
FINISH_EVENTS = ("execution_success", "execution_error", "execution_interrupted")

# Loopback only: never let an http_proxy setting route these requests elsewhere.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _stop_with_parent():
    """Runs in the child just before exec: have the kernel SIGTERM it when the test process
    dies, so a test run killed outright (``timeout``, SIGKILL) leaves no server behind."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


CHILD_SETUP = _stop_with_parent if sys.platform.startswith("linux") else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ComfyServer:
    def __init__(self, comfyui_path: Path, python: str, base_dir: Path, pack_dir: Path):
        self.comfyui_path = comfyui_path
        self.python = python
        self.base_dir = base_dir
        self.models_dir = base_dir / "models"
        self.pack_dir = pack_dir
        self.client_id = uuid.uuid4().hex
        self.url = ""
        self._server = None
        self._listener = None
        self._events = []
        self._listener_ended = False
        self._events_changed = threading.Condition()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 120.0):
        for name in ("custom_nodes", "models", "input", "output", "temp"):
            (self.base_dir / name).mkdir(parents=True, exist_ok=True)
        (self.base_dir / "custom_nodes" / PACK_NAME).symlink_to(self.pack_dir, target_is_directory=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [
            self.python, str(self.comfyui_path / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(port),
            "--base-directory", str(self.base_dir), "--disable-auto-launch", "--preview-method", "none",
            "--use-pytorch-cross-attention",
            # Its default database lives inside the ComfyUI checkout: keep the tests out of it.
            "--database-url", "sqlite:///:memory:",
        ]
        with open(self.base_dir / LOG_NAME, "wb") as log:
            self._server = subprocess.Popen(command, cwd=self.base_dir, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                            preexec_fn=CHILD_SETUP)
        self._wait_until_ready(timeout)
        self._start_listener(timeout=30.0)

    def stop(self):
        for process in (self._listener, self._server):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=20)

    def _wait_until_ready(self, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_if_dead()
            try:
                status, _ = self._request("GET", "/system_stats", timeout=5)
                if status == 200:
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        raise RuntimeError(f"ComfyUI did not answer within {timeout:.0f} s\n{self.log_tail()}")

    def _raise_if_dead(self):
        if self._server.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with code {self._server.returncode}\n{self.log_tail()}")

    def _start_listener(self, timeout: float):
        ws_url = self.url.replace("http://", "ws://") + f"/ws?clientId={self.client_id}"
        script = Path(__file__).with_name("ws_listener.py")
        self._listener = subprocess.Popen([self.python, str(script), ws_url], stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                          preexec_fn=CHILD_SETUP)
        threading.Thread(target=self._read_events, daemon=True).start()
        # The server greets every new socket with a "status" message: once it is here, no
        # event of a prompt submitted afterwards can be missed.
        def greeted():
            return self._listener_ended or any(event["type"] == "status" for event in self._events)

        with self._events_changed:
            if not self._events_changed.wait_for(greeted, timeout) or self._listener_ended:
                raise RuntimeError(f"the websocket listener did not connect within {timeout:.0f} s: {self._events}")

    def _read_events(self):
        for line in self._listener.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # the listener's own traceback, if it dies
                event = {"type": "listener_output", "data": {"text": line}}
            with self._events_changed:
                self._events.append(event)
                self._events_changed.notify_all()
        with self._events_changed:
            self._listener_ended = True
            self._events_changed.notify_all()

    # -- the server's log ------------------------------------------------------------------

    def log_text(self) -> str:
        return (self.base_dir / LOG_NAME).read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "--- ComfyUI log (tail) ---\n" + "\n".join(self.log_text().splitlines()[-lines:])

    def pack_import_error(self) -> str | None:
        """The log's account of why ComfyUI could not load this pack, or None if it loaded."""
        lines = self.log_text().splitlines()
        failed = next((i for i, line in enumerate(lines)
                       if "(IMPORT FAILED)" in line and line.rstrip().endswith(PACK_NAME)), None)
        if failed is None:
            return None
        # ComfyUI logs the traceback, then "Cannot import <pack> ...: <error>", and only
        # later the import-times table with the IMPORT FAILED line.
        reason = max((i for i in range(failed) if PACK_NAME in lines[i]), default=None)
        if reason is None:
            return lines[failed]
        start = max((i for i in range(reason + 1) if lines[i].startswith("Traceback")), default=reason)
        return "\n".join(lines[start: reason + 1] + [lines[failed]])

    # -- HTTP ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body=None, timeout: float = 60) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with _http.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def _get_json(self, path: str):
        status, body = self._request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def object_info(self) -> dict:
        return self._get_json("/object_info")

    def submit(self, prompt: dict) -> str:
        status, body = self._request("POST", "/prompt", {"prompt": prompt, "client_id": self.client_id})
        try:
            answer = json.loads(body)
        except ValueError:
            raise PromptFailed(f"POST /prompt: HTTP {status}: {body[:2000]!r}\n{self.log_tail()}") from None
        if status != 200:
            raise PromptFailed(describe_rejection(answer), answer.get("node_errors"))
        return answer["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 900) -> dict:
        """The finished prompt's ``outputs``; raises PromptFailed (PromptInterrupted) otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_if_dead()
            entry = self._get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry is not None:
                if entry["status"]["status_str"] == "success":
                    return entry["outputs"]
                raise describe_execution_error(prompt_id, entry["status"])
            time.sleep(POLL_SECONDS)
        self.interrupt(prompt_id)  # leave the server free for the next test
        raise PromptFailed(f"prompt {prompt_id} did not finish within {timeout:.0f} s\n{self.log_tail()}")

    def run(self, prompt: dict, timeout: float = 900) -> dict:
        return self.wait(self.submit(prompt), timeout)

    def interrupt(self, prompt_id: str | None = None):
        """Stop the running prompt (only if it is ``prompt_id``, when given)."""
        self._request("POST", "/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def wait_for_progress(self, prompt_id: str, min_value: int, timeout: float = 300) -> dict:
        """Block until a sampler of ``prompt_id`` reports step ``min_value``; returns that event's data.

        Sampler callbacks send ``progress`` after each step, so interrupting right after
        this returns stops the prompt mid-sampling.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        with self._events_changed:
            while True:
                for event in self._events[seen:]:
                    data = event.get("data", {})
                    if data.get("prompt_id") != prompt_id:
                        continue
                    if event["type"] == "progress" and data["value"] >= min_value:
                        return data
                    if event["type"] in FINISH_EVENTS:
                        raise PromptFailed(f"prompt {prompt_id} ended ({event['type']}) before progress "
                                           f"reached {min_value}")
                seen = len(self._events)
                if self._listener_ended:
                    raise RuntimeError(f"the websocket listener stopped: {self._events[-1:]}\n{self.log_tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PromptFailed(f"prompt {prompt_id}: no progress {min_value} within {timeout:.0f} s")
                self._events_changed.wait(remaining)

    # -- files -----------------------------------------------------------------------------

    def output_file(self, file_info: dict) -> Path:
        """The file a UI result entry ``{"filename", "subfolder", "type"}`` names."""
        return self.base_dir / file_info.get("type", "output") / file_info.get("subfolder", "") / file_info["filename"]

    def view(self, file_info: dict) -> bytes:
        """The same file, fetched through ``GET /view`` as the frontend does."""
        query = urllib.parse.urlencode({k: file_info[k] for k in ("filename", "subfolder", "type") if k in file_info})
        status, body = self._request("GET", f"/view?{query}")
        if status != 200:
            raise RuntimeError(f"GET /view?{query}: HTTP {status}")
        return body

    def latent(self, outputs: dict, node_id: str):
        """The latent batch (frames, 4, H/8, W/8) that the stock SaveLatent node ``node_id`` wrote."""
        (file_info,) = outputs[node_id]["latents"]
        return safetensors.torch.load_file(str(self.output_file(file_info)))["latent_tensor"]
