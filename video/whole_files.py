"""Files that appear whole or not at all, for everything the pack writes (videos, trained
MotionLoRAs, the command line's copies, the demo models). Torch-free, so the command line
can use it too.

A file is written under a hidden temporary name beside its final one (same filesystem, so
the rename is atomic) and renamed only when complete. Each temporary name carries the id of
its process; one whose process is gone (a killed server) is removed at the next write to its folder.
"""

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path

_OWNER = f"{os.getpid()}.{secrets.token_hex(4)}"
_OWNED_NAMES = (
    re.compile(r"\..+\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.[0-9a-f]{8}\.partial(?:\.\w+)?"),  # atomic_path
    re.compile(r"animatediff-(?:video|read)-(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})-.+"),  # scratch_dir
)


@contextlib.contextmanager
def atomic_path(path: Path, keep_suffix: bool = False):
    """A hidden name beside ``path`` to write to (a file, or a folder the block makes), renamed
    to ``path`` if the block succeeds, else deleted. It ends in ``.partial``, which ComfyUI's
    model lists never offer; ``keep_suffix`` adds ``path``'s suffix, for loaders that pick the
    format by it. Temporary files that killed processes left in the folder are removed first."""
    remove_abandoned(path.parent)
    partial = path.with_name(f".{path.name}.{_OWNER}.{secrets.token_hex(4)}.partial"
                             + (path.suffix if keep_suffix else ""))
    try:
        yield partial
        os.replace(partial, path)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)


@contextlib.contextmanager
def scratch_dir(kind: str):
    """A temporary folder for files that only ffmpeg reads (metadata, audio, image lists)."""
    root = Path(tempfile.gettempdir())
    remove_abandoned(root)
    with tempfile.TemporaryDirectory(prefix=f"animatediff-{kind}-{_OWNER}-") as folder:
        yield folder


def remove_abandoned(folder: Path) -> None:
    """Remove the temporary files and folders that killed processes left in ``folder``."""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if _abandoned(entry.name):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _abandoned(name: str) -> bool:
    """A temporary name of this pack whose process no longer runs."""
    owner = next((m for m in (p.fullmatch(name) for p in _OWNED_NAMES) if m), None)
    if owner is None or os.name != "posix":  # elsewhere a process cannot be asked whether it runs
        return False
    pid, token = int(owner["pid"]), owner["token"]
    if pid == os.getpid():
        return f"{pid}.{token}" != _OWNER  # this pid's previous life
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # runs, as another user
    return False
