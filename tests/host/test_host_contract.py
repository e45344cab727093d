"""Contract tests: the pack called the way the newest ComfyUI source calls it (see contract_checks.py).

The checks run in each host release's Python, with that release's own executor, LoRA and
ControlNet classes; what they replay is the newest source's calling code, so they hold for
releases newer than the ones that run here.
"""

import json
import subprocess
from pathlib import Path

import pytest

from .contract_checks import CHECKS

CHECKS_SCRIPT = Path(__file__).with_name("contract_checks.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = "CONTRACT-RESULTS "


@pytest.fixture(scope="session")
def contract_results(comfyui_install) -> dict:
    result = subprocess.run([comfyui_install.python, str(CHECKS_SCRIPT), str(comfyui_install.path), str(REPO_ROOT)],
                            capture_output=True, text=True, timeout=600, cwd=comfyui_install.path)
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    if result.returncode != 0 or not lines:
        pytest.fail(f"contract checks did not run (exit {result.returncode}):\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-5000:]}", pytrace=False)
    return json.loads(lines[-1].removeprefix(MARKER))


@pytest.mark.parametrize("check", list(CHECKS))
def test_contract(contract_results, check):
    assert check in contract_results, f"{check} did not run"
    if contract_results[check] is not None:
        pytest.fail(f"{check}: {CHECKS[check].__doc__}\n{contract_results[check]}", pytrace=False)
