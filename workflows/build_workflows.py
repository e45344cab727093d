"""The sample workflows' single source: each one written once, as an API prompt, below.

    python workflows/build_workflows.py            write <name>.json (UI) and api/<name>.api.json (API)
    python workflows/build_workflows.py --check    exit 1 if a file on disk differs from what it would write
    python workflows/build_workflows.py --refresh http://127.0.0.1:8188
                                                   re-read api/node_schemas.json from a running ComfyUI
                                                   (with this pack installed), then write the files

Model files carry the names users have. `controlnet_depth` reads `depth_frames.mp4` from
ComfyUI's input folder (upload it on the Load Frames node, or point its `path` at a folder
of depth images).
"""

import argparse
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for cli/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder, for ui_graph

from ui_graph import api_to_ui  # noqa: E402

HERE = Path(__file__).resolve().parent
# ComfyUI lists every .json directly in workflows/ as a template card: only the UI workflows
# live there; the API twins and the schemas sit in api/, which it does not look into.
API_DIR = HERE / "api"
SCHEMAS_FILE = API_DIR / "node_schemas.json"

CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
MOTION_V2 = "mm_sd_v15_v2.ckpt"
MOTION_V3 = "v3_sd15_mm.ckpt"
ZOOM_IN = "v2_lora_ZoomIn.ckpt"
PAN_LEFT = "v2_lora_PanLeft.ckpt"
DEPTH_CONTROLNET = "control_v11f1p_sd15_depth.pth"
DOMAIN_ADAPTER = "v3_sd15_adapter.ckpt"
DEPTH_VIDEO = "depth_frames.mp4"
STILLS_FOLDER = "camera_stills/"  # a folder of images in ComfyUI's input folder, as Load Frames lists it

NEGATIVE = "blurry, low quality, watermark, text, deformed"
SEASONS = ('0: "spring, cherry blossoms, green meadow"\n16: "summer, bright sun, tall grass"\n'
           '32: "autumn, red and orange leaves falling"\n-1: "winter, deep snow, frozen lake"')

# Inputs whose choices are the files on the machine the schemas were read from: stored empty,
# so the schemas do not depend on whose models folder they came from.
FILE_CHOICES = {
    ("CheckpointLoaderSimple", "ckpt_name"),
    ("ControlNetLoader", "control_net_name"),
    ("AnimateDiffLoadMotionModule", "model_name"),
    ("AnimateDiffApplyMotionLoRA", "lora_name"),
    ("AnimateDiffInjectIntoModel", "domain_adapter"),
    ("AnimateDiffLoadFrames", "video"),
}


class Prompt:
    """An API prompt under construction: `add` returns the node id; link to output n as [id, n]."""

    def __init__(self):
        self.nodes = {}

    def add(self, class_type: str, title: str, **inputs) -> str:
        node_id = str(len(self.nodes) + 1)
        self.nodes[node_id] = {"inputs": inputs, "class_type": class_type, "_meta": {"title": title}}
        return node_id


# --- shared parts ----------------------------------------------------------------------

