"""Random-weight models for ``render --demo`` and the host tests: a full-size SD1.5 checkpoint
that a real ComfyUI detects as genuine, and a v2 motion module.

Each file is built once (seconds to minutes) into a cache, under a name that encodes what
shapes its bytes, and linked into a server's model folders. Building runs as a script with
ComfyUI's Python (the command line's may have neither torch nor ComfyUI): the checkpoint is
made from ComfyUI's own classes, deterministically, then loaded back with ComfyUI's loaders
(the pack's, for the motion module) and must be detected as what it is meant to be:

    python demo_models.py sd15|motion_v2 OUT.safetensors --comfyui /path/to/ComfyUI
"""

import argparse
import copy
import importlib
import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__:  # <pack>.demo_models
    from .video.whole_files import atomic_path
    from .cli.comfy_server import TIED_TO_PARENT
else:  # the pack's folder is on sys.path: the tests, the command line run as a folder, this script
    from video.whole_files import atomic_path
    from cli.comfy_server import TIED_TO_PARENT

# torch, comfy.* and animatediff_core are imported inside the builders: only the script needs
# them, and comfy becomes importable once the script has put the ComfyUI checkout on sys.path.

CHECKPOINT_NAME = "animatediff-demo-sd15-random.safetensors"
MOTION_MODULE_NAME = "animatediff-demo-mm-v2-random.safetensors"
# node type: (input, demo file, model folder, built kind)
DEMO_INPUTS = {
    "CheckpointLoaderSimple": ("ckpt_name", CHECKPOINT_NAME, "checkpoints", "sd15"),
    "AnimateDiffLoadMotionModule": ("model_name", MOTION_MODULE_NAME, "animatediff_models", "motion_v2"),
}
STARTING_NOTICE = ("demo: random-weight models (built once into {cache}, a minute or two the first time); "
                   "the output will be noise")
NOISE_NOTICE = "demo: the models have random weights, so the output is noise: this checks the install, not the models"

# Part of every built file's name: bump it when a builder changes what it writes, so stale
# caches are rebuilt rather than silently reused.
BUILDER_VERSION = 1
BUILD_TIMEOUT_SECONDS = 1800


class BuildFailed(RuntimeError):
    """The builder script failed; the message quotes its output."""


def cache_dir() -> Path:
    """Where built models are kept (``$ANIMATEDIFF_MODEL_CACHE``, else ~/.cache/animatediff-pack/models)."""
    configured = os.environ.get("ANIMATEDIFF_MODEL_CACHE")
    path = Path(configured).expanduser() if configured else Path.home() / ".cache" / "animatediff-pack" / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def built_model(kind: str, comfyui_path: Path, python: str, script: str = __file__) -> Path:
    """The cached file of ``kind``, built on first use by ``script`` (this file, or one with more
    kinds) run with ``python`` (ComfyUI's)."""
    path = cache_dir() / f"{kind}-random-seed0-v{BUILDER_VERSION}.safetensors"
    if path.exists():
        return path
    with atomic_path(path, keep_suffix=True) as partial:  # the script loads it back by its suffix
        command = [python, script, kind, str(partial), "--comfyui", str(comfyui_path)]
        try:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=BUILD_TIMEOUT_SECONDS, preexec_fn=TIED_TO_PARENT)
        except subprocess.TimeoutExpired:
            raise BuildFailed(f"building the random {kind} model took over {BUILD_TIMEOUT_SECONDS} s") from None
        if result.returncode != 0:
            raise BuildFailed(f"building the random {kind} model failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return path


def link_model(target: Path, models_dir: Path, folder: str, name: str) -> str:
    """Make ``target`` appear as ``<models_dir>/<folder>/<name>``; returns ``name`` for a node input."""
    link = models_dir / folder / name
    if link.is_symlink():
        if link.resolve() != target.resolve():
            raise ValueError(f"{folder}/{name} already names a different model ({link.resolve()})")
        return name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return name


def point_at_demo_models(prompt: dict) -> dict:
    """A copy of the API prompt with every checkpoint and motion-module loader set to the demo files."""
    prompt = copy.deepcopy(prompt)
    loaders = [node for node in prompt.values() if node.get("class_type") in DEMO_INPUTS]
    if not loaders:
        raise ValueError(f"--demo found no {' or '.join(DEMO_INPUTS)} node to give its random models to")
    for node in loaders:
        input_name, file_name, _, _ = DEMO_INPUTS[node["class_type"]]
        node["inputs"][input_name] = file_name
    return prompt


def prepare_demo_models(models_dir: Path, comfyui_path: Path, python: str) -> dict[str, Path]:
    """Build (or reuse) the demo files and link them into ``models_dir``; returns the model
    folders to give the server, ``{folder name: path}``."""
    folders = {}
    for _, name, folder, kind in DEMO_INPUTS.values():
        link_model(built_model(kind, comfyui_path, python), models_dir, folder, name)
        folders[folder] = models_dir / folder
    return folders


# -- building: the script, run with ComfyUI's Python --------------------------------------------

# The SD1.5 UNet hyper-parameters, as ComfyUI's model detection reads them from a real SD1.5 checkpoint.
SD15_UNET_CONFIG = {
    "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "out_channels": 4, "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2], "channel_mult": [1, 2, 4, 4], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "transformer_depth_middle": 1,
    "use_linear_in_transformer": False, "context_dim": 768, "use_temporal_resblock": False,
    "use_temporal_attention": False,
}
SD_VAE_CONFIG = {
    "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
    "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}
WEIGHT_STD = 0.02  # small enough that activations stay finite through every block
# Channels of the SD1.5 UNet's four levels, top to bottom: down blocks use them in this
# order, up blocks in reverse, the mid block the last.
SD15_LEVEL_CHANNELS = (320, 640, 1280, 1280)
V2_PE_LENGTH = 32


def randomize(module, generator):
    """Give every parameter a value: ComfyUI's layers skip initialisation and start as
    uninitialised memory. Norms start as identity so the signal is neither lost nor blown up."""
    import torch

    with torch.no_grad():
        for layer in module.modules():
            is_norm = isinstance(layer, (torch.nn.LayerNorm, torch.nn.GroupNorm))
            for name, param in layer.named_parameters(recurse=False):
                if is_norm and name == "weight":
                    param.fill_(1.0)
                elif name == "bias":
                    param.zero_()
                else:
                    param.normal_(0.0, WEIGHT_STD, generator=generator)


def to_fp16(state_dict: dict) -> dict:
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state_dict.items()}


