"""Every family, written in its official key layout, loads back bit-exact and is detected."""

import re

import pytest
import torch
from safetensors.torch import save_file

from animatediff_core import MotionModelError, load_motion_model
from tests.factories import FAMILIES, motion_state_dict

EXPECTED = {
    # family: (base_model, pe_length, has_mid_block, modules)
    "v1": ("sd15", 24, False, 20),
    "v2": ("sd15", 32, True, 21),
    "v3": ("sd15", 32, False, 20),
    "animatelcm": ("sd15", 64, True, 21),
    "sdxl_beta": ("sdxl", 32, False, 15),
    "hotshotxl": ("sdxl", 24, False, 15),
}


def file_layout(mm) -> dict:
    """The loaded tensors under the key names of the file they came from: HotshotXL's own names,
    no stored positional encodings for AnimateLCM (the core computes them)."""
    tensors = mm.module.state_dict()
    if not mm.layout.stores_pe:
        tensors = {k: v for k, v in tensors.items() if not k.endswith("pos_encoder.pe")}
    if mm.family == "hotshotxl":
        tensors = {re.sub(r"\.motion_modules\.(\d+)\.temporal_transformer\.", r".temporal_attentions.\1.", k)
                   .replace("pos_encoder.pe", "pos_encoder.positional_encoding"): v for k, v in tensors.items()}
    return tensors


def groupnorm(mm) -> str:
    return next(iter(mm.blocks.values())).groupnorm


def _assert_tensor_equal(a: dict, b: dict):
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("container", [".safetensors", ".ckpt", ".pth", ".pt"])
def test_family_round_trips_bit_exact(tmp_path, family, container):
    state = motion_state_dict(family, dtype=torch.float16)
    path = tmp_path / f"{family}{container}"
    if container == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    mm = load_motion_model(path)
    base, pe_length, mid, modules = EXPECTED[family]
    assert (mm.family, mm.base_model, mm.pe_length, mm.has_mid_block) == (family, base, pe_length, mid)
    assert len(mm.blocks) == modules
    _assert_tensor_equal(file_layout(mm), state)
    assert str(path) in mm.source


def test_parameter_count_matches_the_spec_formula():
    state = motion_state_dict("v2")
    mm = load_motion_model(state)
    for name, block in mm.blocks.items():
        c = block.norm.weight.shape[0]
        assert sum(p.numel() for p in block.parameters()) == 22 * c * c + 21 * c
        assert len(block.state_dict()) == 28, name


def test_animatelcm_gets_the_computed_positional_encoding():
    mm = load_motion_model(motion_state_dict("animatelcm"))
    from tests.factories import official_pe

    block = mm.blocks["down_blocks.0.motion_modules.0"]
    pe = block.transformer_blocks[0].attention_blocks[0].pos_encoder.pe
    assert pe.shape == (1, 64, 32)
    assert torch.allclose(pe, official_pe(64, 32), atol=1e-6)


def test_pickle_wrappers_prefixes_and_non_tensor_entries(tmp_path):
    state = motion_state_dict("v3")
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "animatediff_config": {"a": 1}}
    wrapped["state_dict"]["global_step"] = 1234
    path = tmp_path / "wrapped.ckpt"
    torch.save(wrapped, path)
    mm = load_motion_model(path)
    assert mm.family == "v3"
    _assert_tensor_equal(file_layout(mm), state)


def test_unet_prefix_is_stripped():
    state = motion_state_dict("v1")
    mm = load_motion_model({f"unet.{k}": v for k, v in state.items()})
    _assert_tensor_equal(file_layout(mm), state)


def test_renamed_file_is_read_by_content(tmp_path):
    state = motion_state_dict("v2")
    path = tmp_path / "actually_safetensors.ckpt"
    save_file(state, path)
    assert load_motion_model(path).family == "v2"


def test_diffusers_naming_from_a_real_motion_adapter():
    from diffusers import MotionAdapter

    adapter = MotionAdapter(block_out_channels=(32, 64, 64, 64), motion_max_seq_length=32, use_motion_mid_block=True)
    mm = load_motion_model(adapter.state_dict())
    assert (mm.family, mm.pe_length, mm.has_mid_block) == ("v2", 32, True)
    ours = file_layout(mm)
    theirs = adapter.state_dict()
    for name in mm.blocks:
        prefix = f"{name}.temporal_transformer."
        d = f"{name}.transformer_blocks.0."
        assert torch.equal(ours[prefix + "norm.weight"], theirs[f"{name}.norm.weight"])
        assert torch.equal(ours[prefix + "transformer_blocks.0.attention_blocks.1.to_v.weight"], theirs[d + "attn2.to_v.weight"])
        assert torch.equal(ours[prefix + "transformer_blocks.0.ff_norm.bias"], theirs[d + "norm3.bias"])
        for a in (0, 1):
            assert torch.equal(ours[prefix + f"transformer_blocks.0.attention_blocks.{a}.pos_encoder.pe"], theirs[d + "pos_embed.pe"])


def test_groupnorm_scope_defaults_by_family_and_can_be_chosen():
    assert groupnorm(load_motion_model(motion_state_dict("v2"))) == "per_frame"
    assert groupnorm(load_motion_model(motion_state_dict("sdxl_beta"))) == "across_frames"
    assert groupnorm(load_motion_model(motion_state_dict("v2"), groupnorm="across_frames")) == "across_frames"


def test_loading_does_not_copy_the_tensors():
    state = motion_state_dict("v3")
    mm = load_motion_model(state)
    key = "up_blocks.3.motion_modules.2.temporal_transformer.proj_out.weight"
    assert mm.module.get_parameter(key).data_ptr() == state[key].data_ptr()
    assert not any(p.requires_grad for p in mm.module.parameters())


def test_the_frame_limit_is_the_positional_encoding_length():
    v2 = load_motion_model(motion_state_dict("v2"))
    v2.check_frames(32, "latent_image", "unused")  # the limit itself is fine
    with pytest.raises(MotionModelError) as error:
        v2.check_frames(33, "frames_per_clip", "use at most 32")
    assert str(error.value) == (
        "frames_per_clip: 33 frames, but AnimateDiff v2 (SD15, 32 frames max, mid block) takes at most 32 at once: "
        "use at most 32"
    )
