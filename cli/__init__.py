"""The pack's command line (``render``) and what it shares with the rest of the pack. Torch-free:
the command line may run in a Python without torch."""

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path, keep_suffix: bool = False):
    """A temporary name beside ``path`` to write to: renamed to ``path`` if the block succeeds,
    deleted if not (an error, an interrupt), so readers see the whole file or none of it. The
    name is hidden and ends in ``.partial``, so ComfyUI's model lists (filtered by extension)
    never offer it; ``keep_suffix`` appends ``path``'s suffix, for loaders that pick the format
    from it (only outside model folders, then)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix if keep_suffix else ''}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
