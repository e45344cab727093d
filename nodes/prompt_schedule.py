"""Prompt Schedule: keyframed prompts -> CONDITIONING with one text embedding per frame (prompt travel)."""

from ..animatediff_core.keyframes import INTERPOLATIONS, blend_frames, frame_blends, padded_to_longest, parse_schedule
from . import host
from .widget_values import checks_numbers

EXAMPLE = '0: "a cat in a meadow, spring, cherry blossoms"\n16: "a cat in a meadow, autumn, falling leaves"'


class PromptSchedule:
    DESCRIPTION = (
        "Prompt travel: a prompt per keyframe, one per line (0: \"a cat in spring\"), blended frame by frame "
        "between keyframes. Gives one conditioning per frame: connect it to the sampler's positive input (or "
        "to Apply ControlNet). Works in context windows: frame i always gets prompt i."
    )
    CATEGORY = "AnimateDiff"
    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("One text conditioning per frame.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip": ("CLIP", {"tooltip": "The checkpoint's CLIP."}),
                "schedule": ("STRING", {"multiline": True, "default": EXAMPLE, "tooltip":
                    "One keyframe per line: frame: \"prompt\". Quotes, braces and trailing commas are optional; "
                    "-1 is the last frame. (word:1.2) weights work as in CLIP Text Encode."}),
                "frames": ("INT", {"default": 16, "min": 1, "max": 4096, "tooltip":
                    "Frames in the animation (the latent batch size). Ignored when latent is connected."}),
                "interpolation": (list(INTERPOLATIONS), {"default": "linear", "tooltip":
                    "Between keyframes: linear blends evenly, ease-in-out changes slowly at the keyframes, "
                    "none holds each prompt until the next keyframe."}),
                "prepend": ("STRING", {"default": "", "tooltip": "Text put before every keyframe's prompt."}),
                "append": ("STRING", {"default": "", "tooltip": "Text put after every keyframe's prompt."}),
            },
            "optional": {
                "latent": ("LATENT", {"tooltip": "Takes the frame count from this latent's batch size."}),
            },
        }

    @checks_numbers
    def encode(self, clip, schedule, frames, interpolation, prepend, append, latent=None):
        if latent is not None:
            frames = latent["samples"].shape[0]
        keyframes = parse_schedule(schedule, frames)
        texts = [", ".join(part.strip() for part in (prepend, text, append) if part.strip()) for _, text in keyframes]
        encoded = {text: host.encode_text(clip, text) for text in dict.fromkeys(texts)}  # each prompt once
        conds = [encoded[t][0] for t in texts]
        if len({c.shape[1] for c in conds}) > 1:
            conds = padded_to_longest(conds, host.encode_text(clip, "")[0])
        blends = frame_blends([frame for frame, _ in keyframes], frames, interpolation)
        cond = blend_frames(conds, blends)
        pooled = blend_frames([encoded[t][1] for t in texts], blends)
        text = f"{len(keyframes)} keyframes over {frames} frames ({interpolation})"
        return {"ui": {"text": [text]}, "result": ([[cond, {"pooled_output": pooled}]],)}
