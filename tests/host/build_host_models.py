"""Build random-weight model files that a real ComfyUI detects as genuine SD1.5 models.

Runs with ComfyUI's own Python, because the models are built from ComfyUI's classes
(so their key layout is exactly what its loaders expect):

    python build_host_models.py sd15 OUT.safetensors --comfyui /path/to/ComfyUI
    python build_host_models.py controlnet OUT.safetensors --comfyui /path/to/ComfyUI

Deterministic for a given seed; writes to a temporary name and renames, so an
interrupted build never leaves a truncated file under OUT. After writing, the file
is loaded back with ComfyUI's own loaders and must be detected as SD1.5.
"""

import argparse
import os
import sys
import time

import torch

# comfy.* is imported inside the functions: it becomes importable only once main()
# has put the ComfyUI checkout on sys.path.

# The SD1.5 UNet hyper-parameters, as ComfyUI's model detection reads them from a
# real SD1.5 checkpoint.
SD15_UNET_CONFIG = {
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2],
    "channel_mult": [1, 2, 4, 4],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}

SD_VAE_CONFIG = {
    "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
    "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}

WEIGHT_STD = 0.02  # small enough that activations stay finite through every block


def import_comfy(comfyui_path: str):
    sys.path.insert(0, comfyui_path)
    from comfy.cli_args import args

    args.cpu = True  # must be set before comfy.model_management is imported
    import comfy.sd  # noqa: F401  (imports model_management and the model classes)


def randomize(module, generator):
    """Give every parameter a value: ComfyUI's layers skip initialisation and start as
    uninitialised memory. Norms start as identity so the signal is neither lost nor blown up."""
    norm_types = (torch.nn.LayerNorm, torch.nn.GroupNorm)
    with torch.no_grad():
        for layer in module.modules():
            is_norm = isinstance(layer, norm_types)
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
    from comfy.ldm.models.autoencoder import AutoencoderKL

    model_config = comfy.supported_models.SD15(SD15_UNET_CONFIG)
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, device="cpu")
    randomize(model.diffusion_model, generator)

    clip_target = model_config.clip_target()
    clip = comfy.sd.CLIP(clip_target, model_options={"dtype": torch.float32, "initial_device": "cpu"})
    randomize(clip.cond_stage_model, generator)

    vae = AutoencoderKL(ddconfig=SD_VAE_CONFIG, embed_dim=4)
    randomize(vae, generator)

    return to_fp16(model.state_dict_for_saving(clip.get_sd(), vae.state_dict()))


def check_sd15(path: str):
    import comfy.sd
    import comfy.supported_models

    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True)
    detected = type(model.model.model_config)
    if detected is not comfy.supported_models.SD15:
        raise SystemExit(f"{path}: detected as {detected.__name__}, not SD15")
    if clip is None or vae is None or vae.first_stage_model is None:
        raise SystemExit(f"{path}: CLIP or VAE not found on load")


def build_controlnet(generator) -> dict:
    import comfy.cldm.cldm
    import comfy.ops

    config = {k: v for k, v in SD15_UNET_CONFIG.items() if k != "out_channels"}
    control_model = comfy.cldm.cldm.ControlNet(
        **config, num_heads=8, num_head_channels=-1, hint_channels=3,
        dtype=torch.float32, device="cpu", operations=comfy.ops.disable_weight_init,
    )
    randomize(control_model, generator)
    return to_fp16(control_model.state_dict())


def check_controlnet(path: str):
    import comfy.controlnet
    import comfy.model_detection
    import comfy.supported_models
    import comfy.utils

    state_dict = comfy.utils.load_torch_file(path, safe_load=True)
    detected = comfy.model_detection.model_config_from_unet(state_dict, "", True)
    if type(detected) is not comfy.supported_models.SD15:
        raise SystemExit(f"{path}: ControlNet detected as {type(detected).__name__}, not SD15")
    if comfy.controlnet.load_controlnet(path) is None:
        raise SystemExit(f"{path}: ComfyUI's ControlNet loader rejected it")


BUILDERS = {"sd15": (build_sd15, check_sd15), "controlnet": (build_controlnet, check_controlnet)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=sorted(BUILDERS))
    parser.add_argument("out", help="the .safetensors file to write")
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"), help="ComfyUI checkout (default: $COMFYUI_PATH)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.comfyui:
        parser.error("--comfyui or COMFYUI_PATH is required")

    import_comfy(os.path.abspath(args.comfyui))
    import comfy.utils

    build, check = BUILDERS[args.kind]
    started = time.monotonic()
    state_dict = build(torch.Generator().manual_seed(args.seed))
    # Keeps the extension: ComfyUI's loader picks the format from it.
    partial = os.path.join(os.path.dirname(os.path.abspath(args.out)), f".partial-{os.getpid()}-{os.path.basename(args.out)}")
    try:
        comfy.utils.save_torch_file(state_dict, partial)
        del state_dict
        check(partial)
        os.replace(partial, args.out)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    size_gb = os.path.getsize(args.out) / 1e9
    print(f"built {args.kind}: {args.out} ({size_gb:.2f} GB, {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
