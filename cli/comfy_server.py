"""A ComfyUI server with this pack, in a subprocess on 127.0.0.1. What it needs besides its
checkout is in a work folder: its log, an ``extra_model_paths.yaml``, a link to the pack. Its
database is in memory: a one-shot server has nothing worth keeping, and the user's own ComfyUI
may hold the database file in the checkout."""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .comfy_client import ComfyClient, ServerFailed

PACK_LINK_NAME = "animatediff_pack"
READY_POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 20


def _stop_with_parent():
    """``preexec_fn``: the kernel SIGTERMs the child when its parent dies, so a parent killed outright
    (SIGKILL, a test timeout) leaves no server or builder behind. Linux only: elsewhere, stop()."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG from <linux/prctl.h>


TIED_TO_PARENT = _stop_with_parent if sys.platform.startswith("linux") else None


@dataclass
class ComfyProcess:
    """``comfyui_path/main.py`` run by ``python``; ``base_directory``: its data folder, if not the
    checkout; ``model_folders``: ``{folder name: path}`` searched first; ``comfy_args``: more flags."""

    comfyui_path: Path
    python: str
    pack_dir: Path
    work_dir: Path
    base_directory: Path | None = None
    model_folders: dict[str, Path] = field(default_factory=dict)
    comfy_args: tuple[str, ...] = ()
    pack_name: str = PACK_LINK_NAME  # the folder name the server loads the pack under
    url: str = ""
    popen: subprocess.Popen | None = field(default=None, repr=False)  # the running server, once started

    def start(self, timeout: float = 120.0) -> ComfyClient:
        """Start the server; a client of it, once it answers."""
        with socket.socket() as probe:  # a free port
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        command = [self.python, str(self.comfyui_path / "main.py"), "--listen", "127.0.0.1", "--port", str(port),
                   "--disable-auto-launch", "--preview-method", "none", "--database-url", "sqlite:///:memory:",
                   *self.comfy_args, "--extra-model-paths-config", str(self._write_paths_config())]
        if self.base_directory is not None:
            # ComfyUI lists this folder at start and fails if it is missing.
            (self.base_directory / "custom_nodes").mkdir(parents=True, exist_ok=True)
            command += ["--base-directory", str(self.base_directory)]
        with open(self.work_dir / "comfyui.log", "wb") as log:
            self.popen = subprocess.Popen(command, cwd=self.work_dir, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                             preexec_fn=TIED_TO_PARENT)
        client, deadline = ComfyClient(self.url, self), time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.raise_if_dead()
            try:
                client.get_json("/system_stats", timeout=5)
                return client
            except OSError:
                time.sleep(READY_POLL_SECONDS)  # not listening yet
        raise ServerFailed(f"ComfyUI did not answer within {timeout:.0f} s\n{self.log_tail()}")

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=STOP_GRACE_SECONDS)

    def raise_if_dead(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise ServerFailed(f"ComfyUI exited with code {self.popen.returncode}\n{self.log_tail()}")

    def _write_paths_config(self) -> Path:
        """An extra_model_paths.yaml adding ``model_folders`` and the pack, unless the server loads it
        anyway (then its folder name is noted, to find its import errors in the log)."""
        folders = dict(self.model_folders)
        custom_nodes, pack = (self.base_directory or self.comfyui_path) / "custom_nodes", self.pack_dir.resolve()
        installed = [entry.name for entry in custom_nodes.glob("*") if entry.resolve() == pack]
        if installed:
            self.pack_name = installed[0]
        else:
            link = self.work_dir / "pack" / PACK_LINK_NAME
            link.parent.mkdir(exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(pack, target_is_directory=True)
            folders["custom_nodes"] = link.parent
        path = self.work_dir / "extra_model_paths.yaml"
        # JSON strings are valid YAML scalars: any character in a path is quoted safely.
        lines = [f"    {name}: {json.dumps(str(Path(folder).resolve()))}" for name, folder in folders.items()]
        path.write_text("animatediff_cli:\n" + "".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    def log_text(self) -> str:
        return (self.work_dir / "comfyui.log").read_text(errors="replace")  # made by start()

    def log_tail(self, lines: int = 60) -> str:
        return "--- ComfyUI log (tail) ---\n" + "\n".join(self.log_text().splitlines()[-lines:])

    def pack_import_error(self) -> str | None:
        """The log's account of why ComfyUI could not load this pack, or None if it loaded."""
        lines = self.log_text().splitlines()
        failed = next((i for i, line in enumerate(lines)
                       if "(IMPORT FAILED)" in line and line.rstrip().endswith(self.pack_name)), None)
        if failed is None:
            return None
        # ComfyUI logs the traceback, then "Cannot import <pack> ...: <error>", and only
        # later the import-times table with the IMPORT FAILED line.
        reason = max((i for i in range(failed) if self.pack_name in lines[i]), default=None)
        if reason is None:
            return lines[failed]
        start = max((i for i in range(reason + 1) if lines[i].startswith("Traceback")), default=reason)
        return "\n".join(lines[start: reason + 1] + [lines[failed]])