def build_sd15(generator) -> dict:
    import comfy.sd
    import comfy.supported_models
    import torch
    from comfy.ldm.models.autoencoder import AutoencoderKL

    model_config = comfy.supported_models.SD15(SD15_UNET_CONFIG)
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, device="cpu")
    randomize(model.diffusion_model, generator)
    clip = comfy.sd.CLIP(model_config.clip_target(), model_options={"dtype": torch.float32, "initial_device": "cpu"})
    randomize(clip.cond_stage_model, generator)
    vae = AutoencoderKL(ddconfig=SD_VAE_CONFIG, embed_dim=4)
    randomize(vae, generator)
    return to_fp16(checkpoint_state_dict(model, clip.get_sd(), vae.state_dict()))


def checkpoint_state_dict(model, clip_state_dict: dict, vae_state_dict: dict) -> dict:
    """The host's own checkpoint layout of UNet, CLIP and VAE weights. Up to 0.8
    ``BaseModel.state_dict_for_saving(clip, vae)`` reads the UNet itself; later releases take
    the UNet's own state dict first."""
    if "unet_state_dict" in inspect.signature(model.state_dict_for_saving).parameters:
        return model.state_dict_for_saving(model.diffusion_model.state_dict(), clip_state_dict=clip_state_dict,
                                           vae_state_dict=vae_state_dict)
    return model.state_dict_for_saving(clip_state_dict=clip_state_dict, vae_state_dict=vae_state_dict)


def check_sd15(path: str):
    import comfy.sd
    import comfy.supported_models

    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True)
    detected = type(model.model.model_config)
    if detected is not comfy.supported_models.SD15:
        raise SystemExit(f"{path}: detected as {detected.__name__}, not SD15")
    if clip is None or vae is None or vae.first_stage_model is None:
        raise SystemExit(f"{path}: CLIP or VAE not found on load")


def motion_v2_state_dict(generator, level_channels=SD15_LEVEL_CHANNELS) -> dict:
    """A v2 motion module (mid block, 32 positions) in the original key layout, from the core's
    own layout tables: random weights, identity norms, zero biases, sinusoidal encodings."""
    import torch
    from animatediff_core.formats import block_names, module_tensor_shapes
    from animatediff_core.temporal import sinusoidal_pe

    state_dict = {}
    for name in block_names("sd15", has_mid_block=True):
        # down_blocks.<level> counts levels from the top, up_blocks.<level> from the bottom.
        if name.startswith("mid_block."):
            channels = level_channels[-1]
        else:
            level = int(name.split(".")[1])
            channels = level_channels[level] if name.startswith("down_blocks.") else level_channels[-1 - level]
        for relative, shape in module_tensor_shapes(channels, V2_PE_LENGTH).items():
            if relative.endswith("pos_encoder.pe"):
                tensor = sinusoidal_pe(V2_PE_LENGTH, channels)
            elif "norm" in relative:
                tensor = torch.ones(shape) if relative.endswith("weight") else torch.zeros(shape)
            elif relative.endswith("bias"):
                tensor = torch.zeros(shape)
            else:
                tensor = torch.empty(shape).normal_(0.0, WEIGHT_STD, generator=generator)
            state_dict[f"{name}.temporal_transformer.{relative}"] = tensor
    return to_fp16(state_dict)


def check_motion_v2(path: str):
    from animatediff_core import load_motion_model

    family = load_motion_model(path).family
    if family != "v2":
        raise SystemExit(f"{path}: detected as a {family} motion module, not v2")


def run_build_script(builders: dict, description: str = __doc__):
    """``builders``: kind -> (build(generator) -> state dict, check(path)), run with ComfyUI importable.
    The file is saved as ComfyUI saves checkpoints: safetensors, no metadata."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=sorted(builders))
    parser.add_argument("out", help="the .safetensors file to write")
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"),
                        help="ComfyUI checkout (default: $COMFYUI_PATH)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make_state_dict, check = builders[args.kind]
    if not args.comfyui:
        parser.error("--comfyui or COMFYUI_PATH is required")
    sys.path.insert(0, os.path.abspath(args.comfyui))
    from comfy.cli_args import args as comfy_args

    comfy_args.cpu = True  # must be set before comfy.model_management is imported
    importlib.import_module("comfy.sd")  # imports model_management and the model classes
    import safetensors.torch
    import torch

    started = time.monotonic()
    safetensors.torch.save_file(make_state_dict(torch.Generator().manual_seed(args.seed)), args.out)
    check(args.out)
    size_gb = os.path.getsize(args.out) / 1e9
    print(f"built {args.kind}: {args.out} ({size_gb:.2f} GB, {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    run_build_script({"sd15": (build_sd15, check_sd15), "motion_v2": (motion_v2_state_dict, check_motion_v2)})
