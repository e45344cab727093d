"""The sample workflows' single source: each one written once, as an API prompt, below.

    python workflows/build_workflows.py            write <name>.json (UI) and api/<name>.api.json (API)
    python workflows/build_workflows.py --check    exit 1 if a file on disk differs from what it would write
    python workflows/build_workflows.py --refresh http://127.0.0.1:8188
                                                   re-read api/node_schemas.json from a running ComfyUI
                                                   (with this pack installed), then write the files
"""

import argparse
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for cli/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder, for ui_graph

from cli.workflow import MEDIA_UPLOAD_OPTIONS, spec_options, spec_type  # noqa: E402
from ui_graph import api_to_ui, combo_choices  # noqa: E402

HERE = Path(__file__).resolve().parent
# ComfyUI lists every .json directly in workflows/ as a template card: the API twins and schemas sit in api/.
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

FRAMES_TITLE = "Frames (batch size = frame count)"
NEGATIVE = "blurry, low quality, watermark, text, deformed"
SEASONS = ('0: "spring, cherry blossoms, green meadow"\n16: "summer, bright sun, tall grass"\n'
           '32: "autumn, red and orange leaves falling"\n-1: "winter, deep snow, frozen lake"')

# Inputs whose choices are files: stored without a default, so the schemas do not depend on whose files they saw.
FILE_CHOICES = {("CheckpointLoaderSimple", "ckpt_name"), ("ControlNetLoader", "control_net_name"),
                ("AnimateDiffLoadMotionModule", "model_name"), ("AnimateDiffApplyMotionLoRA", "lora_name"),
                ("AnimateDiffInjectIntoModel", "domain_adapter"), ("AnimateDiffLoadFrames", "video")}

