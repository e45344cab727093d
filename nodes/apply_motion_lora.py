"""Apply MotionLoRA: MOTION_MODEL + a MotionLoRA file at a strength -> a new MOTION_MODEL."""

from ..animatediff_core import load_motion_lora
from . import host
from .widget_values import checks_numbers


class ApplyMotionLoRA:
    DESCRIPTION = (
        "Adds a MotionLoRA (camera motion such as zoom, pan or roll) to a motion module. Chain several to "
        "mix motions: their changes add up, each at its own strength. The incoming motion model is not changed."
    )
    CATEGORY = "AnimateDiff"
    RETURN_TYPES = ("MOTION_MODEL",)
    OUTPUT_TOOLTIPS = ("The motion module with this MotionLoRA on top of any already applied.",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion_model": ("MOTION_MODEL", {"tooltip": "From Load Motion Module or another Apply MotionLoRA."}),
                "lora_name": (host.file_names(host.MOTION_LORAS), {"tooltip":
                    "A MotionLoRA from models/animatediff_motion_lora, e.g. v2_lora_ZoomIn.ckpt."}),
                "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01, "tooltip":
                    "How much of this camera motion to add. 0 = none, 1 = as trained; negative values reverse it "
                    "(zoom in becomes zoom out)."}),
            }
        }

    @checks_numbers
    def apply(self, motion_model, lora_name, strength):
        path = host.full_path(host.MOTION_LORAS, "lora_name", lora_name)
        with host.blame("lora_name"):
            return (motion_model.with_lora(load_motion_lora(path), strength),)
