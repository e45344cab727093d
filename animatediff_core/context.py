"""Context windows: sample animations longer than a motion module takes, window by window.

Each sampling step evaluates the UNet on overlapping windows of frames and fuses the
overlapping predictions with per-frame weights. Windows are placed at the cost floor:
the fewest whole windows of ``context_length`` frames whose neighbours overlap by at
least ``context_overlap`` frames, so no evaluation is spent on partial windows.

Frames lie on a line, or on a ring (closed loop: windows wrap from the last frame to
frame 0 so the end of the animation flows into its start).
"""

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import MotionModelError

SCHEDULES = ("static", "uniform", "looped")
FUSE_METHODS = ("pyramid", "flat", "overlap-linear")

# Fractional part of the golden ratio: step k moves seams by frac(k * this), which
# never repeats and keeps successive steps far apart.
_GOLDEN_FRACTION = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class ContextOptions:
    context_length: int = 16
    context_overlap: int = 4
    context_stride: int = 1
    schedule: str = "static"
    closed_loop: bool = False
    fuse_method: str = "pyramid"
    freenoise: bool = False

    def __post_init__(self):
        """Checked once, when made: raise MotionModelError naming the first bad input and what to do."""
        length, overlap = self.context_length, self.context_overlap
        if length < 2:
            raise MotionModelError(
                f"context_length must be at least 2 frames, got {length}: use 16 (what most motion "
                "modules were trained on)"
            )
        if overlap < 0:
            raise MotionModelError(f"context_overlap cannot be negative, got {overlap}: use 0 or more (4 is typical)")
        if overlap >= length:
            raise MotionModelError(
                f"context_overlap {overlap} must be less than context_length {length}: lower "
                f"context_overlap to {length - 1} or less (about a quarter of context_length works well)"
            )
        if self.context_stride < 1:
            raise MotionModelError(
                f"context_stride must be at least 1, got {self.context_stride}: use 1 for no dilated windows"
            )
        if self.schedule not in SCHEDULES:
            raise MotionModelError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.fuse_method not in FUSE_METHODS:
            raise MotionModelError(
                f"fuse_method must be one of {', '.join(FUSE_METHODS)}; got {self.fuse_method!r}"
            )

    @property
    def on_ring(self) -> bool:
        return self.closed_loop or self.schedule == "looped"


def freenoise_order(num_frames: int, options: ContextOptions, generator: torch.Generator) -> list[int]:
    """FreeNoise (Qiu et al. 2023) noise rescheduling: the frame whose initial noise each frame takes.

    The first window keeps its own noise; after it, each chunk of ``stride`` frames (the
    windows' stride, context_length - context_overlap) takes the noise of the frames one
    window earlier, shuffled within the chunk, so every window starts from a local shuffle of
    the first window's noise and the windows agree on content. Chunk by chunk and with the
    same random draws as diffusers' ``shuffle_context`` noise type.
    """
    length, stride = options.context_length, options.context_length - options.context_overlap
    order = list(range(num_frames))
    for start in range(length, num_frames, stride):
        source = range(start - length, min(num_frames, start - length + stride))
        shuffled = [source[i] for i in torch.randperm(len(source), generator=generator).tolist()]
        for frame, taken in zip(range(start, num_frames), shuffled):
            order[frame] = order[taken]
    return order


def context_windows(num_frames: int, options: ContextOptions, step: int = 0) -> list[list[int]]:
    """The windows (lists of frame indices) evaluated at sampling step ``step``.

    Base windows come first, then the dilated windows that ``context_stride`` adds.
    """
    if num_frames < 1:
        raise MotionModelError(f"num_frames must be at least 1, got {num_frames}")
    length = options.context_length
    if num_frames <= length:
        return [list(range(num_frames))]
    phase = None if options.schedule == "static" else (step * _GOLDEN_FRACTION) % 1.0
    windows = _place(list(range(num_frames)), options, phase)
    dilation = 2  # then 4, 8, ... up to context_stride
    while dilation <= options.context_stride:
        # A dilated window must hold `length` distinct frames: on a line every residue class
        # needs `length` members, on a ring one window must span less than a full lap.
        fits = dilation * (length - 1) < num_frames if options.on_ring else dilation * length <= num_frames
        if not fits:
            break
        for sequence in _dilated_sequences(num_frames, dilation, options.on_ring):
            windows += _place(sequence, options, phase)
        dilation *= 2
    return windows


