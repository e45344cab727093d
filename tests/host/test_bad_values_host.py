"""Values that get past the widgets, in the real host: what an API client (or an unlucky user)
sends, and the text they get back."""

import math
import re

import pytest
import torch

from .api import PromptFailed, animatediff, node, txt2vid_prompt


@pytest.fixture(scope="module")
def files(comfy, sd15_checkpoint, motion_module):
    return {"ckpt": sd15_checkpoint, "v2": motion_module("mm_sd_v15_v2.ckpt", "v2")}


def animated_prompt(files, **inject_inputs):
    nodes = animatediff(files["v2"], **inject_inputs)
    return txt2vid_prompt(files["ckpt"], model=["inject", 0], frames=8, steps=1, extra_nodes=nodes)


def rejection(comfy, prompt) -> PromptFailed:
    with pytest.raises(PromptFailed) as failure:
        comfy.submit(prompt)
    return failure.value


@pytest.mark.parametrize("node_id, value, expected", [
    ("inject", {"start_percent": 1.5}, "Value 1.5 bigger than max of 1.0"),
    ("inject", {"motion_scale": -1.0}, "Value -1.0 smaller than min of 0.0"),
    ("context", {"context_overlap": 200}, "Value 200 bigger than max of 127"),
])
def test_out_of_range_api_values_are_refused_once_with_the_widgets_range(comfy_pack, files, node_id, value,
                                                                          expected):
    prompt = animated_prompt(files, context_options=["context", 0])
    prompt["context"] = node("AnimateDiffContextOptions", context_length=16, context_overlap=4, context_stride=1,
                             schedule="static", closed_loop=False, fuse_method="pyramid")
    prompt[node_id]["inputs"].update(value)

    failure = rejection(comfy_pack, prompt)
    (name,) = value
    errors = failure.node_errors[node_id]["errors"]
    assert [(e["details"], e["message"]) for e in errors] == [(name, expected)]  # once, naming the input


@pytest.mark.parametrize("name", ["motion_scale", "effect", "adapter_alpha"])
def test_nan_is_refused_naming_the_input(comfy_pack, files, name):
    # NaN passes every comparison, so the host's own range check lets it through.
    with pytest.raises(PromptFailed) as failure:
        comfy_pack.run(animated_prompt(files, **{name: math.nan}))
    message = str(failure.value)
    assert f"{name} is nan, not a number: give a value from " in message
    assert message.count("not a number") == 1


def test_infinity_is_refused_by_the_widgets_range(comfy_pack, files):
    failure = rejection(comfy_pack, animated_prompt(files, effect=math.inf))
    assert [e["message"] for e in failure.node_errors["inject"]["errors"]] == ["Value inf bigger than max of 2.0"]


def test_start_after_end_is_refused_once(comfy_pack, files):
    with pytest.raises(PromptFailed) as failure:
        comfy_pack.run(animated_prompt(files, start_percent=0.8, end_percent=0.2))
    assert "start_percent 0.8 is after end_percent 0.2: swap them" in str(failure.value)


def combine_prompt(prefix: str, format_name: str = "video/h264-mp4", with_alpha: bool = False, frame_rate=8.0):
    prompt = {
        "image": node("EmptyImage", width=32, height=32, batch_size=4, color=0x3366CC),
        "combine": node("AnimateDiffVideoCombine", images=["image", 0], frame_rate=frame_rate, loop_count=0,
                        filename_prefix=prefix, format=format_name, pingpong=False, save_output=True, crf=19,
                        pix_fmt="auto", webp_quality=90, webp_lossless=False, prores_profile="auto"),
    }
    if with_alpha:
        prompt["mask"] = node("SolidMask", value=0.5, width=32, height=32)
        prompt["rgba"] = node("JoinImageWithAlpha", image=["image", 0], alpha=["mask", 0])
        prompt["combine"]["inputs"]["images"] = ["rgba", 0]
    return prompt


def test_nul_in_filename_prefix_names_the_input(comfy_pack):
    with pytest.raises(PromptFailed) as failure:
        comfy_pack.run(combine_prompt("cat\x00dog"))
    message = str(failure.value)
    assert "filename_prefix 'cat\\x00dog' contains '\\x00', which file names cannot hold" in message
    assert "embedded null byte" not in message


def test_nan_frame_rate_is_refused(comfy_pack):
    with pytest.raises(PromptFailed, match=r"frame_rate is nan, not a number: give a value from 0\.1 to 240\.0"):
        comfy_pack.run(combine_prompt("nan_rate", frame_rate=math.nan))


@pytest.mark.parametrize("setting, expected", [
    ({"crf": 60}, "crf 60 is out of range for video/h264-mp4: use 0 (best) to 51"),
    ({"pix_fmt": "yuva420p"}, "pix_fmt 'yuva420p' does not fit video/h264-mp4; choose 'auto' or one of yuv420p, "
                              "yuv420p10le, yuv444p"),
])
def test_video_settings_that_do_not_fit_the_format_name_the_input_and_its_range(comfy_pack, setting, expected):
    prompt = combine_prompt("misfit")
    prompt["combine"]["inputs"].update(setting)
    with pytest.raises(PromptFailed) as failure:
        comfy_pack.run(prompt)
    assert expected in str(failure.value)


def test_dropped_alpha_is_reported_on_the_node(comfy_pack):
    outputs = comfy_pack.run(combine_prompt("alpha_dropped", with_alpha=True))
    (note,) = outputs["combine"]["text"]
    assert "has no alpha channel: the frames' transparency was dropped" in note
    kept = comfy_pack.run(combine_prompt("alpha_kept", "video/ffv1-mkv", with_alpha=True))
    assert "text" not in kept["combine"]


@pytest.mark.parametrize("naming", ["kohya", "peft"])
def test_image_lora_given_to_apply_motion_lora_says_where_it_belongs(comfy_pack, files, naming):
    import safetensors.torch

    folder = comfy_pack.models_dir / "animatediff_motion_lora"
    folder.mkdir(parents=True, exist_ok=True)
    if naming == "kohya":
        stem = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
        tensors = {f"{stem}.lora_down.weight": torch.zeros(4, 320), f"{stem}.lora_up.weight": torch.zeros(320, 4),
                   f"{stem}.alpha": torch.tensor(4.0)}
    else:
        stem = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
        tensors = {f"{stem}.lora_A.weight": torch.zeros(4, 320), f"{stem}.lora_B.weight": torch.zeros(320, 4)}
    name = f"add_detail_{naming}.safetensors"
    safetensors.torch.save_file(tensors, str(folder / name))

    nodes = animatediff(files["v2"], lora_stack=[(name, 1.0)])
    with pytest.raises(PromptFailed) as failure:
        comfy_pack.run(txt2vid_prompt(files["ckpt"], model=["inject", 0], frames=8, steps=1, extra_nodes=nodes))
    message = str(failure.value)
    assert re.search(rf"lora_name: \S*{name}: not a MotionLoRA\. It is an image LoRA for the checkpoint", message)
    assert "load it with ComfyUI's own LoRA loader (Load LoRA) on the MODEL" in message
    assert "domain_adapter" not in message
