"""Checkpoint key layouts (spec sections 2-4): namings, family detection, expected tensors.

The canonical layout inside the pack is the original AnimateDiff one:
``<block>.motion_modules.<j>.temporal_transformer.<tensor>``. diffusers and
HotshotXL files are renamed into it on load.
"""

import re
from dataclasses import dataclass

import torch

from .errors import MotionModelError
from .temporal import TemporalTransformer

DOWN_LEVELS = {"sd15": 4, "sdxl": 3}
ANIMATELCM_PE_LENGTH = 64


@dataclass(frozen=True)
class Family:
    """A motion-model family, and how the code it was trained with samples it."""

    display_name: str
    groupnorm: str  # the motion modules' own GroupNorm: per_frame, or across_frames (over the video)
    # The image UNet's ResNet and output GroupNorms while it samples: the original code runs v1
    # on the whole video (use_inflated_groupnorm false, statistics across frames), later ones per frame.
    unet_groupnorm: str
    schedule: str  # the noise schedule it was trained with, a key of schedules.SCHEDULES


FAMILIES = {
    "v1": Family("v1", "per_frame", "across_frames", "sqrt_linear (AnimateDiff)"),
    "v2": Family("v2", "per_frame", "per_frame", "sqrt_linear (AnimateDiff)"),
    "v3": Family("v3", "per_frame", "per_frame", "sqrt_linear (AnimateDiff)"),
    "animatelcm": Family("AnimateLCM", "per_frame", "per_frame", "lcm (AnimateLCM)"),
    # diffusers and the SDXL beta normalise the motion modules' input across frames.
    "sdxl_beta": Family("SDXL beta", "across_frames", "per_frame", "linear (SDXL beta, beta_end 0.020)"),
    "hotshotxl": Family("HotshotXL", "per_frame", "per_frame", "linear (SD1.5 default, HotshotXL)"),
}

_MODULE = r"(?:(?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.\d+"
MODULE_PREFIX = re.compile(rf"^({_MODULE})\.")
_DIFFUSERS_MODULE = re.compile(rf"^({_MODULE})\.(?!temporal_transformer\.)")
_HOTSHOT_MODULE = re.compile(r"^((?:down_blocks|up_blocks)\.\d+)\.temporal_attentions\.(\d+)\.")
_DIFFUSERS_RENAMES = (
    (".norm1.", ".norms.0."),
    (".norm2.", ".norms.1."),
    (".norm3.", ".ff_norm."),
    (".attn1.", ".attention_blocks.0."),
    (".attn2.", ".attention_blocks.1."),
)
_PE_KEY = "pos_encoder.pe"


@dataclass(frozen=True)
class Layout:
    """What a motion-model file is, as detected from its keys and shapes."""

    family: str
    base_model: str  # "sd15" | "sdxl"
    pe_length: int
    has_mid_block: bool
    stores_pe: bool  # False for AnimateLCM files, which carry no pos_encoder tensors


def block_names(base_model: str, has_mid_block: bool) -> list[str]:
    """Every motion module of a model, in UNet order: down (2 per level), mid, up (3 per level)."""
    levels = DOWN_LEVELS[base_model]
    names = [f"down_blocks.{i}.motion_modules.{j}" for i in range(levels) for j in range(2)]
    if has_mid_block:
        names.append("mid_block.motion_modules.0")
    names += [f"up_blocks.{i}.motion_modules.{j}" for i in range(levels) for j in range(3)]
    return names


def module_tensor_shapes(channels: int, pe_length: int, with_pe: bool = True) -> dict[str, tuple]:
    """The tensors of one module under ``temporal_transformer.``, with their shapes, as the module
    itself defines them (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        module = TemporalTransformer(channels, pe_length)
    return {k: tuple(t.shape) for k, t in module.state_dict().items() if with_pe or not k.endswith(_PE_KEY)}


def detect_naming(keys: dict) -> str | None:
    """"original", "diffusers", "hotshotxl", or None when no key is a motion-module key."""
    if any(_HOTSHOT_MODULE.match(k) for k in keys):
        return "hotshotxl"
    if any(k.startswith(m.group(0) + "temporal_transformer.") for k in keys if (m := MODULE_PREFIX.match(k))):
        return "original"
    if any(_DIFFUSERS_MODULE.match(k) for k in keys):
        return "diffusers"
    return None


def to_original_keys(key: str, naming: str) -> list[str]:
    """The original-layout name(s) of one key; diffusers' shared ``pos_embed.pe`` becomes two."""
    if naming == "hotshotxl":
        key = _HOTSHOT_MODULE.sub(r"\1.motion_modules.\2.temporal_transformer.", key)
        return [key.replace("pos_encoder.positional_encoding", _PE_KEY)]
    if naming != "diffusers" or not _DIFFUSERS_MODULE.match(key):
        return [key]
    key = _DIFFUSERS_MODULE.sub(r"\1.temporal_transformer.", key)
    for old, new in _DIFFUSERS_RENAMES:
        key = key.replace(old, new)
    if key.endswith(".pos_embed.pe"):
        stem = key[: -len("pos_embed.pe")]
        return [f"{stem}attention_blocks.{a}.{_PE_KEY}" for a in (0, 1)]
    return [key]


