"""Inject into Model: MODEL + MOTION_MODEL -> a MODEL that samples animations (a clone; the input is untouched)."""

from ..animatediff_core import MotionModelError
from ..animatediff_core.schedules import SCHEDULES, schedule_named
from . import host
from .sampling import MotionSampling, MotionSettings, attach
from .widget_values import checks_numbers

AUTOSELECT = "autoselect"
USE_EXISTING = "use existing"


class InjectIntoModel:
    DESCRIPTION = (
        "Makes a checkpoint animate: the motion module is added to a copy of the model while it samples, "
        "with the noise schedule it was trained with. The latent batch size is the number of frames (16 is best). "
        "Works with any sampler node."
    )
    CATEGORY = "AnimateDiff"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model to give the sampler. The input model stays as it was.",)
    FUNCTION = "inject"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "An SD1.5 checkpoint's model (any fine-tune)."}),
                "motion_model": ("MOTION_MODEL", {"tooltip": "From Load Motion Module (or Apply MotionLoRA)."}),
                "beta_schedule": ([AUTOSELECT, USE_EXISTING, *SCHEDULES], {"default": AUTOSELECT, "tooltip":
                    "Noise schedule. autoselect uses the one the motion module was trained with (sqrt_linear for "
                    "v1-v3, lcm for AnimateLCM); a wrong one gives washed-out or flickering video."}),
                "motion_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01, "tooltip":
                    "Sharpens (>1) or softens (<1) how strongly frames attend to each other: more or less motion."}),
                "effect": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.01, "tooltip":
                    "How much of the motion module's change to keep. 0 = the plain image model, 1 = full motion."}),
                "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001, "tooltip":
                    "Sampling progress at which the motion module starts acting (0 = from the first step)."}),
                "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001, "tooltip":
                    "Sampling progress at which it stops (1 = until the last step)."}),
                "domain_adapter": (["none", *host.file_names(host.ADAPTERS)], {"default": "none", "tooltip":
                    "Optional v3 domain adapter (v3_sd15_adapter.ckpt in models/loras). It is NOT a MotionLoRA: "
                    "it adapts the image model to the look of the motion module's training videos."}),
                "adapter_alpha": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.01, "tooltip":
                    "Domain adapter strength (the paper's alpha): 1 = full, 0 = off; lower it to keep more of "
                    "your checkpoint's own style."}),
            },
            "optional": {
                "context_options": ("CONTEXT_OPTIONS", {"tooltip":
                    "Needed for more frames than the motion module takes at once (24 or 32): samples in windows."}),
                "motion_scale_mask": ("MASK", {"tooltip":
                    "Per-frame (and per-pixel) multiplier of motion_scale: one mask frame per latent frame, or one "
                    "for all."}),
                "effect_mask": ("MASK", {"tooltip":
                    "Per-frame (and per-pixel) multiplier of effect: e.g. black frames stay still images."}),
            },
        }

    @checks_numbers
    def inject(self, model, motion_model, beta_schedule, motion_scale, effect, start_percent, end_percent,
               domain_adapter, adapter_alpha, context_options=None, motion_scale_mask=None, effect_mask=None):
        if start_percent > end_percent:
            raise MotionModelError(f"start_percent {start_percent} is after end_percent {end_percent}: swap them")
        mm = motion_model.model
        placements = host.injection_plan(model, mm)
        if context_options is not None:
            mm.check_frames(context_options.context_length, "context_options",
                            f"lower context_length to {mm.pe_length} or less")
        settings = MotionSettings(motion_scale, effect, motion_scale_mask, effect_mask, start_percent, end_percent,
                                  context_options)
        patched = model.clone()
        attach(patched, MotionSampling(mm, placements, settings), host.motion_patcher_for(motion_model))
        schedule_name = mm.traits.schedule if beta_schedule == AUTOSELECT else beta_schedule
        if schedule_name != USE_EXISTING:
            sampling = host.sampling_with_schedule(model, schedule_named(schedule_name))
            patched.add_object_patch("model_sampling", sampling)
        if domain_adapter != "none":
            host.add_domain_adapter(patched, "domain_adapter", domain_adapter, adapter_alpha)
        text = f"{mm.describe()}: {len(placements)} motion modules, schedule {schedule_name}"
        if context_options is not None:
            text += f", windows of {context_options.context_length}"
        return {"ui": {"text": [text]}, "result": (patched,)}
