"""Keyframe schedules: "frame: value" lines -> one value (or blend of two) per frame.

The syntax artists type in other AnimateDiff tools, one keyframe per line::

    0: "a cat in spring"
    "16": "a cat in winter",
    -1: "a cat in the snow"

Quotes, braces and trailing commas are optional; a negative frame counts from the end.
Between keyframes a frame blends the two around it; before the first keyframe and after
the last, the nearest keyframe holds.
"""

import math
import re
from dataclasses import dataclass

import torch

from .errors import MotionModelError

INTERPOLATIONS = ("linear", "none", "ease-in-out")

_LINE = re.compile(r"""^\s*(?P<quote>["']?)(?P<frame>-?\d+)(?P=quote)\s*:\s*(?P<value>.*?)\s*,?\s*$""")


@dataclass(frozen=True)
class Blend:
    """Frame value = (1 - weight) * values[first] + weight * values[second]."""

    first: int
    second: int
    weight: float


def parse_schedule(text: str, frames: int, input_name: str = "schedule") -> list[tuple[int, str]]:
    """``[(frame, value text), ...]`` sorted by frame, negative frames resolved; values unquoted."""
    if frames < 1:
        raise MotionModelError(f"frames must be at least 1, got {frames}")
    keyframes = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip().strip("{}").strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match is None or not match["value"]:
            raise MotionModelError(
                f"{input_name} line {number}: {line.strip()!r} is not a keyframe: expected "
                '`frame: "text"`, e.g. `0: "a cat in spring"` or `-1: "a cat in winter"`')
        frame = int(match["frame"])
        resolved = frame + frames if frame < 0 else frame
        if not 0 <= resolved < frames:
            raise MotionModelError(
                f"{input_name} line {number}: frame {frame} is outside the animation's {frames} frames "
                f"(0 to {frames - 1}, or -1 to -{frames} from the end)")
        if resolved in keyframes:
            raise MotionModelError(f"{input_name} line {number}: frame {frame} has a keyframe already")
        keyframes[resolved] = _unquoted(match["value"])
    if not keyframes:
        raise MotionModelError(f'{input_name} has no keyframe: write one per line, e.g. `0: "a cat in spring"`')
    return sorted(keyframes.items())


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].replace('\\"', '"')
    return value


def frame_blends(keyframe_frames: list[int], frames: int, interpolation: str) -> list[Blend]:
    """For every frame, which two keyframes (indices into ``keyframe_frames``) it blends and how much."""
    if interpolation not in INTERPOLATIONS:
        raise MotionModelError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {interpolation!r}")
    blends = []
    for frame in range(frames):
        after = next((i for i, k in enumerate(keyframe_frames) if k >= frame), len(keyframe_frames) - 1)
        before = after if keyframe_frames[after] <= frame else max(after - 1, 0)
        span = keyframe_frames[after] - keyframe_frames[before]
        t = (frame - keyframe_frames[before]) / span if span else 0.0
        blends.append(Blend(before, after, _eased(t, interpolation)))
    return blends


def _eased(t: float, interpolation: str) -> float:
    if interpolation == "none":
        return 0.0
    if interpolation == "ease-in-out":
        return (1.0 - math.cos(math.pi * t)) / 2.0
    return t


def value_schedule(text: str, frames: int, interpolation: str, input_name: str = "schedule") -> list[float]:
    """One number per frame from keyframes such as ``0: 1.0`` / ``12: 0.2``."""
    keyframes = parse_schedule(text, frames, input_name)
    values = []
    for frame, value in keyframes:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise MotionModelError(f"{input_name}: frame {frame}'s value {value!r} is not a number")
        values.append(number)
    return [(1 - b.weight) * values[b.first] + b.weight * values[b.second]
            for b in frame_blends([k for k, _ in keyframes], frames, interpolation)]


def blend_frames(per_keyframe: list[torch.Tensor], blends: list[Blend]) -> torch.Tensor:
    """One row per frame, each the blend of its two keyframes' tensors (each of batch 1)."""
    return torch.cat([torch.lerp(per_keyframe[b.first], per_keyframe[b.second], b.weight) for b in blends])


def padded_to_longest(conds: list[torch.Tensor], padding: torch.Tensor) -> list[torch.Tensor]:
    """Text conds (1, tokens, C) brought to the longest one's token count by appending chunks of
    ``padding`` (an empty prompt's encoding), as prompts over 77 tokens encode to more tokens."""
    longest = max(cond.shape[1] for cond in conds)
    padded = []
    for cond in conds:
        missing = longest - cond.shape[1]
        if missing:
            chunks = -(-missing // padding.shape[1])
            cond = torch.cat([cond, padding.to(cond).repeat(1, chunks, 1)[:, :missing]], dim=1)
        padded.append(cond)
    return padded
