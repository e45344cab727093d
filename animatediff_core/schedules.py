"""Noise schedules each motion-model family was trained with (spec section 6).

Names follow ComfyUI. diffusers swaps them: ComfyUI ``sqrt_linear`` =
``linspace(b0, b1)`` = diffusers "linear"; ComfyUI ``linear`` =
``linspace(sqrt b0, sqrt b1)^2`` = diffusers "scaled_linear".
"""

from dataclasses import dataclass

import torch

from .errors import MotionModelError

TIMESTEPS = 1000
LCM_ORIGINAL_STEPS = 50


@dataclass(frozen=True)
class Schedule:
    name: str  # the name shown to users
    betas_kind: str  # ComfyUI naming: "linear" | "sqrt_linear"
    beta_start: float
    beta_end: float
    lcm: bool = False  # AnimateLCM: consistency-model sampling over 50 distilled timesteps


SCHEDULES = {
    s.name: s
    for s in (
        Schedule("sqrt_linear (AnimateDiff)", "sqrt_linear", 0.00085, 0.012),
        Schedule("linear (SD1.5 default, HotshotXL)", "linear", 0.00085, 0.012),
        Schedule("linear (SDXL beta, beta_end 0.020)", "linear", 0.00085, 0.020),
        Schedule("lcm (AnimateLCM)", "linear", 0.00085, 0.012, lcm=True),
    )
}


def schedule_named(name: str) -> Schedule:
    if name not in SCHEDULES:
        raise MotionModelError(f"beta_schedule {name!r} is unknown; choose one of {list(SCHEDULES)}")
    return SCHEDULES[name]


def betas(schedule: Schedule) -> torch.Tensor:
    """float64, as the host computes them."""
    if schedule.betas_kind == "sqrt_linear":
        return torch.linspace(schedule.beta_start, schedule.beta_end, TIMESTEPS, dtype=torch.float64)
    return torch.linspace(schedule.beta_start**0.5, schedule.beta_end**0.5, TIMESTEPS, dtype=torch.float64) ** 2


def alphas_cumprod(schedule: Schedule) -> torch.Tensor:
    return torch.cumprod(1.0 - betas(schedule), dim=0)


def sigmas(schedule: Schedule) -> torch.Tensor:
    """sigma_t = sqrt((1 - abar_t) / abar_t), float32, ascending; LCM keeps its 50 distilled timesteps."""
    abar = alphas_cumprod(schedule)
    full = ((1 - abar) / abar).sqrt().to(torch.float32)
    if not schedule.lcm:
        return full
    skip = TIMESTEPS // LCM_ORIGINAL_STEPS
    return full[skip - 1 :: skip]
