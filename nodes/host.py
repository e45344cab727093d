"""The one room that talks to ComfyUI's internals. A host update should touch this file, sampling.py
(the wrappers), host_training.py (training) and host_features.py (what the pack relies on), nothing else."""

import contextlib
import logging
import os
from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import comfy.model_sampling
import comfy.ops
import comfy.supported_models
import comfy.utils
import folder_paths
import torch
from comfy.cli_args import args as host_args
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, ResBlock, Upsample

from ..animatediff_core import (MotionModel, MotionModelError, UnetBlock, domain_adapter_factors, load_domain_adapter,
                               load_motion_model, plan_injection)
from ..animatediff_core.schedules import Schedule, sigmas
from ..animatediff_core.temporal import group_norm_across_frames
from ..video.errors import VideoError
from .host_features import lookup, require

log = logging.getLogger("AnimateDiff")

PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOTION_MODELS = "animatediff_models"
MOTION_LORAS = "animatediff_motion_lora"
ADAPTERS = "loras"  # the v3 domain adapter is a LoRA file; users keep it with their LoRAs


def register_model_folders() -> None:
    """The pack's motion_models/ and models/<name>; extra_model_paths.yaml entries stay first."""
    places = {
        MOTION_MODELS: [os.path.join(PACK_DIR, "motion_models"), os.path.join(folder_paths.models_dir, MOTION_MODELS)],
        MOTION_LORAS: [os.path.join(folder_paths.models_dir, MOTION_LORAS)],
    }
    for name, paths in places.items():
        for path in paths:
            folder_paths.add_model_folder_path(name, path)
        # A folder name new to the host starts with no extensions, which lists every file.
        folder_paths.folder_names_and_paths[name][1].update(folder_paths.supported_pt_extensions)


def file_names(folder: str) -> list[str]:
    return folder_paths.get_filename_list(folder)


def full_path(folder: str, input_name: str, file_name: str) -> str:
    path = folder_paths.get_full_path(folder, file_name)
    if path is None:
        folders = ", ".join(folder_paths.get_folder_paths(folder))
        raise MotionModelError(f"{input_name}: '{file_name}' is not in any {folder} folder ({folders})")
    return path


@contextlib.contextmanager
def blame(input_name: str):
    """Prefix a core (or video) error with the node input it came from."""
    try:
        yield
    except (MotionModelError, VideoError) as error:
        raise type(error)(f"{input_name}: {error}") from error


@dataclass(frozen=True)
class MotionModelHandle:
    """The MOTION_MODEL value: the core model (with its LoRA stack) and the base ModelPatcher of its modules. Every
    sampling use clones that patcher, so LoRA weight backups are shared between all stacks built on one file."""

    model: MotionModel
    patcher: comfy.model_patcher.ModelPatcher

    def with_lora(self, lora, strength: float) -> "MotionModelHandle":
        return MotionModelHandle(self.model.with_lora(lora, strength), self.patcher)


def load_motion_model_file(path: str) -> MotionModelHandle:
    # manual_cast layers cast to the UNet's dtype when it differs and let the host offload them.
    model = load_motion_model(path, ops=comfy.ops.manual_cast, dtype=comfy.model_management.unet_dtype())
    patcher = comfy.model_patcher.ModelPatcher(
        model.module,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
    )
    return MotionModelHandle(model, patcher)


def low_rank_patch(up: torch.Tensor, down: torch.Tensor):
    """The host's own LoRA weight adapter for W + strength * up @ down (no alpha: scale 1), built as the host
    builds it (weights: up, down, alpha, mid, dora_scale, reshape), so the host can rebuild it as type(v)(...)."""
    return lookup("comfy.weight_adapter.lora:LoRAAdapter")(set(), (up, down, None, None, None, None))


