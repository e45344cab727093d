"""Numerical parity with diffusers' independent implementation (AnimateDiffTransformer3D)."""

import pytest
import torch
from diffusers import MotionAdapter

from animatediff_core import load_motion_model


@pytest.fixture(scope="module")
def adapter_and_model():
    torch.manual_seed(0)
    adapter = MotionAdapter(block_out_channels=(32, 64, 64, 64), motion_max_seq_length=32, use_motion_mid_block=True)
    with torch.no_grad():
        for p in adapter.parameters():  # proj_out starts at zero: randomise everything
            p.normal_(0, 0.2)
    adapter.eval()
    return adapter, load_motion_model(adapter.state_dict(), groupnorm="across_frames")


PARITY_FRAMES = (1, 2, 7, 16, 24, 31, 32)  # the edges, odd counts, and what is sampled in practice


def test_every_block_matches_diffusers_for_1_to_32_frames(adapter_and_model):
    adapter, mm = adapter_and_model
    worst = 0.0
    with torch.no_grad():
        for name, block in mm.blocks.items():
            theirs = adapter.get_submodule(name)
            c = block.norm.weight.shape[0]
            for frames in PARITY_FRAMES:
                x = torch.randn(2 * frames, c, 3, 2)
                diff = (block(x, frames) - theirs(x, num_frames=frames)).abs().max().item()
                worst = max(worst, diff)
    assert worst <= 1e-5


def test_per_frame_and_across_frames_groupnorm_differ(adapter_and_model):
    _, mm = adapter_and_model
    per_frame = load_motion_model(mm.module.state_dict(), groupnorm="per_frame")
    x = torch.randn(8, 32, 4, 4) * torch.linspace(0.5, 3, 8).view(8, 1, 1, 1)
    name = "down_blocks.0.motion_modules.0"
    with torch.no_grad():
        across = mm.blocks[name](x, 8)
        single = per_frame.blocks[name](x, 8)
        assert (across - single).abs().max() > 1e-3
        # With one frame both scopes see the same statistics.
        assert torch.allclose(mm.blocks[name](x[:1], 1), per_frame.blocks[name](x[:1], 1), atol=1e-6)
