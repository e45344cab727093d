"""MotionLoRA training in the core: objective, what trains and what stays frozen, the saved file."""

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from animatediff_core import MotionModelError, load_motion_lora, load_motion_model
from animatediff_core.motion_lora import motion_lora_tensors
from animatediff_core.schedules import SCHEDULES, alphas_cumprod
from animatediff_core.training import (
    LoraFactors,
    TrainingSettings,
    attention_targets,
    autocast_dtype,
    forward_with_deltas,
    frozen_for_autograd,
    noised,
    train_lora,
)
from tests.factories import TINY, motion_lora_state_dict, motion_state_dict

ABAR = alphas_cumprod(SCHEDULES["sqrt_linear (AnimateDiff)"]).float()
FRAMES = 8


def tiny_denoiser(motion_model, factors, seed=0):
    """eps_theta for tests: latents -> 32 channels -> the motion modules of that width -> latents."""
    generator = torch.Generator().manual_seed(seed)
    project_in = torch.randn(TINY[0], 4, generator=generator) * 0.5
    project_out = torch.randn(4, TINY[0], generator=generator) * 0.5
    blocks = {name: block for name, block in motion_model.blocks.items() if block.norm.weight.shape[0] == TINY[0]}

    def predict(z_t, timesteps, frames):
        h = torch.einsum("oc,nchw->nohw", project_in, z_t)
        for name, block in blocks.items():
            h = forward_with_deltas(block, factors.block_deltas(name), h, frames)
        return torch.einsum("oc,nchw->nohw", project_out, h)

    return predict


def moving_clips(count=4, frames=FRAMES, size=8):
    """Latent clips in which a bright square slides right: something for the motion modules to learn."""
    clips = torch.zeros(count, frames, 4, size, size)
    for c in range(count):
        for f in range(frames):
            x = (c + f) % (size - 2)
            clips[c, f, :, 2:5, x:x + 2] = 1.0
    return clips


@pytest.fixture()
def v2():
    return load_motion_model(motion_state_dict("v2", std=0.05))


def test_targets_are_the_attention_projections_of_every_module(v2):
    targets = attention_targets(v2)
    assert len(targets) == len(v2.blocks) * 2 * 4
    reference = load_motion_lora(motion_lora_state_dict("v2"))
    assert set(targets) == set(reference.layers)


def test_noised_is_the_forward_process():
    z0, eps = torch.ones(2, 3), torch.full((2, 3), 2.0)
    abar = torch.tensor([0.25, 1.0])
    assert torch.allclose(noised(z0, eps, abar), torch.tensor([[0.5 + 0.75**0.5 * 2] * 3, [1.0] * 3]))


def test_factors_start_as_the_module_itself(v2):
    factors = LoraFactors(attention_targets(v2), rank=4, seed=0)
    name, block = next(iter(v2.blocks.items()))
    x = torch.randn(2 * FRAMES, TINY[0], 4, 4)
    assert torch.equal(forward_with_deltas(block, factors.block_deltas(name), x, FRAMES), block(x, FRAMES))


def test_loss_falls_and_only_the_factors_train(v2):
    before = {k: v.clone() for k, v in v2.module.state_dict().items()}
    factors = LoraFactors(attention_targets(v2), rank=8, seed=0)
    settings = TrainingSettings(steps=40, learning_rate=3e-3, batch_size=2, seed=0)
    seen = []
    losses = train_lora(factors, tiny_denoiser(v2, factors), moving_clips(), ABAR, settings,
                        on_step=lambda step, loss: seen.append(step))
    assert seen == list(range(1, 41))
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
    assert all(p.grad is None for p in v2.module.parameters())
    assert all(torch.equal(before[k], v) for k, v in v2.module.state_dict().items())
    assert any(up.abs().sum() > 0 for up in factors.up)


def test_training_is_reproducible_from_the_seed(v2):
    def run():
        factors = LoraFactors(attention_targets(v2), rank=4, seed=3)
        train_lora(factors, tiny_denoiser(v2, factors), moving_clips(), ABAR,
                   TrainingSettings(steps=3, learning_rate=1e-3, batch_size=2, seed=5))
        return [up.detach().clone() for up in factors.up]

    assert all(torch.equal(a, b) for a, b in zip(run(), run()))


def test_saved_file_has_the_official_layout_and_loads_back_exactly(v2, tmp_path):
    factors = LoraFactors(attention_targets(v2), rank=4, seed=0)
    with torch.no_grad():
        for up in factors.up:
            up.normal_()
    lora = factors.as_motion_lora("trained")
    path = tmp_path / "camera.safetensors"
    save_file(motion_lora_tensors(lora), path, metadata={"motion": "zoom in"})
    with safe_open(str(path), "pt") as f:
        assert set(f.keys()) == set(motion_lora_state_dict("v2", rank=4))
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
        assert f.metadata() == {"motion": "zoom in"}
    loaded = load_motion_lora(path)
    assert loaded.rank == 4 and set(loaded.layers) == set(lora.layers)
    for key, (up, down) in lora.layers.items():
        assert torch.equal(loaded.layers[key][0], up) and torch.equal(loaded.layers[key][1], down)


def test_rank_must_be_positive(v2):
    with pytest.raises(MotionModelError, match="rank must be at least 1"):
        LoraFactors(attention_targets(v2), rank=0, seed=0)


def test_modules_made_in_inference_mode_train_and_are_given_back():
    with torch.inference_mode():
        layer = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    originals = [p for p in layer.parameters()]
    trainable = nn.Parameter(torch.zeros(4))
    with frozen_for_autograd(layer):
        layer(torch.randn(3, 4) + trainable).sum().backward()
    assert trainable.grad is not None
    assert all(a is b for a, b in zip(layer.parameters(), originals))
    with pytest.raises(RuntimeError, match="Inference tensors"):
        layer(torch.randn(3, 4) + trainable).sum().backward()


def test_autocast_is_half_precision_on_gpus_only():
    assert autocast_dtype("cpu", torch.float32, True) is None
    assert autocast_dtype("cuda", torch.float16, True) == torch.float16
    assert autocast_dtype("cuda", torch.float32, True) == torch.bfloat16
    assert autocast_dtype("cuda", torch.float32, False) == torch.float16
