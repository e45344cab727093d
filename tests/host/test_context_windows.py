"""Context Options in the real host: long animations window by window, ControlNet hints per window."""

import re

import pytest
import torch

from .api import PromptFailed, animatediff, node, txt2vid_prompt

BLACK, WHITE = 0x000000, 0xFFFFFF


def hints(frames: int, white_frame: int | None = None) -> dict:
    """Hint images: all black, or black with one white frame (nodes ending in "hints")."""
    if white_frame is None:
        return {"hints": node("EmptyImage", width=16, height=16, batch_size=frames, color=BLACK)}
    parts = {
        "before": node("EmptyImage", width=16, height=16, batch_size=white_frame, color=BLACK),
        "white": node("EmptyImage", width=16, height=16, batch_size=1, color=WHITE),
        "head": node("ImageBatch", image1=["before", 0], image2=["white", 0]),
    }
    if white_frame == frames - 1:
        parts["hints"] = parts.pop("head")
        return parts
    parts["after"] = node("EmptyImage", width=16, height=16, batch_size=frames - white_frame - 1, color=BLACK)
    parts["hints"] = node("ImageBatch", image1=["head", 0], image2=["after", 0])
    return parts


def context(length=16, overlap=4, schedule="static", closed_loop=False, fuse="pyramid") -> dict:
    return {"context": node("AnimateDiffContextOptions", context_length=length, context_overlap=overlap,
                            context_stride=1, schedule=schedule, closed_loop=closed_loop, fuse_method=fuse)}


def controlled_prompt(files, controlnet, frames, hint_nodes, context_nodes, legacy=False, steps=2):
    nodes = animatediff(files["v2"], context_options=["context", 0])
    nodes.update(context_nodes)
    nodes.update(hint_nodes)
    nodes["controlnet"] = node("ControlNetLoader", control_net_name=controlnet)
    prompt = txt2vid_prompt(files["ckpt"], model=["inject", 0], frames=frames, steps=steps, seed=4, extra_nodes=nodes)
    if legacy:
        prompt["apply"] = node("ControlNetApply", conditioning=["positive", 0], control_net=["controlnet", 0],
                               image=["hints", 0], strength=1.0)
        prompt["ksampler"]["inputs"]["positive"] = ["apply", 0]
    else:
        prompt["apply"] = node("ControlNetApplyAdvanced", positive=["positive", 0], negative=["negative", 0],
                               control_net=["controlnet", 0], image=["hints", 0], strength=1.0,
                               start_percent=0.0, end_percent=1.0)
        prompt["ksampler"]["inputs"]["positive"] = ["apply", 0]
        prompt["ksampler"]["inputs"]["negative"] = ["apply", 1]
    return prompt


@pytest.fixture(scope="module")
def files(comfy, sd15_checkpoint, motion_module):
    return {"ckpt": sd15_checkpoint, "v2": motion_module("mm_sd_v15_v2.ckpt", "v2")}


def run(comfy, prompt) -> torch.Tensor:
    return comfy.latent(comfy.run(prompt), "save")


def test_forty_frames_with_each_window_conditioned_by_its_own_hints(comfy_pack, files, controlnet_file):
    black = run(comfy_pack, controlled_prompt(files, controlnet_file, 40, hints(40), context()))
    assert black.shape == (40, 4, 2, 2) and torch.isfinite(black).all()
    white_30 = run(comfy_pack, controlled_prompt(files, controlnet_file, 40, hints(40, white_frame=30), context()))
    # Windows 0-15, 12-27, 24-39: hint 30 reaches only the last window in step 1 and the
    # middle one in step 2. A host that gave every window hints 0-15 would never use it.
    changed = (white_30 - black).flatten(1).abs().amax(1)
    assert changed[30] > 1e-4
    assert torch.equal(white_30[:12], black[:12])
    log = comfy_pack.log_text()
    assert re.search(r"40 frames, 3 windows of 16 \(overlap >= 4\), static schedule, 1\.20 UNet", log)