def _dilated_sequences(num_frames: int, dilation: int, on_ring: bool) -> list[list[int]]:
    """Frames taken every ``dilation``-th frame, one sequence per residue class.

    On a ring the classes are the cycles of "step ``dilation`` frames around the loop"
    (gcd(num_frames, dilation) of them; the residues mod ``dilation`` when it divides
    num_frames), so the spacing stays ``dilation`` across the wrap too.
    """
    if not on_ring:
        return [list(range(r, num_frames, dilation)) for r in range(dilation)]
    cycles = math.gcd(num_frames, dilation)
    return [[(r + i * dilation) % num_frames for i in range(num_frames // cycles)] for r in range(cycles)]


def _place(sequence: list[int], options: ContextOptions, phase: float | None) -> list[list[int]]:
    """Windows of ``context_length`` consecutive members of ``sequence`` at the cost floor."""
    length, max_gap = options.context_length, options.context_length - options.context_overlap
    size = len(sequence)
    if size <= length:
        return [sequence]
    if options.on_ring:  # ceil(size / max_gap) windows spread evenly around the ring
        count = math.ceil(size / max_gap)
        rotation = 0 if phase is None else int(phase * math.ceil(size / count))
        starts = [(k * size // count + rotation) % size for k in range(count)]
    else:
        starts = _line_starts(size, length, max_gap, phase)
    return [[sequence[(start + i) % size] for i in range(length)] for start in starts]


def _line_starts(size: int, length: int, max_gap: int, phase: float | None) -> list[int]:
    """Starts of ceil((size - overlap) / max_gap) windows from 0 to the last full window."""
    span = size - length
    gaps = math.ceil(span / max_gap)
    if phase is None:
        # Gaps of floor/ceil(span / gaps): as even as whole frames allow.
        return [k * span // gaps for k in range(gaps + 1)]
    # Slack is the spare overlap beyond the minimum (always < max_gap). The interior windows
    # slide together by a step-dependent offset within it while the first and last windows
    # stay pinned to the ends. With no slack, or only two windows, nothing can move.
    slack = gaps * max_gap - span
    offset = int(phase * (slack + 1))
    return [0] + [k * max_gap - offset for k in range(1, gaps)] + [span]


def window_weights(windows: list[list[int]], num_frames: int, options: ContextOptions) -> list[torch.Tensor]:
    """One positive float32 weight per frame of each window, for fusing overlapping predictions."""
    if options.fuse_method == "flat":
        return [torch.ones(len(window)) for window in windows]
    if options.fuse_method == "pyramid":  # 1, 2, ... up to the window's middle, and back down to 1
        return [torch.minimum(torch.arange(1, len(w) + 1.0), torch.arange(len(w), 0, -1.0)) for w in windows]
    return [_cross_fade(window, windows, num_frames) for window in windows]


def _cross_fade(window: list[int], windows: list[list[int]], num_frames: int) -> torch.Tensor:
    """1, ramping linearly from 1/(k+1) up to 1 across the k frames shared with the
    neighbouring window at either end, so neighbours' weights sum to 1 in the overlap."""
    # Only windows of the same dilation are neighbours: a dilated window passing through
    # this window's first frame is no seam to fade across.
    spacing = _spacing(window, num_frames)
    others = [set(w) for w in windows if w is not window and _spacing(w, num_frames) == spacing]
    head = max((_run_inside(window, frames) for frames in others), default=0)
    tail = max((_run_inside(window[::-1], frames) for frames in others), default=0)
    size = len(window)
    weights = torch.ones(size)
    i = torch.arange(size, dtype=torch.float32)
    if head:
        weights = torch.minimum(weights, (i + 1) / (head + 1))
    if tail:
        weights = torch.minimum(weights, (size - i) / (tail + 1))
    return weights


def _run_inside(window: list[int], frames: set[int]) -> int:
    """How many leading frames of ``window`` are in ``frames``."""
    run = 0
    while run < len(window) and window[run] in frames:
        run += 1
    return run


def _spacing(window: list[int], num_frames: int) -> int:
    return (window[1] - window[0]) % num_frames if len(window) > 1 else 1


def evaluate_windowed(
    fn: Callable[[list[int]], list[torch.Tensor]],
    num_frames: int,
    windows: list[list[int]],
    weights: list[torch.Tensor],
) -> list[torch.Tensor]:
    """Call ``fn(window)`` per window, which predicts some outputs (one per cond) for the window's
    frames, ``(len(window), ...)`` each; fuse each output over the windows with ``weights``."""
    if len(windows) == 1 and windows[0] == list(range(num_frames)):
        return fn(windows[0])  # one window over everything: exactly no context at all
    totals = dtypes = weight_sum = None
    for window, weight in zip(windows, weights):
        outputs = fn(window)
        if totals is None:  # shapes, dtypes and device as the first window's outputs
            device = outputs[0].device
            totals = [torch.zeros((num_frames, *o.shape[1:]), dtype=torch.float32, device=device) for o in outputs]
            dtypes = [o.dtype for o in outputs]
            weight_sum = torch.zeros(num_frames, dtype=torch.float32, device=device)
        index = torch.tensor(window, device=device)
        weight = weight.to(device=device, dtype=torch.float32)
        for total, output in zip(totals, outputs):
            total.index_add_(0, index, output.float() * weight.view(-1, *[1] * (output.ndim - 1)))
        weight_sum.index_add_(0, index, weight)
    return [(total / weight_sum.view(-1, *[1] * (total.ndim - 1))).to(dtype) for total, dtype in zip(totals, dtypes)]


def describe_plan(num_frames: int, options: ContextOptions, step: int = 0) -> str:
    """One log line, e.g. "48 frames, 4 windows of 16 (overlap >= 4), 1.33 UNet frame-evaluations per frame"."""
    windows = context_windows(num_frames, options, step)
    if len(windows) == 1:
        return f"{num_frames} frames in one window (context_length {options.context_length}): no context needed"
    base = sum(_spacing(w, num_frames) == 1 for w in windows)
    loop = ", around the loop" if options.on_ring else ""
    text = (f"{num_frames} frames, {base} windows of {options.context_length} "
            f"(overlap >= {options.context_overlap}{loop})")
    if len(windows) > base:
        text += f" + {len(windows) - base} dilated windows (stride up to {options.context_stride})"
    evaluations = sum(len(w) for w in windows) / num_frames
    return f"{text}, {options.schedule} schedule, {evaluations:.2f} UNet frame-evaluations per frame"
