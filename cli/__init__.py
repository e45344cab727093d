"""The pack's command line (``render``) and what it shares with the rest of the pack. Torch-free:
the command line may run in a Python without torch."""

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path, keep_suffix: bool = False):
    """A hidden name beside ``path`` to write to, renamed to ``path`` if the block succeeds, else
    deleted: readers see the whole file or none. It ends in ``.partial``, which ComfyUI's model lists
    never offer; ``keep_suffix`` adds ``path``'s suffix, for loaders that pick the format by it."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix if keep_suffix else ''}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
