"""``render --demo``: random-weight models, so a fresh install renders end to end without downloads.

A full-size SD1.5 checkpoint the host detects as SD1.5, and a v2 motion module, both built
once (random_models.py) into a cache, then linked into the started server's own model
folders under fixed names that the workflow's loaders are pointed at.
"""

import copy
from pathlib import Path

from .model_files import built_model, cache_dir, link_model

CHECKPOINT_NAME = "animatediff-demo-sd15-random.safetensors"
MOTION_MODULE_NAME = "animatediff-demo-mm-v2-random.safetensors"
# node type: (input, demo file, model folder)
DEMO_INPUTS = {
    "CheckpointLoaderSimple": ("ckpt_name", CHECKPOINT_NAME, "checkpoints"),
    "AnimateDiffLoadMotionModule": ("model_name", MOTION_MODULE_NAME, "animatediff_models"),
}
STARTING_NOTICE = ("demo: random-weight models (built once into {cache}, a minute or two the first time); "
                   "the output will be noise")
NOISE_NOTICE = "demo: the models have random weights, so the output is noise: this checks the install, not the models"


def demo_cache() -> Path:
    return cache_dir("ANIMATEDIFF_DEMO_CACHE", Path.home() / ".cache" / "animatediff-pack" / "demo")


def point_at_demo_models(prompt: dict) -> dict:
    """A copy of the API prompt with every checkpoint and motion-module loader set to the demo files."""
    prompt = copy.deepcopy(prompt)
    changed = 0
    for node in prompt.values():
        if node.get("class_type") in DEMO_INPUTS:
            input_name, file_name, _ = DEMO_INPUTS[node["class_type"]]
            node["inputs"][input_name] = file_name
            changed += 1
    if not changed:
        raise ValueError(f"--demo found no {' or '.join(DEMO_INPUTS)} node to give its random models to")
    return prompt


def prepare_demo_models(models_dir: Path, comfyui_path: Path, python: str) -> dict[str, Path]:
    """Build (or reuse) the demo files and link them into ``models_dir``; returns the model
    folders to give the server, ``{folder name: path}``."""
    cache = demo_cache()
    files = {"CheckpointLoaderSimple": built_model("sd15", cache, comfyui_path, python),
             "AnimateDiffLoadMotionModule": built_model("motion_v2", cache, None, python)}
    folders = {}
    for node_type, target in files.items():
        _, name, folder = DEMO_INPUTS[node_type]
        link_model(target, models_dir, folder, name)
        folders[folder] = models_dir / folder
    return folders
