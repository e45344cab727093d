"""Load Motion Module, Apply MotionLoRA and Inject into Model inside the real ComfyUI server."""

import re

import pytest
import torch

from .api import PromptFailed, animatediff, node, txt2vid_prompt

NODES = ("AnimateDiffLoadMotionModule", "AnimateDiffApplyMotionLoRA", "AnimateDiffInjectIntoModel",
         "AnimateDiffContextOptions", "AnimateDiffPromptSchedule", "AnimateDiffValueSchedule")


def sample(comfy, checkpoint, nodes=None, **prompt_args) -> torch.Tensor:
    model = ["inject", 0] if nodes else None
    prompt = txt2vid_prompt(checkpoint, model=model, extra_nodes=nodes, **prompt_args)
    return comfy.latent(comfy.run(prompt), "save")


@pytest.fixture(scope="module")
def files(comfy, sd15_checkpoint, motion_module, motion_lora):
    return {
        "ckpt": sd15_checkpoint,
        "v2": motion_module("mm_sd_v15_v2.ckpt", "v2"),
        "zoom": motion_lora("v2_lora_ZoomIn.ckpt", seed=1),
        "pan": motion_lora("v2_lora_PanLeft.ckpt", seed=2),
    }


@pytest.fixture(scope="module")
def plain(comfy, files):
    return sample(comfy, files["ckpt"], seed=5)


@pytest.fixture(scope="module")
def animated(comfy, files):
    return sample(comfy, files["ckpt"], animatediff(files["v2"], beta_schedule="use existing"), seed=5)


