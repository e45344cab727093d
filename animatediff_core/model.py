"""File (or state dict) -> MotionModel: its modules, what it is, and the MotionLoRAs stacked on it."""

from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import MotionModelError
from .formats import FAMILIES, MODULE_PREFIX, Family, Layout, block_names, check_tensors, detect_layout
from .motion_lora import check_motion_lora, lora_layers_for
from .temporal import TemporalTransformer, sinusoidal_pe
from .tensor_files import read_tensors


def module_tree(modules: dict[str, nn.Module]) -> nn.ModuleDict:
    """One module holding each of ``modules`` at its dotted name, so the tree's ``state_dict()``
    keys are ``<name>.<tensor>``: here the original checkpoint layout."""
    root = nn.ModuleDict()
    for name, module in modules.items():
        *parents, leaf = name.split(".")
        holder = root
        for part in parents:
            if part not in holder:
                holder[part] = nn.ModuleDict()
            holder = holder[part]
        holder[leaf] = module
    return root


@dataclass(frozen=True)
class MotionModel:
    """An immutable value: nodes hand it on and stack LoRAs by making new ones.

    ``blocks`` maps ``down_blocks.0.motion_modules.0``-style names to the
    temporal transformers; ``loras`` is the stack of (LowRankFile, strength).
    """

    layout: Layout
    module: nn.ModuleDict
    source: str
    loras: tuple = field(default=())

    @property
    def family(self) -> str:
        return self.layout.family

    @property
    def traits(self) -> Family:
        """How this family is sampled: its display name, GroupNorm scopes and trained noise schedule."""
        return FAMILIES[self.family]

    @property
    def base_model(self) -> str:
        return self.layout.base_model

    @property
    def pe_length(self) -> int:
        return self.layout.pe_length

    @property
    def has_mid_block(self) -> bool:
        return self.layout.has_mid_block

    @property
    def blocks(self) -> dict[str, TemporalTransformer]:
        return {
            name: self.module.get_submodule(f"{name}.temporal_transformer")
            for name in block_names(self.base_model, self.has_mid_block)
        }

    def with_lora(self, lora, strength: float) -> "MotionModel":
        """A new value with one more MotionLoRA; this one (and its weights) stay as they are."""
        check_motion_lora(lora, self)
        return MotionModel(self.layout, self.module, self.source, self.loras + ((lora, float(strength)),))

    def lora_patches(self) -> dict[str, list]:
        """``{weight key: [(up, down, strength), ...]}`` for every weight the LoRA stack changes."""
        patches: dict[str, list] = {}
        for lora, strength in self.loras:
            for key, (up, down) in lora_layers_for(lora, self).items():
                patches.setdefault(key, []).append((up, down, strength))
        return patches

    def check_frames(self, frames: int, input_name: str, remedy: str) -> None:
        """The frame limit: a motion module sees at most pe_length frames at once (its positional
        encoding's length). ``remedy``: what the user can do, from where ``frames`` came."""
        if frames > self.pe_length:
            raise MotionModelError(
                f"{input_name}: {frames} frames, but {self.describe()} takes at most {self.pe_length} at once: {remedy}"
            )

    def describe(self) -> str:
        mid = ", mid block" if self.has_mid_block else ""
        loras = f", {len(self.loras)} MotionLoRA(s)" if self.loras else ""
        return (f"AnimateDiff {self.traits.display_name} "
                f"({self.base_model.upper()}, {self.pe_length} frames max{mid}{loras})")


def load_motion_model(source, groupnorm: str | None = None, ops=nn, dtype=None) -> MotionModel:
    """Load any AnimateDiff motion module (v1, v2, v3, AnimateLCM, SDXL beta, HotshotXL).

    ``source``: a path (.safetensors/.ckpt/.pth/.pt) or a state dict, in the
    original, diffusers or HotshotXL naming. ``groupnorm``: "per_frame" or
    "across_frames"; default is what the family was trained with. ``ops``: the
    module classes to build with (torch.nn, or a host's casting/offloading ops);
    ``dtype``: convert the weights on load (default: the file's).
    Raises MotionModelError naming the file for anything it cannot use.
    """
    tensors, name = read_tensors(source)
    layout, original = detect_layout(tensors, name)
    channels = check_tensors(original, layout, name)
    tensors = {
        k: v.to(dtype) if dtype is not None and v.is_floating_point() else v
        for k, v in original.items()
        if MODULE_PREFIX.match(k)
    }
    groupnorm = groupnorm or FAMILIES[layout.family].groupnorm
    # The file's tensors are assigned to the modules directly: no copy, no random init.
    with torch.device("meta"):
        module = module_tree({
            f"{block}.temporal_transformer": TemporalTransformer(c, layout.pe_length, groupnorm, ops)
            for block, c in channels.items()
        })
    if not layout.stores_pe:  # AnimateLCM: the fixed sinusoidal encoding, in the file's dtype
        for block, c in channels.items():
            prefix = f"{block}.temporal_transformer."
            for a in (0, 1):
                pe = sinusoidal_pe(layout.pe_length, c).to(tensors[f"{prefix}norm.weight"].dtype)
                tensors[f"{prefix}transformer_blocks.0.attention_blocks.{a}.pos_encoder.pe"] = pe
    module.load_state_dict(tensors, strict=True, assign=True)
    return MotionModel(layout, module.eval().requires_grad_(False), name)
