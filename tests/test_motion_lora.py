"""MotionLoRA spellings, validation and composition; the v3 domain adapter."""

import pytest
import torch
from safetensors.torch import save_file

from animatediff_core import (
    MotionModelError,
    domain_adapter_factors,
    load_domain_adapter,
    load_motion_lora,
    load_motion_model,
)
from tests.factories import domain_adapter_state_dict, motion_lora_state_dict, motion_state_dict


def compose_lora(weight: torch.Tensor, factors) -> torch.Tensor:
    """The reference: W + sum s * up @ down for ``factors = [(up, down, s), ...]``, in fp32 (spec section 5)."""
    merged = weight.to(torch.float32, copy=True)
    for up, down, strength in factors:
        merged += float(strength) * up.float() @ down.float()
    return merged.to(weight.dtype)

Q0 = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.to_q.weight"
OUT1 = "up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_out.0.weight"


@pytest.fixture(scope="module")
def v2():
    return load_motion_model(motion_state_dict("v2"))


@pytest.mark.parametrize("spelling", ["original", "diffusers", "peft"])
def test_three_spellings_parse_to_the_same_layers(tmp_path, spelling):
    reference = load_motion_lora(motion_lora_state_dict("v2", spelling="original"))
    path = tmp_path / f"lora_{spelling}.safetensors"
    save_file(motion_lora_state_dict("v2", spelling=spelling), path)
    lora = load_motion_lora(path)
    assert lora.rank == 4
    assert set(lora.layers) == set(reference.layers)
    assert len(lora.layers) == 21 * 2 * 4
    for key, (up, down) in reference.layers.items():
        assert torch.equal(lora.layers[key][0], up) and torch.equal(lora.layers[key][1], down)
    assert Q0 in lora.layers and OUT1 in lora.layers


def test_composition_is_the_sum_of_scaled_products_and_leaves_the_base_alone(v2):
    zoom = load_motion_lora(motion_lora_state_dict("v2", seed=1))
    pan = load_motion_lora(motion_lora_state_dict("v2", seed=2))
    base = v2.module.get_parameter(Q0).clone()
    stacked = v2.with_lora(zoom, 0.7).with_lora(pan, -1.5)
    patches = stacked.lora_patches()
    merged = compose_lora(v2.module.get_parameter(Q0), patches[Q0])
    (up1, down1), (up2, down2) = zoom.layers[Q0], pan.layers[Q0]
    expected = base.double() + 0.7 * (up1.double() @ down1.double()) - 1.5 * (up2.double() @ down2.double())
    assert torch.allclose(merged.double(), expected, atol=1e-5)
    assert torch.equal(v2.module.get_parameter(Q0), base)  # weights untouched
    assert v2.loras == () and len(stacked.loras) == 2  # the input value is unchanged
    assert stacked.module is v2.module


def test_strength_zero_is_the_identity(v2):
    lora = load_motion_lora(motion_lora_state_dict("v2"))
    weight = v2.module.get_parameter(Q0)
    assert torch.equal(compose_lora(weight, v2.with_lora(lora, 0.0).lora_patches()[Q0]), weight)


def test_mid_block_entries_are_skipped_for_models_without_one():
    v3 = load_motion_model(motion_state_dict("v3"))
    lora = load_motion_lora(motion_lora_state_dict("v3", with_mid=True))
    assert any(k.startswith("mid_block.") for k in lora.layers)
    patches = v3.with_lora(lora, 1.0).lora_patches()
    assert patches and not any(k.startswith("mid_block.") for k in patches)


def test_lora_for_other_channels_is_refused_with_the_file_name(tmp_path, v2):
    path = tmp_path / "wide.safetensors"
    save_file(motion_lora_state_dict("v2", channels=(64, 64, 64)), path)
    with pytest.raises(MotionModelError, match=r"wide\.safetensors.*different motion model.*\(32, 32\)"):
        v2.with_lora(load_motion_lora(path), 1.0)


def test_sdxl_lora_on_sd15_model_is_refused(v2):
    sdxl_lora = load_motion_lora(motion_lora_state_dict("sdxl_beta", with_mid=False))
    with pytest.raises(MotionModelError, match="different motion model"):
        v2.with_lora(sdxl_lora, 1.0)


def test_domain_adapter_given_as_motion_lora_is_refused(tmp_path):
    path = tmp_path / "v3_sd15_adapter.ckpt"
    torch.save(domain_adapter_state_dict(), path)
    with pytest.raises(MotionModelError, match=r"v3_sd15_adapter\.ckpt.*domain adapter.*domain_adapter input"):
        load_motion_lora(path)


def test_motion_lora_given_as_domain_adapter_is_refused(tmp_path):
    path = tmp_path / "v2_lora_ZoomIn.ckpt"
    torch.save(motion_lora_state_dict("v2"), path)
    with pytest.raises(MotionModelError, match=r"v2_lora_ZoomIn\.ckpt.*MotionLoRA.*Apply MotionLoRA"):
        load_domain_adapter(path)


def test_motion_module_given_as_lora_is_refused():
    with pytest.raises(MotionModelError, match="not a MotionLoRA"):
        load_motion_lora(motion_state_dict("v2"))


def test_lora_with_a_missing_half_is_refused():
    state = motion_lora_state_dict("v2")
    del state[next(k for k in state if k.endswith("up.weight"))]
    with pytest.raises(MotionModelError, match="up matrix .* is missing"):
        load_motion_lora(state)


def test_domain_adapter_layers_and_alpha():
    adapter = load_domain_adapter(domain_adapter_state_dict())
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert key in adapter.layers and adapter.rank == 8
    assert "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.weight" in adapter.layers
    assert len(adapter.layers) == 16 * 2 * 4
    factors = domain_adapter_factors(adapter, 0.5)
    up, down = adapter.layers[key]
    weight = torch.randn(32, 32)
    assert torch.allclose(compose_lora(weight, factors[key]), weight + 0.5 * up @ down, atol=1e-6)
    assert torch.equal(compose_lora(weight, domain_adapter_factors(adapter, 0.0)[key]), weight)
