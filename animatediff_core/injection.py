"""Where each motion module goes in an SD1.5 UNet (spec section 2).

The UNet is described, not imported: ``{("input", i) | ("middle", 0) | ("output", i):
UnetBlock(channels, layer kinds)}``, where kinds are "res", "attn", "down", "up" and
"conv". The host glue builds that description from the real UNet.
"""

import re
from dataclasses import dataclass

from .errors import MotionModelError


@dataclass(frozen=True)
class UnetBlock:
    channels: int
    layers: tuple[str, ...]


@dataclass(frozen=True)
class Placement:
    module: str  # "down_blocks.0.motion_modules.1"
    block: tuple[str, int]  # ("input", 2)
    index: int  # insert before this layer of the block's sequence


def unet_position(module_name: str) -> tuple[str, int]:
    """down_blocks.i.*.j -> input_blocks[1+3i+j]; up_blocks.i.*.j -> output_blocks[3i+j]; mid -> middle_block."""
    if module_name.startswith("mid_block."):
        return ("middle", 0)
    level, index = (int(n) for n in re.match(r"\w+\.(\d+)\.motion_modules\.(\d+)$", module_name).groups())
    if module_name.startswith("down_blocks."):
        return ("input", 1 + 3 * level + index)
    return ("output", 3 * level + index)


def insertion_index(layers: tuple[str, ...]) -> int:
    """After the block's last spatial transformer, or after its last ResBlock if it has none.

    That is before an upsampler (output_blocks 2/5/8) and between the middle block's
    transformer and its second ResBlock; skip connections then see the module's output.
    """
    kind = "attn" if "attn" in layers else "res"
    return max(i for i, layer in enumerate(layers) if layer == kind) + 1


def plan_injection(motion_model, unet_kind: str, unet: dict[tuple[str, int], UnetBlock]) -> list[Placement]:
    """One Placement per motion module; refuses a model/UNet mismatch with a clear error."""
    if unet_kind != "sd15":
        raise MotionModelError(
            f"the model is {unet_kind!r}, but AnimateDiff motion modules here animate SD1.5 checkpoints: "
            "load an SD1.5 checkpoint"
        )
    if motion_model.base_model != "sd15":
        raise MotionModelError(
            f"{motion_model.source}: this is an SDXL motion module ({motion_model.describe()}); it cannot animate "
            "an SD1.5 checkpoint. Use an SD1.5 motion module such as mm_sd_v15_v2.ckpt or v3_sd15_mm.ckpt"
        )
    placements = []
    for name, block in motion_model.blocks.items():
        position = unet_position(name)
        target = unet.get(position)
        channels = block.norm.weight.shape[0]
        if target is None or "res" not in target.layers:
            raise MotionModelError(f"the UNet has no {position[0]} block {position[1]} for {name}")
        if target.channels != channels:
            raise MotionModelError(
                f"{motion_model.source}: {name} has {channels} channels but UNet {position[0]} block "
                f"{position[1]} has {target.channels}: this motion module was made for another UNet"
            )
        placements.append(Placement(name, position, insertion_index(target.layers)))
    return placements