def test_nodes_are_listed_with_tooltips(comfy_pack):
    info = comfy_pack.object_info()
    for name in NODES:
        assert name in info, name
        assert info[name]["category"] == "AnimateDiff"
        assert info[name]["description"]
        for section in ("required", "optional"):
            for input_name, spec in info[name]["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_motion_module_changes_the_frames_and_keeps_them_finite(plain, animated):
    assert animated.shape == plain.shape == (16, 4, 2, 2)
    assert torch.isfinite(animated).all()
    assert (animated - plain).abs().max() > 1e-3


def test_v1_samples_with_the_unets_norms_across_frames_and_leaves_the_model_as_it_was(comfy_pack, files, plain,
                                                                                      motion_module):
    # Same seed, same weights: v1 and v3 modules differ only in how the original code samples them
    # (16 frames use the same positional encodings of both).
    v1 = motion_module("v1_twin_of_v3.ckpt", "v1", seed=3)
    v3 = motion_module("v3_twin_of_v1.ckpt", "v3", seed=3)
    as_v1 = sample(comfy_pack, files["ckpt"], animatediff(v1, beta_schedule="use existing"), seed=5)
    as_v3 = sample(comfy_pack, files["ckpt"], animatediff(v3, beta_schedule="use existing"), seed=5)
    assert torch.isfinite(as_v1).all() and (as_v1 - as_v3).abs().max() > 1e-3
    assert torch.equal(sample(comfy_pack, files["ckpt"], seed=5), plain)  # the UNet's own norms are back


def test_effect_zero_reproduces_the_plain_frames(comfy_pack, files, plain):
    still = sample(comfy_pack, files["ckpt"], animatediff(files["v2"], beta_schedule="use existing", effect=0.0),
                   seed=5)
    assert torch.equal(still, plain)


def test_nodes_show_what_they_loaded_and_injected(comfy_pack, files, motion_module):
    name = motion_module("renamed_motion_module.ckpt", "v2")  # a name no earlier prompt cached
    prompt = txt2vid_prompt(files["ckpt"], model=["inject", 0], frames=2, steps=1, extra_nodes=animatediff(name))
    outputs = comfy_pack.run(prompt)
    assert "AnimateDiff v2 (SD15, 32 frames max, mid block)" in outputs["motion"]["text"][0]
    assert "21 motion modules, schedule sqrt_linear (AnimateDiff)" in outputs["inject"]["text"][0]


def test_autoselected_schedule_is_applied(comfy_pack, files, animated):
    autoselected = sample(comfy_pack, files["ckpt"], animatediff(files["v2"]), seed=5)
    assert torch.isfinite(autoselected).all()
    assert (autoselected - animated).abs().max() > 1e-3


def test_lora_strength_zero_reproduces_the_plain_motion(comfy_pack, files, animated):
    nodes = animatediff(files["v2"], [(files["zoom"], 0.0)], beta_schedule="use existing")
    assert torch.equal(sample(comfy_pack, files["ckpt"], nodes, seed=5), animated)


def test_two_loras_compose(comfy_pack, files, animated):
    def with_loras(stack):
        return sample(comfy_pack, files["ckpt"], animatediff(files["v2"], stack, beta_schedule="use existing"), seed=5)

    zoom, pan = with_loras([(files["zoom"], 1.0)]), with_loras([(files["pan"], 1.0)])
    both = with_loras([(files["zoom"], 0.5), (files["pan"], 0.5)])
    for single in (zoom, pan, animated):
        assert (both - single).abs().max() > 1e-4
    assert torch.isfinite(both).all()


def test_cfg_one_runs_only_the_cond_chunk(comfy_pack, files):
    plain = sample(comfy_pack, files["ckpt"], cfg=1.0, seed=3)
    animated = sample(comfy_pack, files["ckpt"], animatediff(files["v2"]), cfg=1.0, seed=3)
    assert torch.isfinite(animated).all() and (animated - plain).abs().max() > 1e-3


def test_ksampler_advanced_and_sampler_custom_give_the_ksampler_result(comfy_pack, files):
    nodes = animatediff(files["v2"])
    reference = sample(comfy_pack, files["ckpt"], nodes, seed=7)
    advanced = txt2vid_prompt(files["ckpt"], model=["inject", 0], extra_nodes=nodes)
    advanced["ksampler"] = node(
        "KSamplerAdvanced", model=["inject", 0], add_noise="enable", noise_seed=7, steps=2, cfg=7.0,
        sampler_name="euler", scheduler="normal", positive=["positive", 0], negative=["negative", 0],
        latent_image=["latent", 0], start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable",
    )
    assert torch.equal(comfy_pack.latent(comfy_pack.run(advanced), "save"), reference)

    custom = txt2vid_prompt(files["ckpt"], model=["inject", 0], extra_nodes=nodes)
    custom.update({
        "sampler": node("KSamplerSelect", sampler_name="euler"),
        "sigmas": node("BasicScheduler", model=["inject", 0], scheduler="normal", steps=2, denoise=1.0),
        "ksampler": node("SamplerCustom", model=["inject", 0], add_noise=True, noise_seed=7, cfg=7.0,
                         positive=["positive", 0], negative=["negative", 0], sampler=["sampler", 0],
                         sigmas=["sigmas", 0], latent_image=["latent", 0]),
    })
    custom_latent = comfy_pack.latent(comfy_pack.run(custom), "save")
    assert torch.allclose(custom_latent, reference, atol=1e-4)


def test_base_model_is_untouched_by_a_run_and_by_an_interrupted_run(comfy_pack, files, plain):
    assert torch.equal(sample(comfy_pack, files["ckpt"], seed=5), plain)
    long_run = txt2vid_prompt(files["ckpt"], model=["inject", 0], steps=30, seed=11,
                              extra_nodes=animatediff(files["v2"], motion_scale=1.01))
    prompt_id = comfy_pack.submit(long_run)
    comfy_pack.wait_for_progress(prompt_id, 1)
    comfy_pack.interrupt()
    with pytest.raises(PromptFailed, match="interrupted"):
        comfy_pack.wait(prompt_id)
    assert torch.equal(sample(comfy_pack, files["ckpt"], seed=5), plain)


def test_self_check_and_few_frames_warning_are_logged(comfy_pack, files):
    sample(comfy_pack, files["ckpt"], animatediff(files["v2"]), frames=4, seed=2)
    log = comfy_pack.log_text()
    assert "only 4 frame(s) in the latent batch" in log
    assert re.search(r"AnimateDiff: motion modules ran \d+ times \(21 blocks\) on 4 frames over 2 steps", log)


def test_domain_adapter_alpha(comfy_pack, files, domain_adapter):
    adapter = domain_adapter("v3_sd15_adapter.ckpt", folder="loras")
    base = sample(comfy_pack, files["ckpt"], animatediff(files["v2"]), seed=9)
    off = sample(comfy_pack, files["ckpt"], animatediff(files["v2"], domain_adapter=adapter, adapter_alpha=0.0), seed=9)
    full = sample(comfy_pack, files["ckpt"], animatediff(files["v2"], domain_adapter=adapter, adapter_alpha=1.0), seed=9)
    assert torch.equal(off, base)
    assert (full - base).abs().max() > 1e-4


@pytest.mark.parametrize("case", ["corrupt file", "SDXL module", "too many frames", "LoRA for another model",
                                  "domain adapter as MotionLoRA"])
def test_bad_input_is_a_node_error_naming_the_input_and_the_server_carries_on(
        comfy_pack, files, motion_module, motion_lora, case):
    frames = 16
    if case == "corrupt file":
        corrupt = comfy_pack.models_dir / "animatediff_models" / "broken_download.ckpt"
        corrupt.write_bytes(b"PK\x03\x04 not really a zip")
        nodes, expected = animatediff("broken_download.ckpt"), r"model_name: .*broken_download.ckpt.*truncated or corrupt"
    elif case == "SDXL module":
        name = motion_module("hsxl_temporal_layers.safetensors", "hotshotxl")
        nodes, expected = animatediff(name), r"motion_model: .*SDXL motion module.*cannot animate an SD1.5 checkpoint"
    elif case == "too many frames":
        nodes, expected, frames = animatediff(files["v2"]), r"latent_image: 40 frames.*Context Options", 40
    elif case == "LoRA for another model":
        lora = motion_lora("sdxl_motion_lora.safetensors", family="sdxl_beta")
        nodes, expected = animatediff(files["v2"], [(lora, 1.0)]), r"lora_name: .*made for a different motion model"
    else:
        comfy_pack.models_dir.joinpath("animatediff_motion_lora").mkdir(exist_ok=True)
        adapter = comfy_pack.models_dir / "animatediff_motion_lora" / "v3_sd15_adapter.ckpt"
        torch.save({"down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight":
                    torch.zeros(4, 320),
                    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight":
                    torch.zeros(320, 4)}, adapter)
        nodes = animatediff(files["v2"], [("v3_sd15_adapter.ckpt", 1.0)])
        expected = r"lora_name: .*domain adapter.*domain_adapter input"
    with pytest.raises(PromptFailed, match=expected):
        sample(comfy_pack, files["ckpt"], nodes, frames=frames, steps=1)
    assert sample(comfy_pack, files["ckpt"], frames=2, steps=1).shape == (2, 4, 2, 2)


def test_injecting_twice_keeps_only_the_last_injection(comfy_pack, files, animated):
    nodes = animatediff(files["v2"], beta_schedule="use existing", effect=0.3)
    nodes["again"] = node("AnimateDiffInjectIntoModel", **{**nodes["inject"]["inputs"], "model": ["inject", 0],
                                                           "effect": 1.0})
    prompt = txt2vid_prompt(files["ckpt"], model=["again", 0], extra_nodes=nodes, seed=5)
    assert torch.equal(comfy_pack.latent(comfy_pack.run(prompt), "save"), animated)