def detect_layout(state_dict: dict, source: str) -> tuple[Layout, dict]:
    """Family, base model, PE length and mid block from keys alone (spec section 3), and the
    tensors renamed into the original layout."""
    naming = detect_naming(state_dict)
    if naming is None:
        raise MotionModelError(f"{source}: not a motion module. {describe_foreign_file(state_dict)}")
    original = {new: tensor for key, tensor in state_dict.items() for new in to_original_keys(key, naming)}
    down_levels = {int(m.group(1)) for k in original if (m := re.match(r"down_blocks\.(\d+)\.motion_modules\.", k))}
    if not down_levels:
        raise MotionModelError(f"{source}: a motion module needs down_blocks.*.motion_modules.* tensors; none found")
    top_level = max(down_levels)
    base_model = {3: "sd15", 2: "sdxl"}.get(top_level)
    if base_model is None:
        raise MotionModelError(
            f"{source}: motion modules in down_blocks.0..{top_level}; expected 0..3 (SD1.5) or 0..2 (SDXL)"
        )
    has_mid = any(k.startswith("mid_block.") for k in original)
    pe_lengths = {t.shape[1] for k, t in original.items() if k.endswith(_PE_KEY) and t.ndim == 3}
    if len(pe_lengths) > 1:
        raise MotionModelError(f"{source}: its positional encodings disagree in length: {sorted(pe_lengths)}")
    stores_pe = bool(pe_lengths)
    pe_length = pe_lengths.pop() if stores_pe else ANIMATELCM_PE_LENGTH
    family = _family(naming, base_model, has_mid, pe_length, stores_pe)
    return Layout(family, base_model, pe_length, has_mid, stores_pe), original


def _family(naming: str, base_model: str, has_mid: bool, pe_length: int, stores_pe: bool) -> str:
    if naming == "hotshotxl":
        return "hotshotxl"
    if base_model == "sdxl":
        return "sdxl_beta"
    if not stores_pe or pe_length == ANIMATELCM_PE_LENGTH:
        return "animatelcm"
    if has_mid:
        return "v2"
    return "v1" if pe_length == 24 else "v3"


_KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
_LORA_FACTOR = re.compile(r"(?:[._]lora\.(?:down|up)|\.lora_(?:A|B|down|up))(?:\.default)?\.weight$")
_PROCESSOR_FACTOR = re.compile(r"\.processor\.to_(?:q|k|v|out)_lora\.(?:down|up)\.weight$")


def file_kind(keys: dict) -> str:
    """What a tensor file is, from its key names alone (motion modules are told apart by
    ``detect_layout``): "checkpoint", "motion_lora", "domain_adapter" (a LoRA on the image
    model's spatial attention in the v3 adapter's processor naming), "image_lora" (any other
    LoRA for the image model or its text encoder, kohya or diffusers/PEFT naming), or "other"."""
    if any(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for k in keys):
        return "checkpoint"
    if any(k.startswith(_KOHYA_PREFIXES) for k in keys):
        return "image_lora"
    factors = [k for k in keys if _LORA_FACTOR.search(k)]
    if not factors:
        return "other"
    if any(".motion_modules." in k or ".temporal_attentions." in k for k in factors):
        return "motion_lora"
    if all(_PROCESSOR_FACTOR.search(k) and ".attentions." in k for k in factors):
        return "domain_adapter"
    return "image_lora"


WHERE_IT_BELONGS = {
    "checkpoint": "It looks like a Stable Diffusion checkpoint: put it in models/checkpoints and load it with "
                  "Load Checkpoint.",
    "motion_lora": "It is a MotionLoRA: load it with Apply MotionLoRA (folder models/animatediff_motion_lora).",
    "domain_adapter": "It is a v3 domain adapter: give it to Inject into Model's domain_adapter input.",
    "image_lora": "It is an image LoRA for the checkpoint, not an AnimateDiff file: load it with ComfyUI's own "
                  "LoRA loader (Load LoRA) on the MODEL, before Inject into Model.",
}


def describe_foreign_file(state_dict: dict) -> str:
    """A hint naming what a non-motion-module file probably is, and where it belongs."""
    kind = file_kind(state_dict)
    if kind in WHERE_IT_BELONGS:
        return WHERE_IT_BELONGS[kind]
    sample = ", ".join(list(state_dict)[:3]) or "no tensors at all"
    return f"Expected keys like down_blocks.0.motion_modules.0.temporal_transformer.norm.weight; found {sample}."


def check_tensors(original: dict, layout: Layout, source: str) -> dict[str, int]:
    """Every module has every tensor (original layout) at a consistent shape; returns each module's channels."""
    channels = {}
    problems = []
    modules = block_names(layout.base_model, layout.has_mid_block)
    for name in modules:
        norm = original.get(f"{name}.temporal_transformer.norm.weight")
        if norm is None or norm.ndim != 1:
            problems.append(f"{name}.temporal_transformer.norm.weight is missing")
            continue
        channels[name] = c = norm.shape[0]
        if c % 32:
            problems.append(f"{name} has {c} channels; motion modules need a multiple of 32 (GroupNorm groups)")
            continue
        expected = module_tensor_shapes(c, layout.pe_length, layout.stores_pe)
        for relative, shape in expected.items():
            key = f"{name}.temporal_transformer.{relative}"
            tensor = original.get(key)
            if tensor is None:
                problems.append(f"{key} is missing")
            elif tuple(tensor.shape) != shape:
                problems.append(f"{key} has shape {tuple(tensor.shape)}, expected {shape}")
    unknown = [k for k in original if (m := MODULE_PREFIX.match(k)) and m.group(1) not in modules]
    problems += [f"{k} belongs to no motion module of a {layout.base_model} model" for k in unknown[:3]]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise MotionModelError(
            f"{source}: incomplete or damaged {layout.family} motion module: " + "; ".join(problems[:5]) + more
            + ". Download the file again."
        )
    return channels
