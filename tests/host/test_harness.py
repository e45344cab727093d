"""Self-tests of the host harness: they use stock ComfyUI nodes only, never the pack's."""

import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from cli.comfy_server import ComfyProcess

from .api import PromptFailed, PromptInterrupted, node, txt2vid_prompt


def test_server_lists_stock_nodes_and_logs(comfy):
    assert {"CheckpointLoaderSimple", "KSampler", "SaveLatent", "ControlNetLoader"} <= comfy.object_info().keys()
    assert f"To see the GUI go to: {comfy.url}" in comfy.log_text()


def test_random_checkpoint_samples_a_finite_video_latent(comfy, sd15_checkpoint):
    outputs = comfy.run(txt2vid_prompt(sd15_checkpoint, frames=4, width=16, height=16, steps=2))

    latent = comfy.latent(outputs, "save")
    assert latent.shape == (4, 4, 2, 2)
    assert torch.isfinite(latent).all()
    (saved,) = outputs["save"]["latents"]
    assert comfy.view(saved) == comfy.output_file(saved).read_bytes()


def test_controlnet_is_loaded_and_changes_sampling(comfy, sd15_checkpoint, controlnet_file):
    def sample(strength):
        prompt = txt2vid_prompt(sd15_checkpoint, frames=2, steps=1, extra_nodes={
            "controlnet": node("ControlNetLoader", control_net_name=controlnet_file),
            "hint": node("EmptyImage", width=16, height=16, batch_size=2, color=0xFFFFFF),
            "apply": node("ControlNetApplyAdvanced", positive=["positive", 0], negative=["negative", 0],
                          control_net=["controlnet", 0], image=["hint", 0], strength=strength,
                          start_percent=0.0, end_percent=1.0),
        })
        prompt["ksampler"]["inputs"].update(positive=["apply", 0], negative=["apply", 1])
        return comfy.latent(comfy.run(prompt), "save")

    controlled, uncontrolled = sample(1.0), sample(0.0)
    assert torch.isfinite(controlled).all()
    assert not torch.equal(controlled, uncontrolled)


def test_interrupt_stops_a_prompt_mid_sampling(comfy, sd15_checkpoint):
    prompt_id = comfy.submit(txt2vid_prompt(sd15_checkpoint, frames=2, steps=60, seed=1))

    progress = comfy.wait_for_progress(prompt_id, 2, timeout=300)
    comfy.interrupt(prompt_id)

    assert (progress["node"], progress["max"]) == ("ksampler", 60)
    with pytest.raises(PromptInterrupted, match="'ksampler'"):
        comfy.wait(prompt_id, timeout=300)


def test_rejected_prompt_carries_the_node_errors(comfy, sd15_checkpoint):
    prompt = txt2vid_prompt(sd15_checkpoint)
    del prompt["ksampler"]["inputs"]["model"]

    with pytest.raises(PromptFailed, match="Required input is missing") as failure:
        comfy.submit(prompt)
    assert "model" in str(failure.value)
    assert set(failure.value.node_errors) == {"ksampler"}


def test_unknown_checkpoint_is_a_validation_error_naming_ckpt_name(comfy):
    with pytest.raises(PromptFailed, match="ckpt_name") as failure:
        comfy.submit(txt2vid_prompt("no_such_model.safetensors"))
    assert "no_such_model.safetensors" in str(failure.value)


def test_execution_error_carries_the_exception_message(comfy):
    broken = comfy.models_dir / "checkpoints" / "broken.safetensors"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"this is not a safetensors file")

    try:
        with pytest.raises(PromptFailed, match="'checkpoint' \\(CheckpointLoaderSimple\\)") as failure:
            comfy.run(txt2vid_prompt(broken.name), timeout=300)
    finally:
        broken.unlink()  # other tests list the checkpoints
    assert not isinstance(failure.value, PromptInterrupted)
    assert "Error while deserializing header" in str(failure.value)  # safetensors' own words


def test_model_factories_link_full_size_files_into_model_folders(comfy, motion_module, motion_lora, domain_adapter):
    name = motion_module("mm_sd_v15_v2.ckpt", "v2")
    module = torch.load(comfy.models_dir / "animatediff_models" / name, weights_only=True)
    proj_in = module["down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight"]
    assert (proj_in.shape, proj_in.dtype) == ((320, 320), torch.float16)
    assert "mid_block.motion_modules.0.temporal_transformer.proj_out.bias" in module

    assert motion_module("mm_sd_v15_v2.ckpt", "v2") == name  # asking again reuses the file
    with pytest.raises(ValueError, match="different model"):
        motion_module("mm_sd_v15_v2.ckpt", "v2", seed=1)

    lora = safetensors.torch.load_file(comfy.models_dir / "animatediff_motion_lora" / motion_lora("v2_lora_PanLeft.safetensors"))
    adapter_path = comfy.models_dir / "adapters_here" / domain_adapter("v3_sd15_adapter.safetensors", folder="adapters_here")
    adapter = safetensors.torch.load_file(adapter_path)
    assert lora and adapter
    assert all(t.dtype == torch.float16 for t in [*lora.values(), *adapter.values()])


def test_pack_import_failure_is_read_from_the_log(tmp_path):
    (tmp_path / "comfyui.log").write_text(
        "Traceback (most recent call last):\n"
        '  File "/b/custom_nodes/animatediff_pack/__init__.py", line 3, in <module>\n'
        "ImportError: cannot import name 'X'\n"
        "Cannot import /b/custom_nodes/animatediff_pack module for custom nodes: cannot import name 'X'\n"
        "Import times for custom nodes:\n"
        "   0.0 seconds: /b/custom_nodes/other_pack\n"
        "   0.0 seconds (IMPORT FAILED): /b/custom_nodes/animatediff_pack\n"
        "Starting server\n"
    )
    server = ComfyProcess(Path("unused"), "unused", Path("unused"), work_dir=tmp_path)

    excerpt = server.pack_import_error()

    assert excerpt.startswith("Traceback") and "cannot import name 'X'" in excerpt
    assert excerpt.endswith("(IMPORT FAILED): /b/custom_nodes/animatediff_pack")
    (tmp_path / "comfyui.log").write_text("   0.0 seconds: /b/custom_nodes/animatediff_pack\n")
    assert server.pack_import_error() is None


def test_a_host_python_without_the_packs_requirements_stops_the_run_with_one_line(tmp_path):
    from .conftest import HostRelease, check_host_python

    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    release = HostRelease(Path("unused"), str(bare / "bin" / "python"), "9.9.9")

    with pytest.raises(pytest.exit.Exception) as stopped:
        check_host_python(release)
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("host tests: ComfyUI 9.9.9's Python") and "lacks torch einops safetensors" in message
    assert "-m pip install -r" in message and "requirements.txt" in message
