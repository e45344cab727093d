"""Prompt travel, value schedules and FreeNoise in the real host."""

import pytest
import torch

from .api import CHECKPOINT_CLIP, PromptFailed, animatediff, node, txt2vid_prompt

SPRING, WINTER = "a cat in a meadow, spring", "a cat in the snow, (winter:1.3)"


@pytest.fixture(scope="module")
def files(comfy, sd15_checkpoint, motion_module):
    return {"ckpt": sd15_checkpoint, "v2": motion_module("mm_sd_v15_v2.ckpt", "v2")}


def travel(schedule: str, frames: int, interpolation="linear", **extra) -> dict:
    return {"travel": node("AnimateDiffPromptSchedule", clip=CHECKPOINT_CLIP, schedule=schedule, frames=frames,
                           interpolation=interpolation, prepend="", append="", **extra)}


def context(freenoise=False) -> dict:
    return {"context": node("AnimateDiffContextOptions", context_length=16, context_overlap=4, context_stride=1,
                            schedule="static", closed_loop=False, fuse_method="pyramid", freenoise=freenoise)}


def run(comfy, files, frames, positive=None, animated=True, context_nodes=None, cfg=7.0, seed=3, extra=None,
        steps=2, **inject_inputs):
    nodes = dict(extra or {})
    model = None
    if animated:
        if context_nodes:
            nodes.update(context_nodes)
            inject_inputs["context_options"] = ["context", 0]
        nodes.update(animatediff(files["v2"], **inject_inputs))
        model = ["inject", 0]
    prompt = txt2vid_prompt(files["ckpt"], frames=frames, steps=steps, cfg=cfg, seed=seed, model=model,
                            positive=SPRING, extra_nodes=nodes)
    if positive is not None:
        prompt["ksampler"]["inputs"]["positive"] = positive
    return comfy.latent(comfy.run(prompt), "save")


def test_each_frame_gets_its_keyframes_prompt_and_blends_between(comfy_pack, files):
    # Without a motion module frames are sampled independently: each shows its own conditioning.
    spring = run(comfy_pack, files, 8, animated=False)
    winter = run(comfy_pack, files, 8, animated=False, extra={"w": node("CLIPTextEncode", text=WINTER, clip=CHECKPOINT_CLIP)},
                 positive=["w", 0])
    schedule = f'0: "{SPRING}"\n-1: "{WINTER}"'
    travelled = run(comfy_pack, files, 8, animated=False, extra=travel(schedule, 8), positive=["travel", 0])
    assert travelled.shape == (8, 4, 2, 2)
    assert torch.equal(travelled[0], spring[0]) and torch.equal(travelled[7], winter[7])
    assert not torch.allclose(travelled[3], spring[3]) and not torch.allclose(travelled[3], winter[3])
    halfway = run(comfy_pack, files, 8, animated=False, positive=["average", 0], extra={
        "w": node("CLIPTextEncode", text=WINTER, clip=CHECKPOINT_CLIP),
        "average": node("ConditioningAverage", conditioning_to=["positive", 0], conditioning_from=["w", 0],
                        conditioning_to_strength=4 / 7)})
    assert torch.allclose(travelled[3], halfway[3], rtol=1e-4, atol=1e-3)  # frame 3 of 0..7: 3/7 of the way to winter


def test_frame_count_from_the_latent_and_a_held_prompt(comfy_pack, files):
    schedule = f'0: "{SPRING}"\n4: "{WINTER}"'
    held = run(comfy_pack, files, 8, animated=False, extra=travel(schedule, 1, "none", latent=["latent", 0]),
               positive=["travel", 0])
    spring = run(comfy_pack, files, 8, animated=False)
    assert torch.equal(held[:4], spring[:4]) and not torch.allclose(held[4:], spring[4:])


