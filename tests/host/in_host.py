"""Run one module's checks inside a ComfyUI release's Python, without a server.

    python in_host.py MODULE COMFYUI_TREE PACK_DIR  ->  a line "IN-HOST-RESULTS {check: null | error text}"

The pack is imported as ComfyUI imports it (a package in a folder on sys.path, beside the
host's own modules); then every ``check_*`` function of tests/host/MODULE.py runs.
test_in_host_checks.py starts this once per module and release.
"""

import importlib
import json
import sys
import tempfile
import traceback
from pathlib import Path

MARKER = "IN-HOST-RESULTS "


def import_pack(comfyui_tree: str, pack_dir: str) -> None:
    sys.path.insert(0, comfyui_tree)
    from comfy.cli_args import args

    args.cpu = True  # before comfy.model_management is imported
    links = Path(tempfile.mkdtemp(prefix="animatediff-in-host-"))
    (links / "animatediff_pack").symlink_to(Path(pack_dir).resolve(), target_is_directory=True)
    sys.path.append(str(links))
    importlib.import_module("animatediff_pack.nodes")


def main() -> None:
    module_name, comfyui_tree, pack_dir = sys.argv[1:4]
    import_pack(comfyui_tree, pack_dir)
    module = importlib.import_module(module_name)
    results = {}
    for name in dir(module):
        if name.startswith("check_"):
            try:
                getattr(module, name)()
                results[name] = None
            except Exception:  # report every check, whatever went wrong
                results[name] = traceback.format_exc()
    print(MARKER + json.dumps(results))


if __name__ == "__main__":
    main()
