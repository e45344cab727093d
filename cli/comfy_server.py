"""A ComfyUI server in a subprocess on 127.0.0.1, with this pack loaded, started and stopped.

Everything the server needs besides its own checkout lives in a work folder: its log, an
``extra_model_paths.yaml`` and links to the pack and to extra model files. The server keeps
its database in memory: a one-shot server has nothing worth keeping, and the user's own
ComfyUI may hold the database file in the checkout.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
from pathlib import Path

from .child_process import TIED_TO_PARENT, stop
from .comfy_client import ComfyClient

LOG_NAME = "comfyui.log"
PACK_LINK_NAME = "animatediff_pack"
READY_POLL_SECONDS = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerFailed(RuntimeError):
    """The server exited or never answered; the message ends with its log's tail."""


class ComfyProcess:
    """``comfyui_path/main.py`` run by ``python``.

    ``base_directory``: ComfyUI's ``--base-directory`` (models, custom_nodes, input, output),
    if not the checkout. ``model_folders``: ``{folder name: path}`` searched before the usual
    ones. ``comfy_args``: further command-line flags (``--cpu``).
    """

    def __init__(self, comfyui_path: Path, python: str, pack_dir: Path, work_dir: Path, *,
                 base_directory: Path | None = None, model_folders: dict[str, Path] | None = None,
                 comfy_args: tuple[str, ...] = ()):
        self.comfyui_path = comfyui_path
        self.python = python
        self.pack_dir = pack_dir
        self.work_dir = work_dir
        self.base_directory = base_directory
        self.model_folders = dict(model_folders or {})
        self.comfy_args = tuple(comfy_args)
        self.pack_name = PACK_LINK_NAME
        self.url = ""
        self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.work_dir / LOG_NAME

    def start(self, timeout: float = 120.0) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [
            self.python, str(self.comfyui_path / "main.py"), "--listen", "127.0.0.1", "--port", str(port),
            "--disable-auto-launch", "--preview-method", "none", "--database-url", "sqlite:///:memory:",
            *self.comfy_args,
        ]
        if self.base_directory is not None:
            # ComfyUI lists this folder at start and fails if it is missing.
            (self.base_directory / "custom_nodes").mkdir(parents=True, exist_ok=True)
            command += ["--base-directory", str(self.base_directory)]
        paths_config = self._write_paths_config()
        if paths_config is not None:
            command += ["--extra-model-paths-config", str(paths_config)]
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(command, cwd=self.work_dir, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                             preexec_fn=TIED_TO_PARENT)
        self._wait_until_ready(timeout)

    def stop(self) -> None:
        stop(self._process)

    def raise_if_dead(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise ServerFailed(f"ComfyUI exited with code {self._process.returncode}\n{self.log_tail()}")

    def _custom_nodes_dir(self) -> Path:
        return (self.base_directory or self.comfyui_path) / "custom_nodes"

    def _installed_pack_name(self) -> str | None:
        """The folder name under which the server loads this pack anyway, if it does."""
        folder = self._custom_nodes_dir()
        if not folder.is_dir():
            return None
        pack = self.pack_dir.resolve()
        return next((entry.name for entry in folder.iterdir() if entry.resolve() == pack), None)

    def _write_paths_config(self) -> Path | None:
        """An extra_model_paths.yaml adding the pack (unless the server loads it anyway: then its
        folder name is noted, to find its import errors in the log) and ``model_folders``."""
        folders = dict(self.model_folders)
        installed = self._installed_pack_name()
        if installed:
            self.pack_name = installed
        else:
            pack_parent = self.work_dir / "pack"
            pack_parent.mkdir(exist_ok=True)
            link = pack_parent / PACK_LINK_NAME
            if not link.is_symlink():
                link.symlink_to(self.pack_dir.resolve(), target_is_directory=True)
            folders["custom_nodes"] = pack_parent
        if not folders:
            return None
        path = self.work_dir / "extra_model_paths.yaml"
        # JSON strings are valid YAML scalars: any character in a path is quoted safely.
        lines = [f"    {name}: {json.dumps(str(Path(folder).resolve()))}" for name, folder in folders.items()]
        path.write_text("animatediff_cli:\n" + "\n".join(lines) + "\n", encoding="utf-8")
        return path

    def _wait_until_ready(self, timeout: float) -> None:
        probe = ComfyClient(self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.raise_if_dead()
            try:
                probe.system_stats(timeout=5)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(READY_POLL_SECONDS)  # not listening yet
        raise ServerFailed(f"ComfyUI did not answer within {timeout:.0f} s\n{self.log_tail()}")

    # -- its log ---------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "--- ComfyUI log (tail) ---\n" + "\n".join(self.log_text().splitlines()[-lines:])

    def pack_import_error(self) -> str | None:
        """The log's account of why ComfyUI could not load this pack, or None if it loaded."""
        return pack_import_error(self.log_text(), self.pack_name)


def pack_import_error(log_text: str, pack_name: str) -> str | None:
    lines = log_text.splitlines()
    failed = next((i for i, line in enumerate(lines)
                   if "(IMPORT FAILED)" in line and line.rstrip().endswith(pack_name)), None)
    if failed is None:
        return None
    # ComfyUI logs the traceback, then "Cannot import <pack> ...: <error>", and only
    # later the import-times table with the IMPORT FAILED line.
    reason = max((i for i in range(failed) if pack_name in lines[i]), default=None)
    if reason is None:
        return lines[failed]
    start = max((i for i in range(reason + 1) if lines[i].startswith("Traceback")), default=reason)
    return "\n".join(lines[start: reason + 1] + [lines[failed]])