@pytest.mark.parametrize("cfg", [7.0, 1.0])
def test_windows_give_each_frame_its_own_prompt(comfy_pack, files, cfg):
    # One step: later steps would carry frame 24's change back through the windows' overlaps.
    single = run(comfy_pack, files, 32, context_nodes=context(), cfg=cfg, steps=1)
    schedule = f'0: "{SPRING}"\n24: "{WINTER}"'
    travelled = run(comfy_pack, files, 32, context_nodes=context(), cfg=cfg, extra=travel(schedule, 32, "none"),
                    positive=["travel", 0], steps=1)
    assert torch.equal(travelled[:12], single[:12])  # only in the first window, which never sees frame 24
    assert not torch.allclose(travelled[24:], single[24:])


def test_travel_through_controlnet_in_windows(comfy_pack, files, controlnet_file):
    extra = {**travel(f'0: "{SPRING}"\n-1: "{WINTER}"', 24),
             "controlnet": node("ControlNetLoader", control_net_name=controlnet_file),
             "hints": node("EmptyImage", width=16, height=16, batch_size=24, color=0xFFFFFF),
             "apply": node("ControlNetApplyAdvanced", positive=["travel", 0], negative=["negative", 0],
                           control_net=["controlnet", 0], image=["hints", 0], strength=1.0, start_percent=0.0,
                           end_percent=1.0)}
    controlled = run(comfy_pack, files, 24, context_nodes=context(), extra=extra, positive=["apply", 0])
    plain = run(comfy_pack, files, 24, context_nodes=context(), extra=extra, positive=["travel", 0])
    assert torch.isfinite(controlled).all() and not torch.equal(controlled, plain)


def test_prompts_over_77_tokens_travel_too(comfy_pack, files):
    long_winter = ", ".join(["a cat in the deep white snow of a quiet winter forest"] * 12)  # > 77 tokens
    travelled = run(comfy_pack, files, 8, animated=False, extra=travel(f'0: "{SPRING}"\n-1: "{long_winter}"', 8),
                    positive=["travel", 0])
    spring = run(comfy_pack, files, 8, animated=False)
    assert travelled.shape == (8, 4, 2, 2) and torch.isfinite(travelled).all()
    assert not torch.allclose(travelled[7], spring[7])


def test_schedule_syntax_error_names_the_line(comfy_pack, files):
    with pytest.raises(PromptFailed, match=r"schedule line 2: 'winter' is not a keyframe: expected `frame: \"text\"`"):
        run(comfy_pack, files, 8, animated=False, extra=travel('0: "spring"\nwinter', 8), positive=["travel", 0])


def test_value_schedule_drives_the_effect_mask(comfy_pack, files):
    def values(schedule):
        return {"values": node("AnimateDiffValueSchedule", schedule=schedule, frames=16, interpolation="linear")}

    still = run(comfy_pack, files, 16, effect=0.0)
    full = run(comfy_pack, files, 16)
    assert torch.equal(run(comfy_pack, files, 16, extra=values("0: 0.0"), effect_mask=["values", 0]), still)
    assert torch.equal(run(comfy_pack, files, 16, extra=values("0: 1\n-1: 1"), effect_mask=["values", 0]), full)
    fading = run(comfy_pack, files, 16, extra=values("0: 1.0\n-1: 0.0"), effect_mask=["values", 0])
    assert not torch.equal(fading, still) and not torch.equal(fading, full)


def test_freenoise_is_reproducible_and_only_acts_in_windows(comfy_pack, files):
    on = [run(comfy_pack, files, 40, context_nodes=context(freenoise=True), seed=5) for _ in range(2)]
    off = run(comfy_pack, files, 40, context_nodes=context(freenoise=False), seed=5)
    assert torch.equal(on[0], on[1]) and not torch.allclose(on[0], off)
    short_on = run(comfy_pack, files, 16, context_nodes=context(freenoise=True), seed=5)
    short_off = run(comfy_pack, files, 16, context_nodes=context(freenoise=False), seed=5)
    assert torch.equal(short_on, short_off)
