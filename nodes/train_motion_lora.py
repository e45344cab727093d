"""Train MotionLoRA: clips of a camera motion -> a MotionLoRA file, and the motion model with it applied."""

import os

from ..animatediff_core import MotionModelError
from ..animatediff_core.training import TrainingSettings, loss_curve
from . import host, host_training
from .host_features import require
from .widget_values import checks_numbers


class TrainMotionLoRA:
    DESCRIPTION = (
        "Teaches a motion module a new camera motion from clips (the AnimateDiff paper's MotionLoRA): only small "
        "LoRA factors on its attention train, the checkpoint and the motion module stay as they are. The file is "
        "saved to models/animatediff_motion_lora when training finishes; Apply MotionLoRA loads it like the "
        "official ones."
    )
    CATEGORY = "AnimateDiff/training"
    RETURN_TYPES = ("MOTION_MODEL", "IMAGE")
    RETURN_NAMES = ("motion_model", "loss_curve")
    OUTPUT_TOOLTIPS = (
        "The motion module with the new MotionLoRA applied (strength 1): sample with it at once.",
        "The loss of every step (light) and its running average (dark): it should fall, then level out.",
    )
    OUTPUT_NODE = True  # the saved file is worth the run even with nothing connected
    FUNCTION = "train"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The SD1.5 checkpoint to train with (any fine-tune)."}),
                "vae": ("VAE", {"tooltip": "The checkpoint's VAE: encodes the clips once, before training."}),
                "positive": ("CONDITIONING", {"tooltip": "A caption for the clips, e.g. 'a photo, camera zooms in'."}),
                "motion_model": ("MOTION_MODEL", {"tooltip": "From Load Motion Module: the module the LoRA adapts "
                                                             "(use it with that module later)."}),
                "clips": ("IMAGE", {"tooltip": "From Camera Motion Clips, or any frames: clip after clip."}),
                "frames_per_clip": ("INT", {"default": 16, "min": 2, "max": 64, "tooltip":
                    "Frames in each clip: connect Camera Motion Clips' frames_per_clip."}),
                "rank": ("INT", {"default": 64, "min": 1, "max": 512, "tooltip":
                    "Size of the LoRA factors: a higher rank can learn more and makes a bigger file."}),
                "steps": ("INT", {"default": 500, "min": 1, "max": 100000, "tooltip":
                    "Training steps. The paper trains about 2,000."}),
                "learning_rate": ("FLOAT", {"default": 5e-4, "min": 1e-6, "max": 1e-1, "step": 1e-5, "round": False,
                                            "tooltip": "AdamW step size."}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip":
                    "Clips per step: more is steadier and needs more memory."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip":
                    "Picks the starting factors, the clips, timesteps and noise of each step."}),
                "gradient_checkpointing": ("BOOLEAN", {"default": True, "tooltip":
                    "Recompute activations during backward instead of keeping them: less memory, more time."}),
                "lora_name": ("STRING", {"default": "my_camera_motion", "tooltip":
                    "File name, optionally with subfolders ('camera/dolly_in'): saved as models/"
                    "animatediff_motion_lora/<lora_name>_00001.safetensors (the next free number), never over an "
                    "existing file."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @checks_numbers
    def train(self, model, vae, positive, motion_model, clips, frames_per_clip, rank, steps, learning_rate, batch_size,
              seed, gradient_checkpointing, lora_name, unique_id=None):
        require("model injections", "Train MotionLoRA")
        require("model loading for training", "Train MotionLoRA")
        mm = motion_model.model
        placements = host.injection_plan(model, mm)
        if mm.loras:
            raise MotionModelError(
                "motion_model: it already has MotionLoRAs applied; train on the plain motion module from Load "
                "Motion Module (apply other MotionLoRAs after training)")
        _check_clips(clips, frames_per_clip, mm)
        path = host_training.new_lora_path(lora_name)
        latents = vae.encode(clips[..., :3])  # once, before training
        latents = latents.reshape(-1, frames_per_clip, *latents.shape[1:])  # (clips, frames, 4, H/8, W/8)
        update_bar = host.progress_bar(steps)

        def on_step(step, loss):
            update_bar(step, steps)
            text = f"step {step}/{steps}: loss {loss:.4f}"
            host.log.info("AnimateDiff: training %s", text)
            host.show_text(text, unique_id)
            host_training.stop_if_interrupted()

        settings = TrainingSettings(steps, learning_rate, min(batch_size, len(latents)), seed)
        factors, losses = host_training.train_motion_lora(
            model, latents, _caption(positive), motion_model, placements, rank, settings, gradient_checkpointing,
            on_step)
        lora = factors.as_motion_lora(str(path))
        host_training.save_motion_lora(path, lora, {
            "format": "AnimateDiff MotionLoRA", "base_motion_module": os.path.basename(mm.source),
            "family": mm.family, "rank": rank, "steps": steps, "motion": lora_name.strip(),
            "learning_rate": learning_rate, "clips": len(latents), "frames": frames_per_clip,
            "resolution": f"{clips.shape[2]}x{clips.shape[1]}",
        })
        tail = losses[-min(10, len(losses)):]
        text = (f"saved {path.name}: {steps} step{'s' * (steps != 1)}, loss {losses[0]:.4f} -> "
                f"{sum(tail) / len(tail):.4f} (last {len(tail)})")
        host.log.info("AnimateDiff: %s", text)
        return {"ui": {"text": [text]}, "result": (motion_model.with_lora(lora, 1.0), loss_curve(losses))}


def _check_clips(clips, frames: int, motion_model) -> None:
    count = clips.shape[0]
    if count % frames:  # frames_per_clip >= 2, so this also refuses a lone image
        raise MotionModelError(
            f"clips: {count} images is not a whole number of clips of frames_per_clip={frames}: connect Camera "
            "Motion Clips' clips and frames_per_clip, or give clip after clip of that many frames")
    motion_model.check_frames(frames, "frames_per_clip", f"use at most {motion_model.pe_length} (16 is best)")
    if clips.shape[1] % 8 or clips.shape[2] % 8:
        raise MotionModelError(
            f"clips: {clips.shape[2]}x{clips.shape[1]} pixels; the VAE needs sides divisible by 8 (e.g. 256x256)")


def _caption(positive):
    if not positive or not hasattr(positive[0][0], "shape"):
        raise MotionModelError("positive: no conditioning; connect a CLIP Text Encode with the clips' caption")
    return positive[0][0][:1]
