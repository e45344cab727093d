"""The Comfy Registry manifest (pyproject.toml) and the README's "tested with" line agree with the code."""

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST_TREES = ROOT.parent / "shared" / "host"


def manifest() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def releases_the_pack_is_tested_with() -> tuple[str, ...]:
    tree = ast.parse((ROOT / "nodes" / "host_features.py").read_text())
    (value,) = [node.value for node in tree.body if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", None) == "TESTED_RELEASES"]
    return ast.literal_eval(value)


def test_registry_fields_follow_the_specification():
    project, comfy = manifest()["project"], manifest()["tool"]["comfy"]
    # name: < 100 characters, alphanumerics and - _ ., no consecutive specials, starts with a letter
    assert re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|[-_.](?=[A-Za-z0-9]))*", project["name"]) and len(project["name"]) < 100
    assert "comfyui" not in project["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["license"] == {"file": "LICENSE"} and (ROOT / "LICENSE").is_file()
    assert project["description"] and project["urls"]["Repository"].startswith("https://")
    assert {"PublisherId", "DisplayName", "Icon"} <= comfy.keys()


def test_dependencies_are_the_requirements():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert manifest()["project"]["dependencies"] == [line for line in lines if line and not line.startswith("#")]


def test_required_comfyui_starts_at_the_oldest_tested_release():
    oldest = min(releases_the_pack_is_tested_with(), key=lambda v: tuple(map(int, v.split("."))))
    assert manifest()["tool"]["comfy"]["requires-comfyui"] == f">={oldest}"


def test_readme_and_ci_name_the_tested_releases():
    releases = releases_the_pack_is_tested_with()
    assert f"**Tested with ComfyUI {' and '.join(releases)}**" in (ROOT / "README.md").read_text()
    if HOST_TREES.is_dir():  # the trees CI runs the host tests on
        shipped = {re.search(r'"(.+)"', (tree / "comfyui_version.py").read_text())[1]
                   for tree in HOST_TREES.glob("comfyui-*") if (tree / "comfyui_version.py").is_file()}
        assert shipped == set(releases)