def motion_patcher_for(handle: MotionModelHandle) -> comfy.model_patcher.ModelPatcher:
    """A clone of the base patcher carrying the LoRA stack; the loaded weights stay untouched."""
    patcher = handle.patcher.clone()
    lora_patches = handle.model.lora_patches()
    if lora_patches:
        require("LoRA weight adapter", "Apply MotionLoRA")
    for key, factors in lora_patches.items():
        for up, down, strength in factors:
            patcher.add_patches({key: low_rank_patch(up, down)}, strength)
    return patcher


def add_domain_adapter(model, input_name: str, file_name: str, alpha: float) -> None:
    """Patch the SD1.5 UNet's spatial attention with the v3 domain adapter (paper Eq. 4)."""
    require("LoRA weight adapter", f"Inject into Model's {input_name}")
    with blame(input_name):
        adapter = load_domain_adapter(full_path(ADAPTERS, input_name, file_name))
    names = comfy.utils.unet_to_diffusers(model.model.model_config.unet_config)
    weights = model.model.state_dict()
    for key, factors in domain_adapter_factors(adapter, alpha).items():
        target = names.get(key)
        weight = weights.get(f"diffusion_model.{target}") if target else None
        (up, down, strength), = factors
        if weight is None or tuple(weight.shape) != (up.shape[0], down.shape[1]):
            raise MotionModelError(
                f"{input_name}: '{file_name}' does not fit this model ({key}): use the v3 domain adapter "
                "with an SD1.5 checkpoint"
            )
        model.add_patches({f"diffusion_model.{target}": low_rank_patch(up, down)}, strength)


class MotionLayer(torch.nn.Module):
    """Stands in a UNet block's layer list; the registered timestep-embed patch runs it."""

    def __init__(self, name: str, run):
        super().__init__()
        self.module_name = name
        self.run = run  # a plain callable: the motion patcher owns the block's weights, not the UNet

    def forward(self, x):
        # Reached only if the host's patch handler is gone: leave the UNet as it is
        # (the self-check then reports that no motion module ran).
        return x


def run_motion_layer(layer, x, emb, context, transformer_options, *args):
    """forward_timestep_embed_patch handler: a plain function, so MODEL clones copy it cheaply."""
    return layer.run(x, transformer_options)


def show_text(text: str, node_id=None) -> None:
    """Text shown on a node in the frontend: the node being executed unless one is named."""
    from comfy_execution.utils import get_executing_context

    if node_id is None:
        context = get_executing_context()
        node_id = context.node_id if context else None
    if node_id is None:
        return  # not inside a prompt: nowhere to show it
    from server import PromptServer  # the running server's module; imported only inside one

    if PromptServer.instance is not None:
        PromptServer.instance.send_progress_text(text, node_id)


def injection_plan(model, motion_model: MotionModel) -> list:
    """Where the motion modules go in the MODEL's UNet; errors name the motion_model input."""
    config = model.model.model_config
    kinds = ((comfy.supported_models.SD15, "sd15"), (comfy.supported_models.SDXL, "sdxl"))
    kind = next((name for cls, name in kinds if isinstance(config, cls)), type(config).__name__)
    with blame("motion_model"):
        return plan_injection(motion_model, kind, describe_unet(model.model.diffusion_model))


def unet_blocks(diffusion_model) -> dict:
    """The UNet's layer sequences by the positions the core's injection plan names."""
    blocks = {("input", i): seq for i, seq in enumerate(diffusion_model.input_blocks)}
    blocks[("middle", 0)] = diffusion_model.middle_block
    blocks.update({("output", i): seq for i, seq in enumerate(diffusion_model.output_blocks)})
    return blocks


