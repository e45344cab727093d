"""Camera-motion clips from still images: the paper's rule-based augmentation (section 4.3).

A virtual camera looks at a view of the image (a rectangle with the output's aspect
ratio, possibly rotated) that moves over the frames: a view that shrinks is a zoom in,
one that slides a pan, one that turns a roll. Each frame samples its view bilinearly at
sub-pixel positions, and every view stays inside the image, so no frame shows a border.
Images are ``(H, W, C)`` floats, coordinates are pixels with edges at 0 and W.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import MotionModelError

MOTIONS = ("zoom in", "zoom out", "pan left", "pan right", "tilt up", "tilt down",
           "roll clockwise", "roll counter-clockwise")
MAX_STRENGTH = 0.9  # zoom and pan/tilt: the view keeps at least a tenth of the image's side
ROLL_DEGREES = 90.0  # a roll at strength 1 would turn the camera a quarter turn


@dataclass(frozen=True)
class View:
    """What one frame shows: centre (x, y), size, and the camera's turn (radians, clockwise)."""

    x: float
    y: float
    width: float
    height: float
    angle: float = 0.0


def camera_path(motion: str, frames: int, strength: float, image_size: tuple[int, int],
                aspect: float) -> list[View]:
    """The view of every frame for ``motion``; ``strength`` in [0, 0.9] is how far the camera travels.

    zoom: the last view is (1 - strength) as wide as the first (zoom out: the other way round);
    pan/tilt: the view, (1 - strength) of the image, travels strength of the image's width/height;
    roll: the camera turns strength x 90 degrees about the image's centre.
    """
    if motion not in MOTIONS:
        raise MotionModelError(f"motion {motion!r} is unknown; choose one of {', '.join(MOTIONS)}")
    if frames < 2:
        raise MotionModelError(f"frames must be at least 2 for a camera to move, got {frames}")
    if not 0.0 <= strength <= MAX_STRENGTH:
        raise MotionModelError(f"strength must be between 0 and {MAX_STRENGTH}, got {strength}")
    image_w, image_h = image_size
    # The largest view with the output's aspect ratio that fits the image.
    full_w = min(image_w, image_h * aspect)
    full_h = full_w / aspect
    cx, cy = image_w / 2, image_h / 2
    progress = [f / (frames - 1) for f in range(frames)]
    if motion.startswith("zoom"):
        # Geometric steps: every frame magnifies by the same factor, as a steady zoom does.
        sizes = [(1 - strength) ** p for p in progress]
        if motion == "zoom out":
            sizes.reverse()
        return [View(cx, cy, full_w * s, full_h * s) for s in sizes]
    if motion.startswith(("pan", "tilt")):
        view_w, view_h = full_w * (1 - strength), full_h * (1 - strength)
        travel_x, travel_y = full_w - view_w, full_h - view_h
        # The camera turns left/up: its view slides left/up over the image.
        sign = -1 if motion in ("pan left", "tilt up") else 1
        if motion.startswith("pan"):
            return [View(cx + sign * travel_x * (p - 0.5), cy, view_w, view_h) for p in progress]
        return [View(cx, cy + sign * travel_y * (p - 0.5), view_w, view_h) for p in progress]
    sign = 1 if motion == "roll clockwise" else -1
    angles = [sign * math.radians(ROLL_DEGREES * strength) * p for p in progress]
    # One size for the whole roll: the largest whose every turned view stays inside the image.
    extents = [_turned_extent(full_w, full_h, a) for a in angles]
    scale = min(1.0, *(min(image_w / w, image_h / h) for w, h in extents))
    return [View(cx, cy, full_w * scale, full_h * scale, a) for a in angles]


def _turned_extent(width: float, height: float, angle: float) -> tuple[float, float]:
    """Width and height of the axis-aligned box around a width x height rectangle turned by angle."""
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    return width * c + height * s, width * s + height * c


def render_views(image: torch.Tensor, views: list[View], width: int, height: int) -> torch.Tensor:
    """(frames, height, width, C): each view resampled to the output size.

    Bilinear sampling reads 2x2 pixels, so an image shown at less than half its size would
    alias: it is first shrunk with antialiasing to twice the output's scale. Positions are
    in the image's own coordinates, so the views' sub-pixel steps are unchanged by that.
    """
    image_h, image_w = image.shape[:2]
    source = image.permute(2, 0, 1).unsqueeze(0).float()
    shrink = 2 * width / max(v.width for v in views)
    if shrink < 1.0:
        size = (max(1, round(image_h * shrink)), max(1, round(image_w * shrink)))
        source = F.interpolate(source, size=size, mode="bilinear", antialias=True, align_corners=False)
    grids = torch.stack([_sampling_grid(v, width, height, image_w, image_h) for v in views])
    frames = F.grid_sample(source.expand(len(views), -1, -1, -1), grids.to(source), mode="bilinear",
                           padding_mode="border", align_corners=False)
    return frames.permute(0, 2, 3, 1).to(image.dtype)


def _sampling_grid(view: View, width: int, height: int, image_w: int, image_h: int) -> torch.Tensor:
    """(height, width, 2): where each output pixel centre lies in the image, as grid_sample reads it."""
    u = ((torch.arange(width, dtype=torch.float64) + 0.5) / width - 0.5) * view.width
    v = ((torch.arange(height, dtype=torch.float64) + 0.5) / height - 0.5) * view.height
    v, u = torch.meshgrid(v, u, indexing="ij")
    # The camera turns clockwise on screen (y points down), so its view turns clockwise over the image.
    c, s = math.cos(view.angle), math.sin(view.angle)
    x = view.x + c * u - s * v
    y = view.y + s * u + c * v
    # align_corners=False: -1 and 1 are the image's outer edges.
    return torch.stack((2 * x / image_w - 1, 2 * y / image_h - 1), dim=-1).float()


def camera_clips(images: torch.Tensor, motion: str, frames: int, strength: float, width: int,
                 height: int) -> torch.Tensor:
    """One clip per image, clip-major: (images * frames, height, width, C)."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise MotionModelError(
            f"images must be a batch (N, H, W, C) with at least one image, got {tuple(images.shape)}")
    image_size = (images.shape[2], images.shape[1])
    views = camera_path(motion, frames, strength, image_size, width / height)
    return torch.cat([render_views(image, views, width, height) for image in images])


def contact_sheet(clips: torch.Tensor, frames: int, max_clips: int = 8) -> torch.Tensor:
    """(1, rows * H, 3 * W, C): the first, middle and last frame of each of the first clips, one row each."""
    rows = [torch.cat([clips[start + f] for f in (0, frames // 2, frames - 1)], dim=1)
            for start in range(0, min(len(clips), max_clips * frames), frames)]
    return torch.cat(rows, dim=0).unsqueeze(0)
