"""What host tests write prompts with, and the errors a prompt can end in (the product's own).

Prompts are ComfyUI's API format: ``{node_id: {"class_type": ..., "inputs": {...}}}``,
a link is ``[node_id, output_slot]``. Node ids here are readable names, so a test can
splice nodes in::

    prompt = txt2vid_prompt(ckpt, model=["inject", 0], extra_nodes={
        "motion": node("SomeLoader", model_name=mm),
        "inject": node("SomeInjector", model=CHECKPOINT_MODEL, motion_model=["motion", 0]),
    })
    latent = comfy.latent(comfy.run(prompt), "save")
"""

# Re-exported: the tests catch the errors the product's client raises.
from cli.comfy_client import PromptFailed, PromptInterrupted  # noqa: F401

CHECKPOINT_MODEL = ["checkpoint", 0]
CHECKPOINT_CLIP = ["checkpoint", 1]
CHECKPOINT_VAE = ["checkpoint", 2]


def node(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def txt2vid_prompt(checkpoint: str, frames: int = 16, width: int = 16, height: int = 16, steps: int = 2,
                   cfg: float = 7.0, seed: int = 0, model=None, positive: str = "a cat walking",
                   negative: str = "blurry", sampler_name: str = "euler", scheduler: str = "normal",
                   extra_nodes: dict | None = None) -> dict:
    """Stock nodes only: checkpoint -> text encoders -> empty latent of ``frames`` -> KSampler -> SaveLatent.

    ``model`` is the link KSampler samples (default: the checkpoint's MODEL), so
    nodes in ``extra_nodes`` can sit between the loader and the sampler.
    Read the result with ``comfy.latent(outputs, "save")``.
    """
    prompt = {
        "checkpoint": node("CheckpointLoaderSimple", ckpt_name=checkpoint),
        "positive": node("CLIPTextEncode", text=positive, clip=CHECKPOINT_CLIP),
        "negative": node("CLIPTextEncode", text=negative, clip=CHECKPOINT_CLIP),
        "latent": node("EmptyLatentImage", width=width, height=height, batch_size=frames),
        "ksampler": node(
            "KSampler", model=model or CHECKPOINT_MODEL, seed=seed, steps=steps, cfg=cfg,
            sampler_name=sampler_name, scheduler=scheduler, positive=["positive", 0],
            negative=["negative", 0], latent_image=["latent", 0], denoise=1.0,
        ),
        "save": node("SaveLatent", samples=["ksampler", 0], filename_prefix="latents/test"),
    }
    prompt.update(extra_nodes or {})
    return prompt


def animatediff(mm_name: str, lora_stack=(), **inject_inputs) -> dict:
    """This pack's nodes turning the checkpoint's MODEL into ``["inject", 0]``: Load Motion Module,
    an Apply MotionLoRA per ``(file, strength)`` in ``lora_stack``, Inject into Model (``inject_inputs``
    override its widget values)."""
    nodes = {"motion": node("AnimateDiffLoadMotionModule", model_name=mm_name)}
    last = ["motion", 0]
    for i, (lora, strength) in enumerate(lora_stack):
        nodes[f"lora{i}"] = node("AnimateDiffApplyMotionLoRA", motion_model=last, lora_name=lora, strength=strength)
        last = [f"lora{i}", 0]
    inputs = dict(model=CHECKPOINT_MODEL, motion_model=last, beta_schedule="autoselect", motion_scale=1.0,
                  effect=1.0, start_percent=0.0, end_percent=1.0, domain_adapter="none", adapter_alpha=1.0)
    inputs.update(inject_inputs)
    nodes["inject"] = node("AnimateDiffInjectIntoModel", **inputs)
    return nodes


def training_prompt(checkpoint: str, mm_name: str, lora_name: str, steps: int = 2, frames: int = 8, size: int = 64,
                    **train_inputs) -> dict:
    """Two stills made by the checkpoint itself -> zoom-in clips of ``frames`` at ``size`` px -> Train
    MotionLoRA (node "train", ``train_inputs`` override its widget values)."""
    inputs = dict(model=CHECKPOINT_MODEL, vae=CHECKPOINT_VAE, positive=["caption", 0], motion_model=["motion", 0],
                  clips=["clips", 0], frames_per_clip=["clips", 1], rank=4, steps=steps, learning_rate=1e-2,
                  batch_size=1, seed=0, gradient_checkpointing=True, lora_name=lora_name)
    inputs.update(train_inputs)
    return {
        "checkpoint": node("CheckpointLoaderSimple", ckpt_name=checkpoint),
        "caption": node("CLIPTextEncode", text="a photo, the camera zooms in", clip=CHECKPOINT_CLIP),
        "stills_latent": node("EmptyLatentImage", width=size, height=size, batch_size=2),
        "stills_sampler": node("KSampler", model=CHECKPOINT_MODEL, seed=1, steps=1, cfg=1.0, sampler_name="euler",
                               scheduler="normal", positive=["caption", 0], negative=["caption", 0],
                               latent_image=["stills_latent", 0], denoise=1.0),
        "stills": node("VAEDecode", samples=["stills_sampler", 0], vae=CHECKPOINT_VAE),
        "motion": node("AnimateDiffLoadMotionModule", model_name=mm_name),
        "clips": node("AnimateDiffCameraMotionClips", images=["stills", 0], motion="zoom in", frames=frames,
                      strength=0.3, width=size, height=size),
        "train": node("AnimateDiffTrainMotionLoRA", **inputs),
    }