# The groups an artist sees, top to bottom; checkpoint, latent and sampler stay ungrouped.
BANDS = [
    ("Prompts", {"CLIPTextEncode", "AnimateDiffPromptSchedule"}),
    ("Motion", {"AnimateDiffLoadMotionModule", "AnimateDiffApplyMotionLoRA", "AnimateDiffInjectIntoModel",
                "AnimateDiffContextOptions"}),
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


class Prompt(dict):
    """An API prompt under construction: `add` returns the new node's id; link to its output n as [id, n]."""

    def add(self, class_type: str, title: str, **inputs) -> str:
        node_id = str(len(self) + 1)
        self[node_id] = {"inputs": inputs, "class_type": class_type, "_meta": {"title": title}}
        return node_id


WORKFLOWS, NOTES, BANDS_OF = {}, {}, {}  # by sample name: its API prompt's builder, its note, its groups


def workflow(note: str, bands=BANDS):
    """Lists a sample under its function's name; the function adds the sample's nodes to an empty prompt."""
    def register(add_nodes):
        def build() -> Prompt:
            p = Prompt()
            add_nodes(p)
            return p
        name = add_nodes.__name__
        WORKFLOWS[name], NOTES[name], BANDS_OF[name] = build, note, bands
        return build
    return register


# --- shared parts ----------------------------------------------------------------------

def prompts(p: Prompt, positive: str, ckpt: str | None = None) -> tuple[str, list, list]:
    """The checkpoint (loaded here unless given), its positive and negative prompt: (its id, their links)."""
    ckpt = ckpt or p.add("CheckpointLoaderSimple", "Load Checkpoint", ckpt_name=CHECKPOINT)
    pos = p.add("CLIPTextEncode", "Positive prompt", text=positive, clip=[ckpt, 1])
    neg = p.add("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=[ckpt, 1])
    return ckpt, [pos, 0], [neg, 0]


def load_motion(p: Prompt, model_name=MOTION_V2, title="Load Motion Module") -> str:
    return p.add("AnimateDiffLoadMotionModule", title, model_name=model_name)


def context_options(p: Prompt, title: str, schedule="static", closed_loop=False, freenoise=False) -> list:
    return [p.add("AnimateDiffContextOptions", title, context_length=16, context_overlap=4, context_stride=1,
                  schedule=schedule, closed_loop=closed_loop, fuse_method="pyramid", freenoise=freenoise), 0]


def empty_latent(p: Prompt, frames, title=FRAMES_TITLE) -> list:
    return [p.add("EmptyLatentImage", title, width=512, height=512, batch_size=frames), 0]


def video_combine(p: Prompt, images: list, prefix: str) -> str:
    return p.add("AnimateDiffVideoCombine", "Video Combine", images=images, frame_rate=8.0, loop_count=0,
                 filename_prefix=f"AnimateDiff/{prefix}", format="video/h264-mp4", pingpong=False,
                 save_output=True, crf=19, pix_fmt="auto", webp_quality=90, webp_lossless=False,
                 prores_profile="auto")


def render(p: Prompt, ckpt: str, motion: str, positive: list, negative: list, prefix: str | None, latent=None,
           frames=16, frames_title=FRAMES_TITLE, inject_title="Inject into Model", context=None, adapter="none",
           alpha=1.0, suffix="") -> str:
    """The spine every sample ends in: Inject into Model -> KSampler on `latent` (else on a new latent of
    `frames`) -> VAE Decode -> Video Combine saving as `prefix` (None: stop at the decode); the last node's id."""
    extra = {} if context is None else {"context_options": context}
    model = p.add("AnimateDiffInjectIntoModel", inject_title, model=[ckpt, 0], motion_model=[motion, 0],
                  beta_schedule="autoselect", motion_scale=1.0, effect=1.0, start_percent=0.0, end_percent=1.0,
                  domain_adapter=adapter, adapter_alpha=alpha, **extra)
    sampled = p.add("KSampler", f"KSampler{suffix}", model=[model, 0], seed=123456, steps=20, cfg=7.5,
                    sampler_name="dpmpp_2m", scheduler="karras", positive=positive, negative=negative,
                    latent_image=latent or empty_latent(p, frames, frames_title), denoise=1.0)
    decoded = p.add("VAEDecode", f"VAE Decode{suffix}", samples=[sampled, 0], vae=[ckpt, 2])
    return decoded if prefix is None else video_combine(p, [decoded, 0], prefix)


# --- the workflows ---------------------------------------------------------------------

@workflow("**Text to video.** The motion module turns the checkpoint into an animation model: 16 frames "
          "(the latent batch size) of one prompt.\n\n" + FILES)
def txt2vid(p: Prompt):
    ckpt, pos, neg = prompts(p, "a red fox running through a snowy forest, cinematic lighting, highly detailed")
    render(p, ckpt, load_motion(p), pos, neg, "txt2vid")


@workflow("**Camera motion with MotionLoRAs.** A zoom-in and a pan-left MotionLoRA, each at its own strength, "
          f"add up on the motion module.\n\n{FILES} MotionLoRAs (`{ZOOM_IN}`, `{PAN_LEFT}`) go in "
          "`models/animatediff_motion_lora`.")
def motionlora(p: Prompt):
    ckpt, pos, neg = prompts(p, "a lighthouse on a cliff at sunset, waves crashing, highly detailed")
    zoom = p.add("AnimateDiffApplyMotionLoRA", "MotionLoRA: zoom in", motion_model=[load_motion(p), 0],
                 lora_name=ZOOM_IN, strength=0.8)
    pan = p.add("AnimateDiffApplyMotionLoRA", "MotionLoRA: pan left (added to the zoom)", motion_model=[zoom, 0],
                lora_name=PAN_LEFT, strength=0.6)
    render(p, ckpt, pan, pos, neg, "motionlora")


@workflow("**Depth ControlNet over 32 frames.** Each depth frame conditions its own animation frame, also across "
          f"context windows of 16.\n\n{FILES} `{DEPTH_CONTROLNET}` goes in `models/controlnet`; put `{DEPTH_VIDEO}` "
          "in ComfyUI's `input` folder (or a folder of depth images in Load Frames' `path`).")
def controlnet_depth(p: Prompt):
    ckpt, pos, neg = prompts(p, "a knight in shining armour walking through a castle hall, detailed")
    depth = p.add("AnimateDiffLoadFrames", f"Depth frames ({DEPTH_VIDEO} in ComfyUI/input, or a folder in path)",
                  video=DEPTH_VIDEO, frame_cap=32, skip_first=0, every_nth=1, width=512, height=512, path="")
    controlnet = p.add("ControlNetLoader", "Load ControlNet (depth)", control_net_name=DEPTH_CONTROLNET)
    applied = p.add("ControlNetApplyAdvanced", "Apply ControlNet (one depth frame per animation frame)",
                    positive=pos, negative=neg, control_net=[controlnet, 0], image=[depth, 0],
                    strength=0.8, start_percent=0.0, end_percent=1.0)
    context = context_options(p, "Context Options (each window gets its own depth frames)")
    render(p, ckpt, load_motion(p), [applied, 0], [applied, 1], "controlnet_depth", context=context,
           frames=[depth, 1], frames_title="Frames (batch size = depth frame count)")


@workflow("**A 64-frame seamless loop.** Context Options sample it in windows of 16 that wrap around from the last "
          "frame to the first.\n\n" + FILES)
def long_context(p: Prompt):
    context = context_options(p, "Context Options (closed loop: the end flows into the start)", schedule="uniform",
                              closed_loop=True)
    ckpt, pos, neg = prompts(p, "koi fish swimming in a pond, lily pads, top view, seamless loop, highly detailed")
    render(p, ckpt, load_motion(p), pos, neg, "long_context", frames=64, context=context)


@workflow("**The v3 domain adapter at two strengths, side by side.** Alpha 1.0 (left) and 0.5 (right).\n\n"
          f"Put `{MOTION_V3}` in `models/animatediff_models` and `{DOMAIN_ADAPTER}` in `models/loras`, your SD1.5 "
          "checkpoint in `models/checkpoints`.")
def domain_adapter(p: Prompt):
    ckpt, pos, neg = prompts(p, "a girl with an umbrella walking in the rain, city street at night")
    motion = load_motion(p, MOTION_V3, "Load Motion Module (v3)")
    frames = empty_latent(p, 16)
    halves = []
    for alpha, side in ((1.0, "left"), (0.5, "right")):
        halves.append(render(p, ckpt, motion, pos, neg, None, latent=frames, adapter=DOMAIN_ADAPTER, alpha=alpha,
                             inject_title=f"Inject, domain adapter alpha {alpha} ({side})", suffix=f" (alpha {alpha})"))
    stitched = p.add("ImageStitch", "Side by side: alpha 1.0 left, 0.5 right", image1=[halves[0], 0],
                     direction="right", match_image_size=True, spacing_width=0, spacing_color="white",
                     image2=[halves[1], 0])
    video_combine(p, [stitched, 0], "domain_adapter_1.0_vs_0.5")


@workflow("**Prompt travel through four seasons.** The Prompt Schedule gives every frame its own prompt, blended "
          "between keyframes; 48 frames in windows of 16 with FreeNoise.\n\n" + FILES)
def prompt_travel(p: Prompt):
    ckpt = p.add("CheckpointLoaderSimple", "Load Checkpoint", ckpt_name=CHECKPOINT)
    frames = empty_latent(p, 48)
    travel = p.add("AnimateDiffPromptSchedule", "Prompt Schedule (one prompt per keyframe)", clip=[ckpt, 1],
                   schedule=SEASONS, frames=48, interpolation="linear", prepend="a cottage by a lake, wide shot",
                   append="highly detailed, cinematic lighting", latent=frames)
    neg = p.add("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=[ckpt, 1])
    context = context_options(p, "Context Options (FreeNoise: windows agree, no seams)", freenoise=True)
    render(p, ckpt, load_motion(p), [travel, 0], [neg, 0], "prompt_travel", latent=frames, context=context)


@workflow("**Train your own camera motion.** A virtual camera zooms into each of your images; Train MotionLoRA "
          "teaches the motion module that move, saves the MotionLoRA and samples 16 frames with it.\n\n"
          f"{FILES} Put 20-50 images in a folder `{STILLS_FOLDER}` in ComfyUI's `input` folder. The MotionLoRA is "
          "saved as `models/animatediff_motion_lora/my_zoom_in_00001.safetensors`.", TRAINING_BANDS)
def train_motionlora(p: Prompt):
    ckpt = p.add("CheckpointLoaderSimple", "Load Checkpoint", ckpt_name=CHECKPOINT)
    stills = p.add("AnimateDiffLoadFrames", f"Your images ({STILLS_FOLDER} in ComfyUI/input)", video=STILLS_FOLDER,
                   frame_cap=0, skip_first=0, every_nth=1, width=512, height=0, path="")
    clips = p.add("AnimateDiffCameraMotionClips", "Camera Motion Clips (one clip per image)", images=[stills, 0],
                  motion="zoom in", frames=16, strength=0.3, width=256, height=256)
    p.add("PreviewImage", "Preview: first, middle and last frame of each clip", images=[clips, 2])
    caption = p.add("CLIPTextEncode", "Caption of the clips", text="a photo, the camera slowly zooms in",
                    clip=[ckpt, 1])
    trained = p.add("AnimateDiffTrainMotionLoRA", "Train MotionLoRA (saved to models/animatediff_motion_lora)",
                    model=[ckpt, 0], vae=[ckpt, 2], positive=[caption, 0], motion_model=[load_motion(p), 0],
                    clips=[clips, 0], frames_per_clip=[clips, 1], rank=64, steps=500, learning_rate=5e-4,
                    batch_size=1, seed=0, gradient_checkpointing=True, lora_name="my_zoom_in")
    p.add("PreviewImage", "Loss curve", images=[trained, 1])
    _, pos, neg = prompts(p, "a mountain village at dawn, mist, highly detailed", ckpt)
    render(p, ckpt, trained, pos, neg, "train_motionlora",
           inject_title="Inject into Model (the new MotionLoRA applied)")


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
                      *MEDIA_UPLOAD_OPTIONS)


def portable_spec(spec, lists_files: bool) -> list:
    """``[type, options]`` in one spelling for every release: a combo is "COMBO" (0.8 writes some as
    ``["COMBO", {"options": [...]}]``) defaulting to its first choice, unless the choices are the user's files."""
    options, choices = spec_options(spec), combo_choices(spec)
    portable = {k: options[k] for k in WIDGET_OPTION_KEYS if k in options}
    if lists_files:
        portable.pop("default", None)
    elif choices and "default" not in portable:
        portable["default"] = choices[0]
    return [spec_type(spec) if choices is None else "COMBO", portable]


def portable_schema(class_type: str, entry: dict) -> dict:
    """An /object_info entry as the workflow conversions read it, the same on every host release and machine."""
    portable = {key: entry[key] for key in SCHEMA_KEYS if key in entry}
    if "input" in entry:
        portable["input"] = {section: {name: portable_spec(spec, (class_type, name) in FILE_CHOICES)
                                       for name, spec in specs.items()} for section, specs in entry["input"].items()}
    return portable


def expected_files(schemas: dict) -> dict:
    files = {}
    for name, build in WORKFLOWS.items():
        api = build()
        files[API_DIR / f"{name}.api.json"] = as_json(api)
        files[HERE / f"{name}.json"] = as_json(api_to_ui(api, schemas, note=NOTES[name], bands=BANDS_OF[name]))
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare with the files on disk")
    parser.add_argument("--refresh", metavar="URL", help="read node schemas from this running ComfyUI first")
    args = parser.parse_args(argv)
    if args.refresh:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the server is the user's own
        with direct.open(args.refresh.rstrip("/") + "/object_info", timeout=60) as response:
            object_info = json.load(response)
        missing = [t for t in used_node_types() if t not in object_info]
        if missing:
            raise SystemExit(f"the server lacks {', '.join(missing)}: install this pack in it (and update ComfyUI)")
        schemas = {t: portable_schema(t, object_info[t]) for t in used_node_types()}
        SCHEMAS_FILE.write_text(as_json(schemas), encoding="utf-8")
    files = expected_files(load_schemas())
    if args.check:
        stale = [p.name for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python workflows/build_workflows.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
