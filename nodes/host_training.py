"""The host side of Train MotionLoRA. eps_theta is the user's UNet with the motion modules attached to a clone of
the MODEL exactly as Inject into Model attaches them; the host loads both, and the core's training loop calls the
UNet directly, one batch of clips per step. The UNet and the motion module are only read."""

import contextlib
import functools
from pathlib import Path

import comfy.model_management
import folder_paths
import torch
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock
from safetensors.torch import save_file
from torch.utils.checkpoint import checkpoint

from ..animatediff_core import MotionModelError, training
from ..animatediff_core.motion_lora import LowRankFile, motion_lora_tensors
from ..animatediff_core.schedules import alphas_cumprod, schedule_named
from ..video.files import resolve_output_stem
from ..video.whole_files import atomic_path
from . import host
from .sampling import MotionSampling, MotionSettings, attach


def new_lora_path(lora_name: str) -> Path:
    """models/animatediff_motion_lora/<lora_name>_<counter>.safetensors, the next free counter
    (subfolders and date tokens as in Video Combine's filename_prefix)."""
    folder = Path(folder_paths.models_dir) / host.MOTION_LORAS
    stem = resolve_output_stem(folder, lora_name.strip().removesuffix(".safetensors"), input_name="lora_name")
    return stem.with_name(stem.name + ".safetensors")


def train_motion_lora(model, latents: torch.Tensor, context: torch.Tensor, motion_model, placements, rank: int,
                      settings: training.TrainingSettings, gradient_checkpointing: bool,
                      on_step) -> tuple[training.LoraFactors, list]:
    """LoRA factors trained on ``latents`` with ``context`` as the caption, and every step's loss."""
    patched = model.clone()
    sampling = MotionSampling(motion_model.model, placements, MotionSettings())
    attach(patched, sampling, host.motion_patcher_for(motion_model))
    device = comfy.model_management.get_torch_device()
    unet = patched.model
    dtype = unet.manual_cast_dtype or unet.get_dtype()
    schedule = alphas_cumprod(schedule_named(motion_model.model.traits.schedule)).float()
    half = training.autocast_dtype(device.type, dtype, device.type == "cuda" and torch.cuda.is_bf16_supported())
    with torch.inference_mode(False), torch.enable_grad():
        factors = training.LoraFactors(training.attention_targets(motion_model.model), rank, settings.seed).to(device)

        def predict_noise(z_t, timesteps, frames):
            sampling.video_frames = frames
            return unet.diffusion_model(z_t.to(dtype), timesteps.float(), context=context.expand(len(z_t), -1, -1),
                                        transformer_options=transformer_options)

        def call_block(name, block, x, frames, **block_settings):
            deltas = factors.block_deltas(name)
            if gradient_checkpointing:
                return checkpoint(training.forward_with_deltas, block, deltas, x, frames, use_reentrant=False,
                                  **block_settings)
            return training.forward_with_deltas(block, deltas, x, frames, **block_settings)

        sampling.call_block = call_block
        try:
            # Everything else leaves memory: activations for backward need all the room there is.
            comfy.model_management.load_models_gpu([patched], memory_required=1e20, force_full_load=True)
            z0 = unet.process_latent_in(latents.to(device).clone()).float()
            context = context.to(device, dtype).clone()
            transformer_options = {**patched.model_options.get("transformer_options", {}), "cond_or_uncond": [0]}
            with training.frozen_for_autograd(unet.diffusion_model, motion_model.model.module), \
                    _checkpointed(unet.diffusion_model, gradient_checkpointing):
                losses = training.train_lora(factors, predict_noise, z0, schedule, settings, on_step, half)
        finally:
            # The motion layers come out of the UNet again, also after an error or an interrupt (as after sampling).
            patched.eject_model()
    return factors, losses


@contextlib.contextmanager
def _checkpointed(diffusion_model, enabled: bool):
    """Within: the UNet's ResBlocks and transformers keep only their inputs for backward and
    recompute the rest (bench/bench_training.py measures what that saves and costs)."""
    layers = [m for m in diffusion_model.modules() if isinstance(m, (ResBlock, SpatialTransformer))] if enabled else []
    for layer in layers:
        layer.forward = functools.partial(checkpoint, type(layer).forward, layer, use_reentrant=False)
    try:
        yield
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)


def stop_if_interrupted() -> None:
    comfy.model_management.throw_exception_if_processing_interrupted()


def save_motion_lora(path: Path, lora: LowRankFile, metadata: dict) -> None:
    try:
        with atomic_path(path) as partial:
            save_file({k: v.contiguous() for k, v in motion_lora_tensors(lora).items()}, str(partial),
                      metadata={k: str(v) for k, v in metadata.items()})
    except OSError as error:
        raise MotionModelError(f"lora_name: cannot write {path}: {error.strerror or error}") from None
