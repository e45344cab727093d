"""A running ComfyUI server's HTTP API (urllib), websocket events (a plain socket) and error texts.
A prompt is done when its ``/history/<id>`` entry appears, whatever happened: waiting polls it,
reading the progress events between polls."""

import base64
import json
import os
import select
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

POLL_SECONDS = 0.2
TEXT_FRAME = 1
VIEW_KEYS = ("filename", "subfolder", "type")

# The server is on this machine: never let an http_proxy setting route requests elsewhere.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerFailed(RuntimeError):
    """The server exited, never answered, or answered not as its API says."""


class PromptFailed(Exception):
    """The prompt was rejected (``node_errors``, per node) or failed (``server_traceback``: its tail)."""

    def __init__(self, message: str, node_errors: dict | None = None, server_traceback: str = ""):
        super().__init__(message)
        self.node_errors = node_errors or {}
        self.server_traceback = server_traceback


class PromptInterrupted(PromptFailed):
    """The prompt stopped because of ``POST /interrupt``."""


class ComfyClient:
    """The server at ``url``; ``server``: its ComfyProcess when we started it, so that its death is
    reported with its log, not as a timeout."""

    def __init__(self, url: str, server=None):
        self.url = url.rstrip("/")
        self.server = server
        self.client_id = uuid.uuid4().hex
        self._socket = None

    def listen(self, timeout: float = 30.0) -> None:
        """Open the websocket that carries this client's events (raises OSError if it cannot)."""
        host = urllib.parse.urlsplit(self.url)
        self._socket = socket.create_connection((host.hostname, host.port), timeout)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            self._socket.sendall(f"GET /ws?clientId={self.client_id} HTTP/1.1\r\nHost: {host.netloc}\r\nUpgrade: "
                                 f"websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
            answer = b""
            while not answer.endswith(b"\r\n\r\n"):  # byte by byte: the frames after it stay unread
                answer += self._read_exactly(1)
            if not answer.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(f"{self.url}/ws answered {answer.splitlines()[0]!r}")
            # The server greets every new socket with a "status" message: once it is here, no
            # event of a prompt submitted afterwards can be missed.
            while (self._read_event() or {}).get("type") != "status":
                pass
        except OSError:
            self.close()
            raise

    def receive(self, timeout: float) -> list[dict]:
        """The events that have arrived, waiting up to ``timeout`` s for the first one."""
        deadline, events = time.monotonic() + timeout, []
        try:
            while self._socket is not None:
                waiting = 0 if events else max(0.0, deadline - time.monotonic())
                if not select.select([self._socket], [], [], waiting)[0]:
                    return events
                event = self._read_event()
                if event is not None:
                    events.append(event)
        except OSError:  # the server closed it: the render itself needs no events
            self.close()
        if not events:
            time.sleep(max(0.0, deadline - time.monotonic()))  # no event will end the wait early
        return events

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _read_event(self) -> dict | None:
        """The next frame: a text one is an event, a binary one (a preview) None. ComfyUI sends each
        message unmasked in one frame, and no pings."""
        head = self._read_exactly(2)
        length = head[1] & 0x7F
        if length >= 126:  # the real length follows, in 2 or 8 bytes
            length = int.from_bytes(self._read_exactly(2 if length == 126 else 8), "big")
        payload = self._read_exactly(length)
        return json.loads(payload) if head[0] & 0x0F == TEXT_FRAME else None

    def _read_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._socket.recv(size - len(data))
            if not chunk:
                raise ConnectionError(f"{self.url}/ws closed")
            data += chunk
        return data

    def request(self, method: str, path: str, body=None, timeout: float = 60) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with _http.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str, timeout: float = 60):
        status, body = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise ServerFailed(f"GET {path}: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def submit(self, prompt: dict, extra_data: dict | None = None) -> str:
        """Queue ``prompt`` (``extra_data``, e.g. ``extra_pnginfo``, reaches nodes as hidden inputs); its id."""
        payload = {"prompt": prompt, "client_id": self.client_id, "extra_data": extra_data or {}}
        status, body = self.request("POST", "/prompt", payload)
        try:
            answer = json.loads(body)
        except ValueError:
            raise PromptFailed(f"POST /prompt: HTTP {status}: {body[:2000]!r}\n{self._log_tail()}") from None
        if status != 200:
            raise PromptFailed(describe_rejection(answer), answer.get("node_errors"))
        return answer["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 900, on_event=None) -> dict:
        """The finished prompt's ``outputs``, else PromptFailed (PromptInterrupted); meanwhile ``on_event``
        gets each of its events. Past the timeout the prompt is interrupted, leaving the server free."""
        deadline = time.monotonic() + timeout
        while True:
            if self.server is not None:
                self.server.raise_if_dead()
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry is not None:
                if entry["status"]["status_str"] == "success":
                    return entry["outputs"]
                raise describe_execution_error(prompt_id, entry["status"])
            if time.monotonic() > deadline:
                self.interrupt(prompt_id)
                raise PromptFailed(f"prompt {prompt_id} did not finish within {timeout:.0f} s\n{self._log_tail()}")
            for event in self.receive(POLL_SECONDS):
                if on_event is not None and (event.get("data") or {}).get("prompt_id") == prompt_id:
                    on_event(event)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt (only if it is ``prompt_id``, when given)."""
        self.request("POST", "/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def view_path(self, file_info: dict) -> str:
        """Where the frontend fetches an output file ``{"filename", "subfolder", "type"}``."""
        return "/view?" + urllib.parse.urlencode({k: file_info[k] for k in VIEW_KEYS if k in file_info})

    def view(self, file_info: dict) -> bytes:
        status, body = self.request("GET", self.view_path(file_info))
        if status != 200:
            raise ServerFailed(f"GET {self.view_path(file_info)}: HTTP {status}")
        return body

    def _log_tail(self) -> str:
        return self.server.log_tail() if self.server is not None else ""


def output_files(outputs: dict) -> list[dict]:
    """Every file of a history entry's ``outputs``, in node order, once: each output node lists them
    as ``{"filename", "subfolder", "type"}`` under a key of its ``ui`` result (``images``, ``gifs``...)."""
    entries = [entry for node_output in outputs.values() for value in node_output.values()
               if isinstance(value, list) for entry in value]
    files = [entry for entry in entries if isinstance(entry, dict) and "filename" in entry]
    return [entry for i, entry in enumerate(files) if entry not in files[:i]]


def describe_rejection(body: dict) -> str:
    """The text of an HTTP 400 answer to ``POST /prompt``: the overall error, then each node's."""
    error = body.get("error", {})
    lines = [f"{error.get('message', '')}: {error.get('details', '')}" if isinstance(error, dict) else str(error)]
    for node_id, info in body.get("node_errors", {}).items():
        lines += [f"node {node_id!r} ({info.get('class_type')}): {problem.get('message')}: "
                  f"{problem.get('details', '')}" for problem in info.get("errors", [])]
    return "prompt rejected: " + "\n  ".join(lines)


def describe_execution_error(prompt_id: str, status: dict) -> PromptFailed:
    """The error a finished-but-unsuccessful history entry's ``status`` stands for."""
    for event, data in status.get("messages", []):
        if event == "execution_interrupted":
            return PromptInterrupted(f"prompt {prompt_id} was interrupted in node {data.get('node_id')!r} "
                                     f"({data.get('node_type')})")
        if event == "execution_error":
            return PromptFailed(
                f"prompt {prompt_id} failed in node {data.get('node_id')!r} ({data.get('node_type')}): "
                f"{data.get('exception_type')}: {str(data.get('exception_message')).strip()}",
                # The innermost frames tell the story.
                server_traceback="".join(data.get("traceback", []))[-4000:],
            )
    return PromptFailed(f"prompt {prompt_id} ended with status {status}")
