"""Load Motion Module: a motion-module file -> MOTION_MODEL."""

from . import host


class LoadMotionModule:
    DESCRIPTION = (
        "Loads an AnimateDiff motion module (v1, v2, v3, AnimateLCM; SDXL beta and HotshotXL are recognised). "
        "The family is detected from the file's contents and shown on the node."
    )
    CATEGORY = "AnimateDiff"
    RETURN_TYPES = ("MOTION_MODEL",)
    OUTPUT_TOOLTIPS = ("The motion module: connect it to Apply MotionLoRA or Inject into Model.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_name": (host.file_names(host.MOTION_MODELS), {"tooltip":
                    "A motion module from models/animatediff_models or the pack's motion_models folder, e.g. "
                    "mm_sd_v15_v2.ckpt or v3_sd15_mm.ckpt."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def load(self, model_name, unique_id=None):
        path = host.full_path(host.MOTION_MODELS, "model_name", model_name)
        with host.blame("model_name"):
            handle = host.load_motion_model_file(path)
        text = f"{model_name}: {handle.model.describe()}"
        host.log.info("AnimateDiff: loaded %s", text)
        host.show_text(text, unique_id)
        return {"ui": {"text": [text]}, "result": (handle,)}
