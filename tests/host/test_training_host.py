"""Camera Motion Clips and Train MotionLoRA inside the real ComfyUI server."""

import pytest
import torch
from safetensors import safe_open

from tests.factories import motion_lora_state_dict

from .api import PromptFailed, animatediff, node, training_prompt, txt2vid_prompt

TRAINING_NODES = ("AnimateDiffCameraMotionClips", "AnimateDiffTrainMotionLoRA")
FRAMES = 8


def sample(comfy, checkpoint, nodes) -> torch.Tensor:
    prompt = txt2vid_prompt(checkpoint, model=["inject", 0], extra_nodes=nodes, frames=FRAMES, seed=3)
    return comfy.latent(comfy.run(prompt), "save")


def lora_folder(comfy):
    folder = comfy.models_dir / "animatediff_motion_lora"
    folder.mkdir(exist_ok=True)
    return folder


def folder_state(comfy) -> set[str]:
    return {p.name for p in lora_folder(comfy).iterdir()}


@pytest.fixture(scope="module")
def files(comfy, sd15_checkpoint, motion_module):
    return {"ckpt": sd15_checkpoint, "v2": motion_module("mm_sd_v15_v2.ckpt", "v2")}


@pytest.fixture(scope="module")
def trained(comfy, files):
    """Before: plain and v2 samples; then a 3-step training run whose trained motion model samples too."""
    before_plain = comfy.latent(comfy.run(txt2vid_prompt(files["ckpt"], frames=FRAMES, seed=3)), "save")
    before_v2 = sample(comfy, files["ckpt"], animatediff(files["v2"]))
    prompt = training_prompt(files["ckpt"], files["v2"], "host_zoom", steps=3)
    prompt.update({k: v for k, v in animatediff(files["v2"]).items() if k == "inject"})
    prompt["inject"]["inputs"]["motion_model"] = ["train", 0]
    prompt.update({k: v for k, v in txt2vid_prompt(files["ckpt"], model=["inject", 0], frames=FRAMES,
                                                   seed=3).items() if k not in prompt})
    prompt["preview"] = node("PreviewImage", images=["train", 1])
    outputs = comfy.run(prompt)
    return {"before_plain": before_plain, "before_v2": before_v2, "outputs": outputs,
            "trained_sample": comfy.latent(outputs, "save")}


def test_training_nodes_are_listed_with_tooltips(comfy_pack):
    info = comfy_pack.object_info()
    for name in TRAINING_NODES:
        assert info[name]["category"] == "AnimateDiff/training"
        assert info[name]["description"]
        for input_name, spec in info[name]["input"]["required"].items():
            assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
    assert info["AnimateDiffCameraMotionClips"]["output_name"] == ["clips", "frames_per_clip", "preview"]


def test_training_saves_a_motion_lora_in_the_official_layout(comfy_pack, trained):
    (text,) = trained["outputs"]["train"]["text"]
    assert text.startswith("saved host_zoom_00001.safetensors: 3 steps, loss ")
    path = lora_folder(comfy_pack) / "host_zoom_00001.safetensors"
    with safe_open(str(path), "pt") as f:
        assert set(f.keys()) == set(motion_lora_state_dict("v2", rank=4))
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
        metadata = f.metadata()
    assert metadata["family"] == "v2" and metadata["rank"] == "4" and metadata["steps"] == "3"
    assert metadata["motion"] == "host_zoom" and metadata["base_motion_module"] == "mm_sd_v15_v2.ckpt"
    assert not [name for name in folder_state(comfy_pack) if name.endswith(".partial")]
    log = comfy_pack.log_text()
    assert all(f"AnimateDiff: training step {step}/3: loss " in log for step in (1, 2, 3))
    # The loss curve reaches the frontend as an image.
    assert trained["outputs"]["preview"]["images"]


def test_the_saved_file_samples_as_the_trained_output_does_and_differs_from_the_untrained(comfy_pack, files, trained):
    from_file = sample(comfy_pack, files["ckpt"], animatediff(files["v2"], [("host_zoom_00001.safetensors", 1.0)]))
    assert torch.equal(from_file, trained["trained_sample"])
    assert (from_file - trained["before_v2"]).abs().max() > 1e-4


