"""Peak memory of a piece of work: CUDA allocator peak, or the process's peak RSS on CPU.

On Linux, writing 5 to /proc/self/clear_refs resets VmHWM (peak RSS), so the peak of
each measured call can be taken in one process, beside a reference measured the same way.
"""

import contextlib
from pathlib import Path

import torch


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


@contextlib.contextmanager
def peak_memory(device: torch.device):
    """Yields a dict whose "peak_mib" is set on exit: memory above what was held on entry."""
    result = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        yield result
        torch.cuda.synchronize(device)
        result["peak_mib"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    else:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kib("VmRSS")
        yield result
        result["peak_mib"] = (_status_kib("VmHWM") - before) / 1024
