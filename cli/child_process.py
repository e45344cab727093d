"""Child processes that never outlive the command that started them."""

import ctypes
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STOP_GRACE_SECONDS = 20


def _stop_with_parent():
    """Runs in the child just before exec: the kernel SIGTERMs it when its parent dies, so a
    parent killed outright (SIGKILL, a test timeout) leaves no server or model builder behind."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# Pass as ``preexec_fn``; other systems have no such kernel feature, and rely on stop().
TIED_TO_PARENT = _stop_with_parent if sys.platform.startswith("linux") else None


def stop(process: subprocess.Popen | None) -> None:
    """Terminate ``process`` if it still runs; kill it if it ignores that."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_GRACE_SECONDS)
