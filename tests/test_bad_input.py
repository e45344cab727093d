"""Every bad file gives a MotionModelError that names the file and says what to do."""

import os

import pytest
import torch
from safetensors.torch import save_file

from animatediff_core import MotionModelError, load_motion_lora, load_motion_model
from tests.factories import motion_state_dict


class CodePayload:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_missing_file():
    with pytest.raises(MotionModelError, match="nowhere.ckpt: no such file"):
        load_motion_model("/nonexistent/nowhere.ckpt")


@pytest.mark.parametrize("container", [".safetensors", ".ckpt"])
def test_truncated_file(tmp_path, container):
    path = tmp_path / f"mm{container}"
    state = motion_state_dict("v2")
    save_file(state, path) if container == ".safetensors" else torch.save(state, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MotionModelError, match=rf"mm\{container}.*truncated or corrupt.*download it again"):
        load_motion_model(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(MotionModelError, match="garbage.safetensors.*truncated or corrupt"):
        load_motion_model(path)


def test_pickle_with_code_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": CodePayload(marker)}, path)
    with pytest.raises(MotionModelError, match="evil.ckpt.*other than tensors.*could run that code"):
        load_motion_model(path)
    assert not marker.exists()


def test_sd_checkpoint_is_recognised(tmp_path):
    path = tmp_path / "dreamshaper_8.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
               "first_stage_model.decoder.conv_in.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(MotionModelError, match="dreamshaper_8.*not a motion module.*Stable Diffusion checkpoint.*models/checkpoints"):
        load_motion_model(path)


def test_random_tensor_dict(tmp_path):
    path = tmp_path / "random.safetensors"
    save_file({"weight": torch.randn(3, 3), "bias": torch.randn(3)}, path)
    with pytest.raises(MotionModelError, match="random.safetensors.*not a motion module.*Expected keys like down_blocks.0"):
        load_motion_model(path)


def test_pickle_that_is_not_a_dict(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(MotionModelError, match="tensor.pt: expected a dict of tensors"):
        load_motion_model(path)


def test_missing_tensor_is_named(tmp_path):
    state = motion_state_dict("v2")
    key = "up_blocks.2.motion_modules.1.temporal_transformer.transformer_blocks.0.ff.net.2.weight"
    del state[key]
    path = tmp_path / "mm_sd_v15_v2.safetensors"
    save_file(state, path)
    with pytest.raises(MotionModelError, match=rf"mm_sd_v15_v2.safetensors: incomplete or damaged v2 motion module: {key} is missing"):
        load_motion_model(path)


def test_missing_whole_module_is_named():
    state = {k: v for k, v in motion_state_dict("v3").items() if not k.startswith("up_blocks.1.motion_modules.2.")}
    with pytest.raises(MotionModelError, match="up_blocks.1.motion_modules.2.temporal_transformer.norm.weight is missing"):
        load_motion_model(state)


def test_misshapen_tensor_is_named():
    state = motion_state_dict("v1")
    key = "down_blocks.1.motion_modules.0.temporal_transformer.proj_in.weight"
    state[key] = torch.zeros(64, 32)
    with pytest.raises(MotionModelError, match=r"proj_in.weight has shape \(64, 32\), expected \(64, 64\)"):
        load_motion_model(state)


def test_inconsistent_positional_encodings():
    state = motion_state_dict("v2")
    key = next(k for k in state if k.endswith("pos_encoder.pe"))
    state[key] = state[key][:, :16]
    with pytest.raises(MotionModelError, match=r"positional encodings disagree in length: \[16, 32\]"):
        load_motion_model(state)


def test_bad_groupnorm_choice():
    with pytest.raises(MotionModelError, match="groupnorm must be one of"):
        load_motion_model(motion_state_dict("v2"), groupnorm="per_pixel")


@pytest.mark.parametrize("naming, state_dict", [
    ("kohya", {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": torch.zeros(4, 32),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": torch.zeros(32, 4),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha": torch.tensor(4.0)}),
    ("peft", {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 32),
              "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.zeros(32, 4)}),
])
def test_image_lora_given_as_motion_lora_is_named_for_what_it_is(tmp_path, naming, state_dict):
    path = tmp_path / f"detail_tweaker_{naming}.safetensors"
    save_file(state_dict, str(path))
    with pytest.raises(MotionModelError) as refused:
        load_motion_lora(path)
    message = str(refused.value)
    assert message == (f"{path}: not a MotionLoRA. It is an image LoRA for the checkpoint, not an AnimateDiff "
                       "file: load it with ComfyUI's own LoRA loader (Load LoRA) on the MODEL, before Inject into Model.")
    assert "domain_adapter" not in message and "norm.weight" not in message
