"""The injection plan against a description of the SD1.5 UNet (ComfyUI indices)."""

import pytest

from animatediff_core import MotionModelError, UnetBlock, load_motion_model, plan_injection
from tests.factories import FULL, TINY, motion_state_dict


def sd15_unet(channels=TINY):
    c0, c1, c2 = channels
    attn = ("res", "attn")
    unet = {("input", 0): UnetBlock(4, ("conv",))}
    for i, (c, layers) in enumerate(
        [(c0, attn), (c0, attn), (c0, ("down",)), (c1, attn), (c1, attn), (c1, ("down",)),
         (c2, attn), (c2, attn), (c2, ("down",)), (c2, ("res",)), (c2, ("res",))], start=1
    ):
        unet[("input", i)] = UnetBlock(c, layers)
    unet[("middle", 0)] = UnetBlock(c2, ("res", "attn", "res"))
    outs = [(c2, ("res",)), (c2, ("res",)), (c2, ("res", "up")),
            (c2, attn), (c2, attn), (c2, ("res", "attn", "up")),
            (c1, attn), (c1, attn), (c1, ("res", "attn", "up")),
            (c0, attn), (c0, attn), (c0, attn)]
    for i, (c, layers) in enumerate(outs):
        unet[("output", i)] = UnetBlock(c, layers)
    return unet


def test_v2_plan_follows_the_spec_table():
    plan = {p.module: p for p in plan_injection(load_motion_model(motion_state_dict("v2")), "sd15", sd15_unet())}
    assert len(plan) == 21
    expected_blocks = {
        "down_blocks.0.motion_modules.0": ("input", 1), "down_blocks.0.motion_modules.1": ("input", 2),
        "down_blocks.1.motion_modules.0": ("input", 4), "down_blocks.2.motion_modules.1": ("input", 8),
        "down_blocks.3.motion_modules.0": ("input", 10), "down_blocks.3.motion_modules.1": ("input", 11),
        "mid_block.motion_modules.0": ("middle", 0),
        "up_blocks.0.motion_modules.0": ("output", 0), "up_blocks.0.motion_modules.2": ("output", 2),
        "up_blocks.1.motion_modules.2": ("output", 5), "up_blocks.3.motion_modules.2": ("output", 11),
    }
    for module, block in expected_blocks.items():
        assert plan[module].block == block, module
    assert plan["down_blocks.0.motion_modules.0"].index == 2  # after the transformer
    assert plan["down_blocks.3.motion_modules.0"].index == 1  # after the ResBlock
    assert plan["mid_block.motion_modules.0"].index == 2  # between transformer and 2nd ResBlock
    assert plan["up_blocks.0.motion_modules.2"].index == 1  # before the upsampler
    assert plan["up_blocks.1.motion_modules.2"].index == 2  # after the transformer, before the upsampler


def test_every_module_has_its_own_place():
    plan = plan_injection(load_motion_model(motion_state_dict("v3")), "sd15", sd15_unet())
    assert len({p.block for p in plan}) == 20


def test_sdxl_module_is_refused_for_sd15():
    mm = load_motion_model(motion_state_dict("hotshotxl"))
    with pytest.raises(MotionModelError, match="SDXL motion module.*cannot animate an SD1.5 checkpoint"):
        plan_injection(mm, "sd15", sd15_unet())


def test_non_sd15_unet_is_refused():
    with pytest.raises(MotionModelError, match="the model is 'sdxl'.*load an SD1.5 checkpoint"):
        plan_injection(load_motion_model(motion_state_dict("v2")), "sdxl", sd15_unet())


def test_channel_mismatch_is_refused():
    with pytest.raises(MotionModelError, match="has 32 channels but UNet input block 1 has 320"):
        plan_injection(load_motion_model(motion_state_dict("v2")), "sd15", sd15_unet(FULL))
