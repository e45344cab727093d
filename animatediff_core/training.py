"""Training a MotionLoRA (paper section 4.3).

Low-rank factors on the motion modules' attention projections (q, k, v, out of both
attention blocks of every module) learn a camera motion from a few clips; everything else
stays frozen. The objective is the paper's Eq. 5, the one the motion module was trained
with: noise latent clips to a random timestep of the module's own schedule and regress
the noise, ``L = E ||eps - eps_theta(z_t, c, t)||^2`` with ``z_t = sqrt(abar_t) z_0 +
sqrt(1 - abar_t) eps``.
"""

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .errors import MotionModelError
from .motion_lora import LowRankFile

ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")


def attention_targets(motion_model) -> dict[str, tuple[int, int]]:
    """``{weight key: (out, in)}`` of every attention projection a MotionLoRA trains."""
    targets = {}
    for name, block in motion_model.blocks.items():
        for a, attention in enumerate(block.transformer_blocks[0].attention_blocks):
            for projection in ATTENTION_PROJECTIONS:
                weight = attention.get_submodule(projection).weight
                key = f"{name}.temporal_transformer.transformer_blocks.0.attention_blocks.{a}.{projection}.weight"
                targets[key] = tuple(weight.shape)
    return targets


class LoraFactors(nn.Module):
    """``delta W = up @ down`` per target weight. ``up`` starts at zero, so training starts
    from the motion module as it is; ``down`` starts random (std 1/rank) so gradients flow."""

    def __init__(self, targets: dict[str, tuple[int, int]], rank: int, seed: int):
        super().__init__()
        if rank < 1:
            raise MotionModelError(f"rank must be at least 1, got {rank}")
        generator = torch.Generator().manual_seed(seed)
        self.keys = list(targets)
        self.rank = rank
        self.down = nn.ParameterList(
            torch.randn(rank, cols, generator=generator) / rank for _, cols in targets.values())
        self.up = nn.ParameterList(torch.zeros(rows, rank) for rows, _ in targets.values())

    def block_deltas(self, block_name: str) -> dict[str, torch.Tensor]:
        """The deltas of one motion module, keyed relative to its temporal transformer."""
        prefix = f"{block_name}.temporal_transformer."
        return {
            key[len(prefix):]: up @ down
            for key, up, down in zip(self.keys, self.up, self.down)
            if key.startswith(prefix)
        }

    def as_motion_lora(self, source: str, dtype=torch.float16) -> LowRankFile:
        """The factors as a MotionLoRA value, rounded to ``dtype`` as the saved file holds them."""
        layers = {
            key: (up.detach().to("cpu", dtype), down.detach().to("cpu", dtype))
            for key, up, down in zip(self.keys, self.up, self.down)
        }
        return LowRankFile(source, layers, self.rank)


def forward_with_deltas(block: nn.Module, deltas: dict[str, torch.Tensor], *args, **kwargs):
    """``block(*args)`` with ``W + delta`` in place of each named weight; the block is not changed."""
    weights = {name: block.get_parameter(name) + delta for name, delta in deltas.items()}
    return functional_call(block, weights, args, kwargs)


@contextlib.contextmanager
def frozen_for_autograd(*modules: nn.Module):
    """Within: every parameter and buffer of ``modules`` is a frozen tensor that autograd may save.

    Tensors made under ``torch.inference_mode`` (a host may load its models so) cannot be
    saved for backward; each is swapped for a normal tensor over the same memory (no copy),
    and the original objects go back on exit, also after an error.
    """
    swapped = []
    try:
        for module in modules:
            for owner in module.modules():
                for table in (owner._parameters, owner._buffers):
                    for name, tensor in table.items():
                        if tensor is not None and tensor.is_inference():
                            swapped.append((table, name, tensor))
                            table[name] = _alias(tensor)
        yield
    finally:
        for table, name, tensor in reversed(swapped):
            table[name] = tensor


def _alias(tensor: torch.Tensor) -> torch.Tensor:
    view = torch.empty(0, dtype=tensor.dtype, device=tensor.device)
    view.set_(tensor.untyped_storage(), tensor.storage_offset(), tensor.shape, tensor.stride())
    return nn.Parameter(view, requires_grad=False) if isinstance(tensor, nn.Parameter) else view


