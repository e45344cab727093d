"""Schedule tables against diffusers' own DDIMScheduler (the naming swap included)."""

import pytest
import torch
from diffusers import DDIMScheduler

from animatediff_core import MotionModelError
from animatediff_core.formats import FAMILIES
from animatediff_core.schedules import SCHEDULES, alphas_cumprod, schedule_named, sigmas


# diffusers swaps ComfyUI's names: ComfyUI sqrt_linear is diffusers' "linear", ComfyUI linear its "scaled_linear".
DIFFUSERS_NAMES = {"sqrt_linear": "linear", "linear": "scaled_linear"}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_alphas_match_diffusers_under_its_name(name):
    schedule = SCHEDULES[name]
    reference = DDIMScheduler(
        beta_start=schedule.beta_start, beta_end=schedule.beta_end, beta_schedule=DIFFUSERS_NAMES[schedule.betas_kind]
    )
    assert torch.allclose(alphas_cumprod(schedule).float(), reference.alphas_cumprod, atol=1e-6)


def test_sigma_max_of_animatediff_and_sd15_schedules():
    assert sigmas(schedule_named("sqrt_linear (AnimateDiff)"))[-1].item() == pytest.approx(25.15, abs=0.01)
    assert sigmas(schedule_named("linear (SD1.5 default, HotshotXL)"))[-1].item() == pytest.approx(14.61, abs=0.01)


def test_lcm_keeps_fifty_distilled_timesteps():
    full = sigmas(schedule_named("linear (SD1.5 default, HotshotXL)"))
    lcm = sigmas(schedule_named("lcm (AnimateLCM)"))
    assert lcm.shape == (50,)
    assert torch.equal(lcm, full[19::20]) and lcm[-1] == full[-1]
    assert torch.all(lcm[1:] > lcm[:-1])


def test_every_family_has_a_schedule():
    assert set(FAMILIES) == {"v1", "v2", "v3", "animatelcm", "sdxl_beta", "hotshotxl"}
    assert all(family.schedule in SCHEDULES for family in FAMILIES.values())


def test_unknown_name_is_refused():
    with pytest.raises(MotionModelError, match="beta_schedule 'cosine' is unknown"):
        schedule_named("cosine")