def describe_unet(diffusion_model) -> dict:
    def kind(layer) -> str:
        for cls, name in ((ResBlock, "res"), (SpatialTransformer, "attn"), (Downsample, "down"), (Upsample, "up")):
            if isinstance(layer, cls):
                return name
        return "conv"

    def block(seq) -> UnetBlock:
        seq = [layer for layer in seq if not isinstance(layer, MotionLayer)]  # a leftover from an aborted run
        layers = tuple(kind(layer) for layer in seq)
        last = [layer for layer in seq if kind(layer) in ("res", "attn")]
        channels = (getattr(last[-1], "out_channels", None) or last[-1].in_channels) if last else 0
        return UnetBlock(channels, layers)

    return {position: block(seq) for position, seq in unet_blocks(diffusion_model).items()}


def unet_resnet_norms(diffusion_model) -> list:
    """The GroupNorms of the UNet's ResNet blocks (before each of their two convolutions) and its output norm."""
    resnets = [layer for seq in unet_blocks(diffusion_model).values() for layer in seq if isinstance(layer, ResBlock)]
    norms = [norm for resnet in resnets for norm in (resnet.in_layers[0], resnet.out_layers[0])]
    return norms + [diffusion_model.out[0]]


def normalise_across_frames(norm, frames) -> None:
    """Until ``restore_norm``, ``norm`` takes its statistics over all frames of each video in its
    input, ``frames()`` frames each; the module and its weights stay as they are."""
    def forward(x):
        return group_norm_across_frames(lambda video: type(norm).forward(norm, video), x, frames())

    forward.animatediff = True
    norm.forward = forward  # an instance attribute: shadows the class's forward, removed again below


def restore_norm(norm) -> None:
    if getattr(norm.__dict__.get("forward"), "animatediff", False):
        del norm.forward


def sampling_with_schedule(model, schedule: Schedule):
    """A model_sampling object with the schedule's sigmas, keeping the model's prediction type."""
    current = model.get_model_object("model_sampling")
    v_prediction = isinstance(current, comfy.model_sampling.V_PREDICTION)
    prediction = comfy.model_sampling.V_PREDICTION if v_prediction else comfy.model_sampling.EPS
    base = comfy.model_sampling.ModelSamplingDiscrete
    if schedule.lcm:
        require("LCM sampling", "The lcm beta_schedule")
        base = lookup("comfy_extras.nodes_model_advanced:ModelSamplingDiscreteDistilled")
        prediction = lookup("comfy_extras.nodes_model_advanced:LCM")

    class AnimateDiffSampling(base, prediction):
        pass

    sampling = AnimateDiffSampling(model.model.model_config)
    sampling.set_sigmas(sigmas(schedule))
    return sampling


# -- files and progress for Video Combine and Load Frames ------------------------------------

def metadata_enabled() -> bool:
    return not host_args.disable_metadata  # ComfyUI's --disable-metadata


def folder(kind: str) -> str:
    """ComfyUI's "input", "output" or "temp" folder."""
    return folder_paths.get_directory_by_type(kind)


def media_files(names: list[str]) -> list[str]:
    """The videos and images among ``names``, by the host's content-type table."""
    return folder_paths.filter_files_content_types(names, ["video", "image"])


def input_path(name: str) -> str:
    """An input-folder file name as the frontend gives it (``name [output]`` annotations included)."""
    return folder_paths.get_annotated_filepath(name)


def progress_bar(total: int):
    """``update(done, total)`` for the node's progress bar in the frontend."""
    return comfy.utils.ProgressBar(total).update_absolute


def ui_file(path) -> dict:
    """The {filename, subfolder, type} triple /view serves a file by."""
    path = str(path)
    for kind in ("output", "temp"):
        root = os.path.abspath(folder(kind))
        if os.path.commonpath((root, path)) == root:
            subfolder = os.path.relpath(os.path.dirname(path), root)
            return {"filename": os.path.basename(path), "subfolder": "" if subfolder == "." else subfolder,
                    "type": kind}
    raise ValueError(f"{path} is in neither the output nor the temp folder")


def encode_text(clip, text: str):
    """(cond (1, tokens, C), pooled (1, C)) of ``text`` as CLIP Text Encode makes them, (word:1.2) weights included."""
    return clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
