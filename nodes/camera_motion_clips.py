"""Camera Motion Clips: images -> clips of a virtual camera moving over them (training data for a MotionLoRA)."""

from ..animatediff_core.camera import MAX_STRENGTH, MOTIONS, camera_clips, contact_sheet
from . import host
from .widget_values import checks_numbers


class CameraMotionClips:
    DESCRIPTION = (
        "Makes training clips for Train MotionLoRA: a virtual camera zooms, pans, tilts or rolls over each image, "
        "one clip per image, with smooth sub-pixel motion and no borders (the view always stays inside the image)."
    )
    CATEGORY = "AnimateDiff/training"
    RETURN_TYPES = ("IMAGE", "INT", "IMAGE")
    RETURN_NAMES = ("clips", "frames_per_clip", "preview")
    OUTPUT_TOOLTIPS = (
        "All clips in one batch, clip after clip (images x frames images).",
        "The frames of each clip: connect it to Train MotionLoRA's frames_per_clip.",
        "First, middle and last frame of each clip (up to 8 clips), one row per clip.",
    )
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Stills (or a video's frames): each becomes one clip. 20-50 varied "
                                                "images train a motion that works on any subject."}),
                "motion": (list(MOTIONS), {"default": "zoom in", "tooltip":
                    "What the camera does. Roll clockwise turns the camera clockwise, so the picture turns "
                    "counter-clockwise."}),
                "frames": ("INT", {"default": 16, "min": 2, "max": 64, "tooltip":
                    "Frames per clip. 16 is what motion modules were trained on."}),
                "strength": ("FLOAT", {"default": 0.3, "min": 0.0, "max": MAX_STRENGTH, "step": 0.01, "tooltip":
                    "How far the camera travels over a clip. Zoom: the last frame shows (1 - strength) of the "
                    "first's width. Pan/tilt: the view travels strength of the image's width/height. Roll: the "
                    "camera turns strength x 90 degrees."}),
                "width": ("INT", {"default": 256, "min": 64, "max": 2048, "step": 8, "tooltip":
                    "Width of the clips: the training resolution."}),
                "height": ("INT", {"default": 256, "min": 64, "max": 2048, "step": 8, "tooltip":
                    "Height of the clips: the training resolution."}),
            }
        }

    @checks_numbers
    def make(self, images, motion, frames, strength, width, height):
        with host.blame("images"):
            clips = camera_clips(images, motion, frames, strength, width, height)
        return (clips, frames, contact_sheet(clips, frames))
