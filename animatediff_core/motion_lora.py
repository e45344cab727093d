"""MotionLoRA and the v3 domain adapter (spec section 5, paper Eq. 4).

Both are low-rank weight deltas: ``W' = W + sum_i s_i * up_i @ down_i`` in fp32,
weights only, never biases. MotionLoRAs target the motion modules' attention
projections and compose by summing; the domain adapter targets the SD1.5 UNet's
spatial attention and is scaled by its alpha.
"""

import re
from dataclasses import dataclass

import torch

from .errors import MotionModelError
from .formats import describe_foreign_file, detect_naming, file_kind, to_original_keys
from .tensor_files import read_tensors

# <stem>.[processor.]to_q_lora.down.weight | <stem>.to_q.lora_A[.default].weight | <stem>.to_q.lora.down.weight
_LORA_KEY = re.compile(
    r"^(?P<stem>.+?)\.(?:processor\.)?"
    r"(?:to_(?P<old>q|k|v|out)_lora\.(?P<old_side>down|up)"
    r"|(?P<target>to_q|to_k|to_v|to_out\.0|to_out)\."
    r"(?:lora_(?P<peft_side>A|B)(?:\.default)?|lora\.(?P<new_side>down|up)))"
    r"\.weight$"
)
_SIDES = {"A": "down", "B": "up", "down": "down", "up": "up"}


@dataclass(frozen=True)
class LowRankFile:
    """A MotionLoRA or the domain adapter, parsed: ``layers[target weight key] = (up, down)``."""

    source: str
    layers: dict
    rank: int


def load_motion_lora(source) -> LowRankFile:
    """A MotionLoRA in the original, diffusers (``unet.``) or PEFT (lora_A/lora_B) spelling."""
    tensors, name = read_tensors(source)
    if file_kind(tensors) != "motion_lora":
        raise MotionModelError(f"{name}: not a MotionLoRA. {describe_foreign_file(tensors)}")
    pairs = _parse_pairs(tensors, name)
    naming = detect_naming(pairs) or "original"
    layers = {key: factors for stem_key, factors in pairs.items() for key in to_original_keys(stem_key, naming)}
    return LowRankFile(name, layers, _rank(layers, name))


def motion_lora_tensors(lora: LowRankFile) -> dict[str, torch.Tensor]:
    """The factors in the original MotionLoRA spelling, as the official files hold them:
    ``<stem>.processor.to_q_lora.down.weight`` (to_out.0 becomes ``to_out_lora``)."""
    tensors = {}
    for key, (up, down) in lora.layers.items():
        stem, _, target = key.removesuffix(".weight").rpartition(".to_")
        name = f"{stem}.processor.to_{target.removesuffix('.0')}_lora"
        tensors[f"{name}.down.weight"], tensors[f"{name}.up.weight"] = down, up
    return tensors


def check_motion_lora(lora: LowRankFile, motion_model) -> None:
    """Every target exists in the model with matching shapes (mid-block entries may be absent)."""
    weights = dict(motion_model.module.named_parameters())
    problems = []
    for key, (up, down) in lora_layers_for(lora, motion_model).items():
        weight = weights.get(key)
        if weight is None:
            problems.append(f"{key} does not exist in this {motion_model.family} model")
        elif (up.shape[0], down.shape[1]) != tuple(weight.shape):
            problems.append(
                f"{key} is {tuple(weight.shape)} in the model but the LoRA makes "
                f"{(up.shape[0], down.shape[1])}"
            )
    if problems:
        raise MotionModelError(
            f"{lora.source}: this MotionLoRA was made for a different motion model "
            f"(the loaded one is {motion_model.describe()}): " + "; ".join(problems[:3])
            + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        )


def lora_layers_for(lora: LowRankFile, motion_model) -> dict:
    """The LoRA's layers that apply to this model (mid-block ones skipped when it has none)."""
    return {k: v for k, v in lora.layers.items() if motion_model.has_mid_block or not k.startswith("mid_block.")}


def load_domain_adapter(source) -> LowRankFile:
    """The v3 domain adapter: ``layers`` keyed by diffusers SD1.5 UNet weight names."""
    tensors, name = read_tensors(source)
    if file_kind(tensors) in ("motion_lora", "checkpoint"):
        raise MotionModelError(f"{name}: not a v3 domain adapter. {describe_foreign_file(tensors)}")
    pairs = _parse_pairs(tensors, name)
    if not any(".attentions." in k for k in pairs):
        raise MotionModelError(
            f"{name}: not a v3 domain adapter (expected LoRA keys like "
            "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight). "
            + describe_foreign_file(tensors)
        )
    return LowRankFile(name, pairs, _rank(pairs, name))


def domain_adapter_factors(adapter: LowRankFile, alpha: float) -> dict:
    """``{diffusers UNet weight key: [(up, down, alpha)]}``: paper Eq. 4, alpha 0 removes it."""
    return {key: [(up, down, float(alpha))] for key, (up, down) in adapter.layers.items()}


def _parse_pairs(tensors: dict, name: str) -> dict:
    """``{"<stem>.to_q.weight": (up, down)}`` from any of the three spellings."""
    sides: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = _LORA_KEY.match(key)
        if match is None:
            continue
        target = match["target"] or f"to_{match['old']}"
        if target == "to_out":
            target = "to_out.0"
        side = _SIDES[match["old_side"] or match["peft_side"] or match["new_side"]]
        sides.setdefault(f"{match['stem']}.{target}.weight", {})[side] = tensor
    pairs = {}
    for key, found in sides.items():
        if set(found) != {"up", "down"}:
            missing = ({"up", "down"} - set(found)).pop()
            raise MotionModelError(f"{name}: the LoRA's {missing} matrix for {key} is missing; download the file again")
        up, down = found["up"], found["down"]
        if up.ndim != 2 or down.ndim != 2 or up.shape[1] != down.shape[0]:
            raise MotionModelError(
                f"{name}: LoRA factors for {key} do not fit together (up {tuple(up.shape)}, down {tuple(down.shape)})"
            )
        pairs[key] = (up, down)
    return pairs


def _rank(layers: dict, name: str) -> int:
    ranks = {down.shape[0] for _, down in layers.values()}
    if not ranks:
        raise MotionModelError(f"{name}: no LoRA layers found")
    return max(ranks)
