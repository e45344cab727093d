"""Talking to a running ComfyUI server: its HTTP API and its event stream.

HTTP goes through urllib (no dependency). Waiting for a prompt polls ``/history/<id>``: the
entry appears exactly when the prompt has finished, whatever happened. Progress exists only
as websocket events (see event_stream.py); they are passed on while waiting.
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from .event_stream import EventStream
from .prompt_errors import PromptFailed, describe_execution_error, describe_rejection

POLL_SECONDS = 0.2

# The server is on this machine: never let an http_proxy setting route requests elsewhere.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(RuntimeError):
    """The server answered, but not as its API says it does."""


class ComfyClient:
    """The server at ``url``. ``server``: the ComfyProcess behind it when we started it, so that
    a server that dies is reported with its log instead of as a timeout."""

    def __init__(self, url: str, server=None):
        self.url = url.rstrip("/")
        self.server = server
        self.client_id = uuid.uuid4().hex
        self.events: EventStream | None = None

    # -- events ----------------------------------------------------------------------------

    def listen(self, python: str, timeout: float = 30.0) -> None:
        """Start receiving this client's events (raises ListenerFailed if that is not possible)."""
        ws_url = self.url.replace("http://", "ws://", 1) + f"/ws?clientId={self.client_id}"
        self.events = EventStream(ws_url, python)
        self.events.start(timeout)

    def close(self) -> None:
        if self.events is not None:
            self.events.stop()

    # -- HTTP ------------------------------------------------------------------------------

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
            raise ServerError(f"GET {path}: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def system_stats(self, timeout: float = 60) -> dict:
        return self.get_json("/system_stats", timeout)

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def submit(self, prompt: dict, extra_data: dict | None = None) -> str:
        """Queue ``prompt``; its id. ``extra_data`` (e.g. ``extra_pnginfo``) reaches the nodes as
        hidden inputs. Raises PromptFailed with the server's node errors if it is rejected."""
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
        """The finished prompt's ``outputs``; raises PromptFailed (PromptInterrupted) otherwise.

        ``on_event(event)`` is called with each websocket event of this prompt meanwhile.
        Past the timeout the prompt is interrupted, leaving the server free.
        """
        deadline = time.monotonic() + timeout
        cursor = 0
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
            cursor = self._pass_events(prompt_id, cursor, on_event)

    def _pass_events(self, prompt_id: str, cursor: int, on_event) -> int:
        """Hand this prompt's new events to ``on_event``; waits up to one poll interval for them."""
        if self.events is None or self.events.ended:
            time.sleep(POLL_SECONDS)  # no event will come to end the wait early
        new = self.events.wait_after(cursor, POLL_SECONDS) if self.events is not None else []
        for event in new:
            if on_event is not None and event.get("data", {}).get("prompt_id") == prompt_id:
                on_event(event)
        return cursor + len(new)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt (only if it is ``prompt_id``, when given)."""
        self.request("POST", "/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def view(self, file_info: dict) -> bytes:
        """An output file, by its UI entry ``{"filename", "subfolder", "type"}``, as the frontend fetches it."""
        query = urllib.parse.urlencode({k: file_info[k] for k in ("filename", "subfolder", "type") if k in file_info})
        status, body = self.request("GET", f"/view?{query}")
        if status != 200:
            raise ServerError(f"GET /view?{query}: HTTP {status}")
        return body

    def _log_tail(self) -> str:
        return self.server.log_tail() if self.server is not None else ""