def noised(latents: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps, ``abar`` one value per row."""
    abar = abar.view(-1, *([1] * (latents.ndim - 1))).to(latents)
    return abar.sqrt() * latents + (1 - abar).sqrt() * noise


@dataclass(frozen=True)
class TrainingSettings:
    steps: int
    learning_rate: float
    batch_size: int  # clips per step
    seed: int
    weight_decay: float = 1e-2


def autocast_dtype(device_type: str, model_dtype: torch.dtype, bf16_supported: bool):
    """Half precision on a GPU (the UNet's own, else bf16 where supported, else fp16); none on a
    CPU, where half-precision maths is slower than fp32."""
    if device_type != "cuda":
        return None
    if model_dtype in (torch.float16, torch.bfloat16):
        return model_dtype
    return torch.bfloat16 if bf16_supported else torch.float16


def train_lora(factors: LoraFactors, predict_noise: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor],
               clips: torch.Tensor, alphas_cumprod: torch.Tensor, settings: TrainingSettings, on_step=None,
               autocast_dtype: torch.dtype | None = None) -> list[float]:
    """AdamW on the factors over ``settings.steps`` steps; returns the loss of every step.

    ``predict_noise(z_t (clips*frames, C, h, w), timesteps (clips*frames,), frames)`` returns eps_theta.
    ``clips``: latents (clips, frames, C, h, w). Each step draws ``batch_size`` clips, one
    timestep per clip (shared by its frames, as in the paper) and fresh noise, all from
    ``settings.seed``. ``on_step(step, loss)`` runs after each step (it may raise to stop).
    """
    if clips.ndim != 5:
        raise MotionModelError(f"clips must be latents (clips, frames, C, h, w), got shape {tuple(clips.shape)}")
    count, frames = clips.shape[:2]
    device = clips.device
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(factors.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    # fp16 gradients underflow without loss scaling; bf16 and fp32 need none.
    scaler = torch.amp.GradScaler(device.type) if autocast_dtype == torch.float16 else None
    losses = []
    for step in range(1, settings.steps + 1):
        chosen = torch.randperm(count, generator=generator)[: settings.batch_size]
        z0 = clips[chosen.to(device)]
        timesteps = torch.randint(0, len(alphas_cumprod), (len(chosen),), generator=generator)
        noise = torch.randn(z0.shape, generator=generator).to(z0)
        z_t = noised(z0, noise, alphas_cumprod[timesteps])
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            prediction = predict_noise(z_t.flatten(0, 1), timesteps.repeat_interleave(frames).to(device), frames)
        loss = F.mse_loss(prediction.float(), noise.flatten(0, 1).float())
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])
    return losses


def loss_curve(losses: list[float], width: int = 512, height: int = 256) -> torch.Tensor:
    """(1, height, width, 3): every step's loss (light) and its running average (dark), scaled to
    the plot; quarter lines help read how far it fell."""
    image = torch.ones(height, width, 3)
    margin = 8
    for quarter in (1, 2, 3):
        image[margin + (height - 2 * margin) * quarter // 4, :] = 0.9
    if not losses:
        return image.unsqueeze(0)
    values = torch.tensor(losses, dtype=torch.float64)
    average = values.clone()
    for i in range(1, len(values)):  # exponential moving average, steadier for short runs than a window
        average[i] = 0.9 * average[i - 1] + 0.1 * values[i]
    low, high = float(values.min()), float(values.max())
    span = (high - low) or 1.0
    for series, colour in ((values, (0.65, 0.75, 0.95)), (average, (0.1, 0.2, 0.6))):
        # One loss value per pixel column (linear between steps), joined by vertical strokes.
        steps = torch.linspace(0, len(series) - 1, width, dtype=torch.float64)
        below = steps.floor().long()
        above = torch.clamp(below + 1, max=len(series) - 1)
        value = series[below] + (series[above] - series[below]) * (steps - below)
        rows = (margin + (high - value) / span * (height - 2 * margin)).round().long()
        for x in range(width):
            top, bottom = sorted((int(rows[x]), int(rows[min(x + 1, width - 1)])))
            image[top:bottom + 2, x] = torch.tensor(colour)
    return image.unsqueeze(0)