def checkpoint_and_prompts(p: Prompt, positive: str) -> tuple[str, str, str]:
    """Checkpoint, positive and negative prompt: (checkpoint id, positive id, negative id)."""
    ckpt = p.add("CheckpointLoaderSimple", "Load Checkpoint", ckpt_name=CHECKPOINT)
    pos = p.add("CLIPTextEncode", "Positive prompt", text=positive, clip=[ckpt, 1])
    neg = p.add("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=[ckpt, 1])
    return ckpt, pos, neg


def inject(p: Prompt, model: list, motion: list, title="Inject into Model", context=None,
           adapter="none", alpha=1.0) -> str:
    extra = {} if context is None else {"context_options": context}
    return p.add("AnimateDiffInjectIntoModel", title, model=model, motion_model=motion,
                 beta_schedule="autoselect", motion_scale=1.0, effect=1.0, start_percent=0.0, end_percent=1.0,
                 domain_adapter=adapter, adapter_alpha=alpha, **extra)


def sample(p: Prompt, model: list, positive: list, negative: list, latent: list, title="KSampler") -> str:
    return p.add("KSampler", title, model=model, seed=123456, steps=20, cfg=7.5, sampler_name="dpmpp_2m",
                 scheduler="karras", positive=positive, negative=negative, latent_image=latent, denoise=1.0)


def video_combine(p: Prompt, images: list, prefix: str, title="Video Combine") -> str:
    return p.add("AnimateDiffVideoCombine", title, images=images, frame_rate=8.0, loop_count=0,
                 filename_prefix=f"AnimateDiff/{prefix}", format="video/h264-mp4", pingpong=False,
                 save_output=True, crf=19, pix_fmt="auto", webp_quality=90, webp_lossless=False,
                 prores_profile="auto")


def latent(p: Prompt, frames: int, title="Frames (batch size = frame count)") -> str:
    return p.add("EmptyLatentImage", title, width=512, height=512, batch_size=frames)


def animate(p: Prompt, positive: str, frames: int, prefix: str, motion_file=MOTION_V2, context=None) -> Prompt:
    """The common chain: checkpoint -> motion module -> inject -> KSampler -> decode -> Video Combine."""
    ckpt, pos, neg = checkpoint_and_prompts(p, positive)
    motion = p.add("AnimateDiffLoadMotionModule", "Load Motion Module", model_name=motion_file)
    model = inject(p, [ckpt, 0], [motion, 0], context=context)
    sampled = sample(p, [model, 0], [pos, 0], [neg, 0], [latent(p, frames), 0])
    decoded = p.add("VAEDecode", "VAE Decode", samples=[sampled, 0], vae=[ckpt, 2])
    video_combine(p, [decoded, 0], prefix)
    return p


# --- the workflows ---------------------------------------------------------------------

def txt2vid() -> dict:
    return animate(Prompt(), "a red fox running through a snowy forest, cinematic lighting, highly detailed",
                   16, "txt2vid").nodes


def motionlora() -> dict:
    p = Prompt()
    ckpt, pos, neg = checkpoint_and_prompts(p, "a lighthouse on a cliff at sunset, waves crashing, highly detailed")
    motion = p.add("AnimateDiffLoadMotionModule", "Load Motion Module", model_name=MOTION_V2)
    zoom = p.add("AnimateDiffApplyMotionLoRA", "MotionLoRA: zoom in", motion_model=[motion, 0],
                 lora_name=ZOOM_IN, strength=0.8)
    pan = p.add("AnimateDiffApplyMotionLoRA", "MotionLoRA: pan left (added to the zoom)", motion_model=[zoom, 0],
                lora_name=PAN_LEFT, strength=0.6)
    model = inject(p, [ckpt, 0], [pan, 0])
    sampled = sample(p, [model, 0], [pos, 0], [neg, 0], [latent(p, 16), 0])
    decoded = p.add("VAEDecode", "VAE Decode", samples=[sampled, 0], vae=[ckpt, 2])
    video_combine(p, [decoded, 0], "motionlora")
    return p.nodes


def controlnet_depth() -> dict:
    p = Prompt()
    ckpt, pos, neg = checkpoint_and_prompts(p, "a knight in shining armour walking through a castle hall, detailed")
    depth = p.add("AnimateDiffLoadFrames", f"Depth frames ({DEPTH_VIDEO} in ComfyUI/input, or a folder in path)",
                  video=DEPTH_VIDEO, frame_cap=32, skip_first=0, every_nth=1, width=512, height=512, path="")
    controlnet = p.add("ControlNetLoader", "Load ControlNet (depth)", control_net_name=DEPTH_CONTROLNET)
    applied = p.add("ControlNetApplyAdvanced", "Apply ControlNet (one depth frame per animation frame)",
                    positive=[pos, 0], negative=[neg, 0], control_net=[controlnet, 0], image=[depth, 0],
                    strength=0.8, start_percent=0.0, end_percent=1.0)
    context = p.add("AnimateDiffContextOptions", "Context Options (each window gets its own depth frames)",
                    context_length=16, context_overlap=4, context_stride=1, schedule="static", closed_loop=False,
                    fuse_method="pyramid", freenoise=False)
    motion = p.add("AnimateDiffLoadMotionModule", "Load Motion Module", model_name=MOTION_V2)
    model = inject(p, [ckpt, 0], [motion, 0], context=[context, 0])
    frames = p.add("EmptyLatentImage", "Frames (batch size = depth frame count)", width=512, height=512,
                   batch_size=[depth, 1])
    sampled = sample(p, [model, 0], [applied, 0], [applied, 1], [frames, 0])
    decoded = p.add("VAEDecode", "VAE Decode", samples=[sampled, 0], vae=[ckpt, 2])
    video_combine(p, [decoded, 0], "controlnet_depth")
    return p.nodes


def long_context() -> dict:
    p = Prompt()
    context = p.add("AnimateDiffContextOptions", "Context Options (closed loop: the end flows into the start)",
                    context_length=16, context_overlap=4, context_stride=1, schedule="uniform", closed_loop=True,
                    fuse_method="pyramid", freenoise=False)
    return animate(p, "koi fish swimming in a pond, lily pads, top view, seamless loop, highly detailed",
                   64, "long_context", context=[context, 0]).nodes


def domain_adapter() -> dict:
    p = Prompt()
    ckpt, pos, neg = checkpoint_and_prompts(p, "a girl with an umbrella walking in the rain, city street at night")
    motion = p.add("AnimateDiffLoadMotionModule", "Load Motion Module (v3)", model_name=MOTION_V3)
    frames = latent(p, 16)
    halves = []
    for alpha, side in ((1.0, "left"), (0.5, "right")):
        model = inject(p, [ckpt, 0], [motion, 0], title=f"Inject, domain adapter alpha {alpha} ({side})",
                       adapter=DOMAIN_ADAPTER, alpha=alpha)
        sampled = sample(p, [model, 0], [pos, 0], [neg, 0], [frames, 0], title=f"KSampler (alpha {alpha})")
        halves.append(p.add("VAEDecode", f"VAE Decode (alpha {alpha})", samples=[sampled, 0], vae=[ckpt, 2]))
    stitched = p.add("ImageStitch", "Side by side: alpha 1.0 left, 0.5 right", image1=[halves[0], 0],
                     direction="right", match_image_size=True, spacing_width=0, spacing_color="white",
                     image2=[halves[1], 0])
    video_combine(p, [stitched, 0], "domain_adapter_1.0_vs_0.5")
    return p.nodes


def prompt_travel() -> dict:
    p = Prompt()
    ckpt = p.add("CheckpointLoaderSimple", "Load Checkpoint", ckpt_name=CHECKPOINT)
    frames = latent(p, 48)
    travel = p.add("AnimateDiffPromptSchedule", "Prompt Schedule (one prompt per keyframe)", clip=[ckpt, 1],
                   schedule=SEASONS, frames=48, interpolation="linear", prepend="a cottage by a lake, wide shot",
                   append="highly detailed, cinematic lighting", latent=[frames, 0])
    neg = p.add("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=[ckpt, 1])
    context = p.add("AnimateDiffContextOptions", "Context Options (FreeNoise: windows agree, no seams)",
                    context_length=16, context_overlap=4, context_stride=1, schedule="static", closed_loop=False,
                    fuse_method="pyramid", freenoise=True)
    motion = p.add("AnimateDiffLoadMotionModule", "Load Motion Module", model_name=MOTION_V2)
    model = inject(p, [ckpt, 0], [motion, 0], context=[context, 0])
    sampled = sample(p, [model, 0], [travel, 0], [neg, 0], [frames, 0])
    decoded = p.add("VAEDecode", "VAE Decode", samples=[sampled, 0], vae=[ckpt, 2])
    video_combine(p, [decoded, 0], "prompt_travel")
    return p.nodes


def train_motionlora() -> dict:
    p = Prompt()
    ckpt = p.add("CheckpointLoaderSimple", "Load Checkpoint", ckpt_name=CHECKPOINT)
    stills = p.add("AnimateDiffLoadFrames", f"Your images ({STILLS_FOLDER} in ComfyUI/input)", video=STILLS_FOLDER,
                   frame_cap=0, skip_first=0, every_nth=1, width=512, height=0, path="")
    clips = p.add("AnimateDiffCameraMotionClips", "Camera Motion Clips (one clip per image)", images=[stills, 0],
                  motion="zoom in", frames=16, strength=0.3, width=256, height=256)
    p.add("PreviewImage", "Preview: first, middle and last frame of each clip", images=[clips, 2])
    caption = p.add("CLIPTextEncode", "Caption of the clips", text="a photo, the camera slowly zooms in",
                    clip=[ckpt, 1])
    motion = p.add("AnimateDiffLoadMotionModule", "Load Motion Module", model_name=MOTION_V2)
    trained = p.add("AnimateDiffTrainMotionLoRA", "Train MotionLoRA (saved to models/animatediff_motion_lora)",
                    model=[ckpt, 0], vae=[ckpt, 2], positive=[caption, 0], motion_model=[motion, 0],
                    clips=[clips, 0], frames_per_clip=[clips, 1], rank=64, steps=500, learning_rate=5e-4,
                    batch_size=1, seed=0, gradient_checkpointing=True, lora_name="my_zoom_in")
    p.add("PreviewImage", "Loss curve", images=[trained, 1])
    pos = p.add("CLIPTextEncode", "Positive prompt", text="a mountain village at dawn, mist, highly detailed",
                clip=[ckpt, 1])
    neg = p.add("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=[ckpt, 1])
    model = inject(p, [ckpt, 0], [trained, 0], title="Inject into Model (the new MotionLoRA applied)")
    sampled = sample(p, [model, 0], [pos, 0], [neg, 0], [latent(p, 16), 0])
    decoded = p.add("VAEDecode", "VAE Decode", samples=[sampled, 0], vae=[ckpt, 2])
    video_combine(p, [decoded, 0], "train_motionlora")
    return p.nodes


# The groups an artist sees, top to bottom; checkpoint, latent and sampler stay ungrouped.
BANDS = [
    ("Prompts", {"CLIPTextEncode", "AnimateDiffPromptSchedule"}),
    ("Motion", {"AnimateDiffLoadMotionModule", "AnimateDiffApplyMotionLoRA", "AnimateDiffInjectIntoModel",
                "AnimateDiffContextOptions", "AnimateDiffValueSchedule"}),
    ("ControlNet", {"ControlNetLoader", "ControlNetApplyAdvanced", "AnimateDiffLoadFrames"}),
    ("Output", {"VAEDecode", "AnimateDiffVideoCombine", "ImageStitch"}),
]
# Training has its own groups: Load Frames reads the training images there, not ControlNet hints.
TRAINING_BANDS = [
    ("Training clips", {"AnimateDiffLoadFrames", "AnimateDiffCameraMotionClips"}),
    ("Training", {"AnimateDiffLoadMotionModule", "AnimateDiffTrainMotionLoRA"}),
    ("Prompts", {"CLIPTextEncode"}),
    ("Output", {"AnimateDiffInjectIntoModel", "VAEDecode", "AnimateDiffVideoCombine", "PreviewImage"}),
]
FILES = (f"Put your SD1.5 checkpoint in `models/checkpoints` and `{MOTION_V2}` in `models/animatediff_models`, "
         "then pick them in the loaders.")
NOTES = {
    "txt2vid": "**Text to video.** The motion module turns the checkpoint into an animation model: 16 frames "
               "(the latent batch size) of one prompt.\n\n" + FILES,
    "motionlora": "**Camera motion with MotionLoRAs.** A zoom-in and a pan-left MotionLoRA, each at its own "
                  "strength, add up on the motion module.\n\n" + FILES + f" MotionLoRAs (`{ZOOM_IN}`, `{PAN_LEFT}`)"
                  " go in `models/animatediff_motion_lora`.",
    "controlnet_depth": "**Depth ControlNet over 32 frames.** Each depth frame conditions its own animation frame, "
                        "also across context windows of 16.\n\n" + FILES + f" `{DEPTH_CONTROLNET}` goes in "
                        f"`models/controlnet`; put `{DEPTH_VIDEO}` in ComfyUI's `input` folder (or a folder of depth "
                        "images in Load Frames' `path`).",
    "long_context": "**A 64-frame seamless loop.** Context Options sample it in windows of 16 that wrap around "
                    "from the last frame to the first.\n\n" + FILES,
    "domain_adapter": "**The v3 domain adapter at two strengths, side by side.** Alpha 1.0 (left) and 0.5 "
                      f"(right).\n\nPut `{MOTION_V3}` in `models/animatediff_models` and `{DOMAIN_ADAPTER}` in "
                      "`models/loras`, your SD1.5 checkpoint in `models/checkpoints`.",
    "prompt_travel": "**Prompt travel through four seasons.** The Prompt Schedule gives every frame its own prompt, "
                     "blended between keyframes; 48 frames in windows of 16 with FreeNoise.\n\n" + FILES,
    "train_motionlora": "**Train your own camera motion.** A virtual camera zooms into each of your images; "
                        "Train MotionLoRA teaches the motion module that move, saves the MotionLoRA and samples "
                        "16 frames with it.\n\n" + FILES + f" Put 20-50 images in a folder `{STILLS_FOLDER}` in "
                        "ComfyUI's `input` folder. The MotionLoRA is saved as "
                        "`models/animatediff_motion_lora/my_zoom_in_00001.safetensors`.",
}

WORKFLOWS = {
    "txt2vid": txt2vid,
    "motionlora": motionlora,
    "controlnet_depth": controlnet_depth,
    "long_context": long_context,
    "domain_adapter": domain_adapter,
    "prompt_travel": prompt_travel,
    "train_motionlora": train_motionlora,
}
BANDS_OF = {"train_motionlora": TRAINING_BANDS}  # the others: BANDS


# --- files -----------------------------------------------------------------------------

def as_json(data) -> str:
    return json.dumps(data, indent=2) + "\n"


def load_schemas() -> dict:
    return json.loads(SCHEMAS_FILE.read_text(encoding="utf-8"))


def used_node_types() -> list[str]:
    return sorted({node["class_type"] for build in WORKFLOWS.values() for node in build().values()})


# What the UI <-> API conversions read of a node's schema: names, order, types, defaults and
# the options that add or hide widgets. Everything else (help texts, ranges, choice lists,
# flags) differs between host releases and machines without changing a workflow file.
SCHEMA_KEYS = ("input", "input_order", "output", "output_is_list", "output_name", "name", "display_name",
               "category", "output_node")
WIDGET_OPTION_KEYS = ("default", "control_after_generate", "forceInput", "defaultInput", "multiline",
                      "image_upload", "video_upload")


def portable_spec(spec) -> list:
    """``[type, options]`` in one spelling for every release: a combo is "COMBO" with its first
    choice as the default (0.8 writes some combos as ``["COMBO", {"options": [...]}]``)."""
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    choices = kind if isinstance(kind, list) else options.get("options")
    portable = {k: options[k] for k in WIDGET_OPTION_KEYS if k in options}
    if choices is not None:
        kind = "COMBO"
        if "default" not in portable and choices:
            portable["default"] = choices[0]
    return [kind, portable]


def portable_schema(class_type: str, entry: dict) -> dict:
    """An /object_info entry as the workflow conversions read it, the same on every host release
    and machine (file lists, the pack's folder name and help texts left out)."""
    entry = {key: json.loads(json.dumps(entry[key])) for key in SCHEMA_KEYS if key in entry}
    for section_name, section in entry.get("input", {}).items():
        entry["input"][section_name] = {name: portable_spec(spec) for name, spec in section.items()}
        for name, spec in entry["input"][section_name].items():
            if (class_type, name) in FILE_CHOICES:
                spec[1].pop("default", None)  # the first file in the user's folder
    return entry


def portable_schemas(object_info: dict) -> dict:
    missing = [t for t in used_node_types() if t not in object_info]
    if missing:
        raise SystemExit(f"the server lacks {', '.join(missing)}: install this pack in it (and update ComfyUI)")
    return {t: portable_schema(t, object_info[t]) for t in used_node_types()}


def expected_files(schemas: dict) -> dict:
    files = {}
    for name, build in WORKFLOWS.items():
        api = build()
        files[API_DIR / f"{name}.api.json"] = as_json(api)
        files[HERE / f"{name}.json"] = as_json(api_to_ui(api, schemas, note=NOTES[name], bands=BANDS_OF.get(name, BANDS)))
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare with the files on disk")
    parser.add_argument("--refresh", metavar="URL", help="read node schemas from this running ComfyUI first")
    args = parser.parse_args(argv)
    if args.refresh:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the server is the user's own
        with direct.open(args.refresh.rstrip("/") + "/object_info", timeout=60) as response:
            SCHEMAS_FILE.write_text(as_json(portable_schemas(json.load(response))), encoding="utf-8")
    files = expected_files(load_schemas())
    if args.check:
        stale = [p.name for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python workflows/build_workflows.py", file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
