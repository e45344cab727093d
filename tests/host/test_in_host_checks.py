"""Checks that run inside each host release's Python, with the host's own classes (in_host.py):

- contract_checks.py: the pack called the way the newest ComfyUI source calls it, so they
  hold for releases newer than the ones that run here;
- unet_norm_checks.py: v1's across-frames GroupNorm on the host's own UNet, against a
  direct computation.
"""

import ast
import json
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
MODULES = ("contract_checks", "unet_norm_checks")
MARKER = "IN-HOST-RESULTS "


def check_names(module: str) -> list[str]:
    tree = ast.parse((HERE / f"{module}.py").read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")]


@pytest.fixture(scope="session")
def in_host_results(comfyui_install) -> dict:
    results = {}
    for module in MODULES:
        run = subprocess.run([comfyui_install.python, str(HERE / "in_host.py"), module, str(comfyui_install.path),
                              str(REPO_ROOT)], capture_output=True, text=True, timeout=900, cwd=HERE)
        lines = [line for line in run.stdout.splitlines() if line.startswith(MARKER)]
        if run.returncode != 0 or not lines:
            pytest.fail(f"{module} did not run (exit {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}",
                        pytrace=False)
        results.update(json.loads(lines[-1].removeprefix(MARKER)))
    return results


@pytest.mark.parametrize("check", [name for module in MODULES for name in check_names(module)])
def test_in_host(in_host_results, check):
    assert check in in_host_results, f"{check} did not run"
    if in_host_results[check] is not None:
        pytest.fail(f"{check}:\n{in_host_results[check]}", pytrace=False)
