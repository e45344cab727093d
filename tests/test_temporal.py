"""Invariants of one motion module: effect, scale, per-frame values and masks, batch layout."""

import pytest
import torch

from animatediff_core import MotionModelError, load_motion_model
from tests.factories import motion_state_dict

NAME = "down_blocks.1.motion_modules.0"  # 64 channels in the tiny layout


@pytest.fixture(scope="module")
def block():
    return load_motion_model(motion_state_dict("v2", std=0.05)).blocks[NAME]


def _x(frames=8, batch=2, size=(4, 5)):
    return torch.randn(batch * frames, 64, *size)


def test_effect_zero_returns_the_input_exactly(block):
    x = _x()
    assert block(x, 8, effect=0.0) is x


def test_effect_blends_the_change_linearly(block):
    x = _x()
    full = block(x, 8)
    assert (full - x).abs().max() > 1e-2  # the module does change the input
    assert torch.allclose(block(x, 8, effect=0.25), x + 0.25 * (full - x), atol=1e-5)


def test_per_frame_effect_applies_per_frame(block):
    x = _x()
    effect = torch.tensor([0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0, 0.3])
    out = block(x, 8, effect=effect.tolist()).view(2, 8, 64, 4, 5)
    full = block(x, 8).view(2, 8, 64, 4, 5)
    xs = x.view(2, 8, 64, 4, 5)
    for f, e in enumerate(effect.tolist()):
        expected = xs[:, f] + e * (full[:, f] - xs[:, f])
        assert torch.allclose(out[:, f], expected, atol=1e-5)
    assert torch.equal(out[:, 0], xs[:, 0])  # e=0 frames untouched


def test_scale_one_is_the_plain_forward_and_other_scales_change_it(block):
    x = _x()
    plain = block(x, 8)
    assert torch.allclose(block(x, 8, scale=[1.0] * 8), plain, atol=1e-6)
    assert (block(x, 8, scale=1.5) - plain).abs().max() > 1e-4


def test_scale_multiplies_the_keys():
    """Scaling k by s is a softmax temperature: the same as doubling every to_k weight."""
    block = load_motion_model(motion_state_dict("v2", std=0.05)).blocks[NAME]
    x = _x()
    scaled = block(x, 8, scale=2.0)
    for attention in block.transformer_blocks[0].attention_blocks:
        attention.to_k.weight.mul_(2.0)
    assert torch.allclose(scaled, block(x, 8), atol=1e-5)


def test_constant_mask_equals_the_float(block):
    x = _x()
    assert torch.allclose(block(x, 8, scale=torch.full((8, 2, 2), 1.3)), block(x, 8, scale=1.3), atol=1e-5)
    assert torch.allclose(block(x, 8, effect=torch.full((8, 3, 3), 0.4)), block(x, 8, effect=0.4), atol=1e-5)


def test_spatial_mask_acts_per_pixel(block):
    """Attention runs per pixel, so a half/half mask equals two float runs, column by column."""
    x = _x(size=(4, 6))
    mask = torch.ones(8, 4, 6)
    mask[:, :, 3:] = 0.5
    out = block(x, 8, scale=mask)
    assert torch.allclose(out[..., :3], block(x, 8, scale=1.0)[..., :3], atol=1e-5)
    assert torch.allclose(out[..., 3:], block(x, 8, scale=0.5)[..., 3:], atol=1e-5)


def test_batch_items_never_mix(block):
    x = _x(batch=3)
    together = block(x, 8)
    for b in range(3):
        alone = block(x[b * 8 : (b + 1) * 8], 8)
        assert torch.allclose(together[b * 8 : (b + 1) * 8], alone, atol=1e-5)


def test_frames_do_mix_within_a_batch_item(block):
    x = _x(batch=1)
    out = block(x, 8)
    x2 = x.clone()
    x2[7] += torch.randn_like(x2[7])
    assert (block(x2, 8)[0] - out[0]).abs().max() > 1e-4


def test_half_precision_runs_and_stays_close():
    mm = load_motion_model(motion_state_dict("v2", dtype=torch.float16))
    block16 = mm.blocks[NAME]
    block32 = load_motion_model(motion_state_dict("v2")).blocks[NAME]
    x = _x(frames=4) * 0.5
    out = block16(x.half(), 4)
    assert out.dtype == torch.float16
    assert torch.allclose(out.float(), block32(x, 4), atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize(
    "frames, rows, message",
    [
        (0, 8, "num_frames must be at least 1"),
        (3, 8, "multiple of 3 rows"),
        (40, 80, "add Context Options"),
    ],
)
def test_bad_frame_counts_are_refused(block, frames, rows, message):
    with pytest.raises(MotionModelError, match=message):
        block(torch.randn(rows, 64, 2, 2), frames)


def test_per_frame_value_of_wrong_length_is_refused(block):
    with pytest.raises(MotionModelError, match="3 values but 8 frames"):
        block(_x(), 8, effect=[1.0, 0.5, 0.0])
