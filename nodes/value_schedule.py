"""Value Schedule: keyframed numbers -> a per-frame MASK (e.g. motion strength that travels)."""

import torch

from ..animatediff_core.keyframes import INTERPOLATIONS, value_schedule
from .widget_values import checks_numbers


class ValueSchedule:
    DESCRIPTION = (
        "A number per keyframe, one per line (0: 1.0), blended frame by frame. Gives a per-frame mask for "
        "Inject into Model's motion_scale_mask or effect_mask, so motion strength can change over the animation."
    )
    CATEGORY = "AnimateDiff"
    RETURN_TYPES = ("MASK",)
    OUTPUT_TOOLTIPS = ("One value per frame, as a (frames, 1, 1) mask.",)
    FUNCTION = "schedule_values"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "schedule": ("STRING", {"multiline": True, "default": "0: 1.0\n-1: 0.5", "tooltip":
                    "One keyframe per line: frame: value. -1 is the last frame."}),
                "frames": ("INT", {"default": 16, "min": 1, "max": 4096, "tooltip":
                    "Frames in the animation (the latent batch size). Ignored when latent is connected."}),
                "interpolation": (list(INTERPOLATIONS), {"default": "linear", "tooltip":
                    "Between keyframes: linear, ease-in-out, or none (hold until the next keyframe)."}),
            },
            "optional": {
                "latent": ("LATENT", {"tooltip": "Takes the frame count from this latent's batch size."}),
            },
        }

    @checks_numbers
    def schedule_values(self, schedule, frames, interpolation, latent=None):
        if latent is not None:
            frames = latent["samples"].shape[0]
        values = torch.tensor(value_schedule(schedule, frames, interpolation), dtype=torch.float32)
        return (values.view(frames, 1, 1),)
