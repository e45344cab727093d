"""Context Options: how to sample animations longer than a motion module takes, window by window."""

from ..animatediff_core.context import FUSE_METHODS, SCHEDULES, ContextOptions
from .widget_values import checks_numbers


class ContextOptionsNode:
    DESCRIPTION = (
        "Samples long animations (beyond the motion module's 16-32 frames) in overlapping windows of frames "
        "that are blended together. Connect it to Inject into Model's context_options."
    )
    CATEGORY = "AnimateDiff"
    RETURN_TYPES = ("CONTEXT_OPTIONS",)
    OUTPUT_TOOLTIPS = ("Window settings for Inject into Model.",)
    FUNCTION = "create"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "context_length": ("INT", {"default": 16, "min": 2, "max": 128, "tooltip":
                    "Frames the motion module sees at once. 16 is what the modules were trained on; "
                    "it cannot exceed the module's limit (24 for v1, 32 for v2/v3)."}),
                "context_overlap": ("INT", {"default": 4, "min": 0, "max": 127, "tooltip":
                    "Frames shared by neighbouring windows. More overlap = smoother transitions between windows "
                    "but more work: each frame costs about length/(length-overlap) UNet passes (16/4: 1.33x)."}),
                "context_stride": ("INT", {"default": 1, "min": 1, "max": 16, "tooltip":
                    "1 = windows of consecutive frames only. 2, 4, ... add windows over every 2nd/4th frame so "
                    "distant frames stay consistent; each doubling roughly doubles the cost."}),
                "schedule": (list(SCHEDULES), {"default": "static", "tooltip":
                    "static: windows at the same frames every step. uniform: the seams between windows move "
                    "every step, hiding them. looped: treats the animation as a loop and rotates the windows "
                    "around it (always loops)."}),
                "closed_loop": ("BOOLEAN", {"default": False, "tooltip":
                    "On: the last frames share windows with the first, so the animation loops seamlessly. "
                    "Off: a clip with a beginning and an end (except with the looped schedule)."}),
                "fuse_method": (list(FUSE_METHODS), {"default": "pyramid", "tooltip":
                    "How overlapping windows are blended. pyramid: each window counts most in its middle "
                    "(smooth, the usual choice). overlap-linear: cross-fade only where windows overlap. "
                    "flat: plain average."}),
            },
            "optional": {
                "freenoise": ("BOOLEAN", {"default": False, "tooltip":
                    "FreeNoise: later windows start from a shuffled copy of the first window's noise, so the "
                    "windows agree on content and the seams between them fade. Same seed, same result."}),
            }
        }

    @checks_numbers
    def create(self, context_length, context_overlap, context_stride, schedule, closed_loop, fuse_method,
               freenoise=False):
        return (ContextOptions(context_length, context_overlap, context_stride, schedule, closed_loop, fuse_method,
                               freenoise),)