def test_the_users_model_and_motion_model_are_untouched(comfy_pack, files, trained):
    plain = comfy_pack.latent(comfy_pack.run(txt2vid_prompt(files["ckpt"], frames=FRAMES, seed=3)), "save")
    assert torch.equal(plain, trained["before_plain"])
    assert torch.equal(sample(comfy_pack, files["ckpt"], animatediff(files["v2"])), trained["before_v2"])


def test_a_second_training_under_the_same_name_takes_the_next_number(comfy_pack, files, trained):
    outputs = comfy_pack.run(training_prompt(files["ckpt"], files["v2"], "host_zoom", steps=1, seed=4))
    assert outputs["train"]["text"][0].startswith("saved host_zoom_00002.safetensors: 1 step, loss")
    assert {"host_zoom_00001.safetensors", "host_zoom_00002.safetensors"} <= folder_state(comfy_pack)


def test_a_name_with_a_subfolder_is_saved_there_and_offered_by_apply_motion_lora(comfy_pack, files, trained):
    outputs = comfy_pack.run(training_prompt(files["ckpt"], files["v2"], "camera/host_pan", steps=1))
    assert outputs["train"]["text"][0].startswith("saved host_pan_00001.safetensors")
    assert (lora_folder(comfy_pack) / "camera" / "host_pan_00001.safetensors").is_file()
    choices = comfy_pack.object_info()["AnimateDiffApplyMotionLoRA"]["input"]["required"]["lora_name"][0]
    assert "camera/host_pan_00001.safetensors" in choices


def test_an_interrupted_training_leaves_no_file_and_the_models_as_they_were(comfy_pack, files, trained):
    before = folder_state(comfy_pack)
    prompt_id = comfy_pack.submit(training_prompt(files["ckpt"], files["v2"], "interrupted", steps=200, seed=7))
    comfy_pack.wait_for_progress(prompt_id, 1)
    comfy_pack.interrupt()
    with pytest.raises(PromptFailed, match="interrupted"):
        comfy_pack.wait(prompt_id)
    assert folder_state(comfy_pack) == before
    assert torch.equal(sample(comfy_pack, files["ckpt"], animatediff(files["v2"])), trained["before_v2"])


@pytest.mark.parametrize("case", ["one-frame clips", "more frames than the module takes", "SDXL module", "rank 0",
                                  "a name outside the folder", "MotionLoRAs already applied",
                                  "not a whole number of clips", "sides not divisible by 8"])
def test_bad_training_input_is_a_node_error_naming_the_input(comfy_pack, files, motion_module, motion_lora, case):
    kwargs, mm = {}, files["v2"]
    if case == "one-frame clips":
        kwargs, expected = {"frames": 1}, r"frames"
    elif case == "more frames than the module takes":
        kwargs, expected = {"frames": 40}, r"frames_per_clip: 40 frames, but .* takes at most 32"
    elif case == "SDXL module":
        mm, expected = motion_module("hsxl_temporal_layers.safetensors", "hotshotxl"), r"motion_model: .*SDXL"
    elif case == "rank 0":
        kwargs, expected = {"rank": 0}, r"rank"
    elif case == "a name outside the folder":
        kwargs, expected = {"lora_name": "../../escape"}, r"lora_name '../../escape' points outside"
    elif case == "MotionLoRAs already applied":
        expected = r"motion_model: it already has MotionLoRAs applied; train on the plain motion module"
    elif case == "not a whole number of clips":
        kwargs, expected = {"frames_per_clip": 3}, r"clips: 16 images is not a whole number of clips of frames_per_clip=3"
    else:
        expected = r"clips: 100x64 pixels; the VAE needs sides divisible by 8"
    lora_name = kwargs.pop("lora_name", f"bad_{case.replace(' ', '_')}")
    prompt = training_prompt(files["ckpt"], mm, lora_name, **kwargs)
    if case == "MotionLoRAs already applied":
        prompt["lora"] = node("AnimateDiffApplyMotionLoRA", motion_model=["motion", 0], lora_name=motion_lora(
            "v2_lora_ZoomIn.ckpt"), strength=1.0)
        prompt["train"]["inputs"]["motion_model"] = ["lora", 0]
    elif case == "sides not divisible by 8":
        prompt["clips"]["inputs"]["width"] = 100
    before = folder_state(comfy_pack)
    with pytest.raises(PromptFailed, match=expected) as failure:
        comfy_pack.run(prompt)
    assert "Traceback" not in str(failure.value).split("\n")[0]
    assert folder_state(comfy_pack) == before
