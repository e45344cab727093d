"""ComfyUI's websocket events (``progress``, ``executing``, ...) as a growing list.

A listener subprocess (``ws_listener.py``, run with ComfyUI's Python, which has aiohttp)
prints each message as a JSON line; a thread here appends them to ``events``. Readers keep
a cursor (an index into the list) and ask for what came after it.
"""

import json
import subprocess
import threading
import time
from pathlib import Path

from .child_process import TIED_TO_PARENT, stop

LISTENER = Path(__file__).with_name("ws_listener.py")


class ListenerFailed(RuntimeError):
    """The listener could not connect, or stopped; the message quotes what it printed."""


class EventStream:
    def __init__(self, ws_url: str, python: str):
        self.ws_url = ws_url
        self.python = python
        self.events: list[dict] = []
        self.ended = False
        self._changed = threading.Condition()
        self._process = None

    def start(self, timeout: float = 30.0) -> None:
        self._process = subprocess.Popen([self.python, str(LISTENER), self.ws_url], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                         preexec_fn=TIED_TO_PARENT)
        threading.Thread(target=self._read, daemon=True).start()
        # The server greets every new socket with a "status" message: once it is here, no
        # event of a prompt submitted afterwards can be missed.
        def greeted():
            return self.ended or any(event.get("type") == "status" for event in self.events)

        with self._changed:
            if not self._changed.wait_for(greeted, timeout) or self.ended:
                self.stop()
                printed = [e["data"]["text"].strip() for e in self.events if e["type"] == "listener_output"]
                # Its last line is the exception that stopped it (e.g. no aiohttp in that Python).
                reason = printed[-1] if printed else f"no answer within {timeout:.0f} s"
                raise ListenerFailed(f"the websocket listener ({self.python}) could not connect: {reason}")

    def stop(self) -> None:
        stop(self._process)

    def wait_after(self, cursor: int, timeout: float) -> list[dict]:
        """The events after index ``cursor``; if there are none yet, waits up to ``timeout`` s
        for one (not at all once the listener has ended)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.events) <= cursor and not self.ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self.events[cursor:]

    def _read(self):
        for line in self._process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # the listener's own error output, if it fails
                event = {"type": "listener_output", "data": {"text": line}}
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()