def test_looped_closed_loop_lets_the_last_frame_reach_the_first(comfy_pack, files, controlnet_file):
    loop = context(schedule="looped", closed_loop=True)
    reference = run(comfy_pack, controlled_prompt(files, controlnet_file, 48, hints(48), loop, legacy=True, steps=1))
    assert reference.shape == (48, 4, 2, 2) and torch.isfinite(reference).all()
    white_47 = run(comfy_pack, controlled_prompt(files, controlnet_file, 48, hints(48, white_frame=47), loop,
                                                 legacy=True, steps=1))
    changed = (white_47 - reference).flatten(1).abs().amax(1)
    assert changed[47] > 1e-4 and changed[0] > 1e-6  # one step: only a window around the loop joins them
    line = run(comfy_pack, controlled_prompt(files, controlnet_file, 48, hints(48, white_frame=47), context(),
                                             legacy=True, steps=1))
    line_reference = run(comfy_pack, controlled_prompt(files, controlnet_file, 48, hints(48), context(),
                                                       legacy=True, steps=1))
    assert torch.equal(line[0], line_reference[0])  # without the loop frame 47 cannot reach frame 0


def test_context_as_long_as_the_video_is_exactly_no_context(comfy_pack, files):
    plain = txt2vid_prompt(files["ckpt"], model=["inject", 0], frames=16, seed=8, extra_nodes=animatediff(files["v2"]))
    windowed_nodes = animatediff(files["v2"], context_options=["context", 0])
    windowed_nodes.update(context(length=16, overlap=4))
    windowed = txt2vid_prompt(files["ckpt"], model=["inject", 0], frames=16, seed=8, extra_nodes=windowed_nodes)
    assert torch.equal(run(comfy_pack, windowed), run(comfy_pack, plain))


def test_short_hint_batch_is_an_error_and_a_single_hint_broadcasts(comfy_pack, files, controlnet_file):
    short = controlled_prompt(files, controlnet_file, 24, hints(10), context(), steps=1)
    with pytest.raises(PromptFailed, match=r"10 hint images for 24 frames.*one hint image per frame"):
        run(comfy_pack, short)
    single = controlled_prompt(files, controlnet_file, 24, hints(1), context(), steps=1)
    assert run(comfy_pack, single).shape == (24, 4, 2, 2)


@pytest.mark.parametrize("length, overlap, expected", [
    (16, 16, r"context_overlap 16 must be less than context_length 16"),
    (40, 4, r"context_options: 40 frames, but AnimateDiff v2 .* takes at most 32 at once: lower context_length to 32"),
])
def test_bad_context_values_are_node_errors(comfy_pack, files, length, overlap, expected):
    nodes = animatediff(files["v2"], context_options=["context", 0])
    nodes.update(context(length=length, overlap=overlap))
    prompt = txt2vid_prompt(files["ckpt"], model=["inject", 0], frames=48, steps=1, extra_nodes=nodes)
    with pytest.raises(PromptFailed, match=expected):
        comfy_pack.run(prompt)


def widget_default(spec: list):
    """A widget's default from /object_info: ``[type or choices, {"default", "options", ...}]``."""
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if "default" in options:
        return options["default"]
    return kind[0] if isinstance(kind, list) else options["options"][0]


def test_the_hosts_own_context_windows_node_gets_a_clear_error(comfy_pack, files):
    # ComfyUI's "Context Windows (Manual)" node (both releases have it) on the injected model.
    spec = comfy_pack.object_info()["ContextWindowsManual"]["input"]["required"]
    inputs = {name: widget_default(options) for name, options in spec.items() if name != "model"}
    nodes = animatediff(files["v2"])
    nodes["host_windows"] = node("ContextWindowsManual", model=["inject", 0], **inputs)
    prompt = txt2vid_prompt(files["ckpt"], model=["host_windows", 0], frames=20, extra_nodes=nodes)

    with pytest.raises(PromptFailed) as failure:
        comfy_pack.run(prompt)
    message = str(failure.value)
    assert "ComfyUI's own context-window node (Context Windows)" in message
    assert "connect AnimateDiff Context Options to Inject into Model's context_options instead" in message
