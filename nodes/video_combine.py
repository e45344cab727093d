"""Video Combine: IMAGE frames -> a video or animated image with the workflow inside, shown in the node."""

from ..video.files import save_video
from ..video.formats import FORMATS, PRORES_PROFILES, RESTORES_WORKFLOW, EncodeSettings, format_availability
from . import host
from .widget_values import checks_numbers

PIX_FMTS = ["auto"] + sorted({p for f in FORMATS.values() for p in f.pix_fmts})


class AnimateDiffVideoCombine:
    DESCRIPTION = (
        "Writes the frames as a video or animated image through the ffmpeg that ships with imageio-ffmpeg "
        "(no system ffmpeg needed), with the prompt and workflow embedded. Dropping a webp, mp4, webm or mov "
        "file (or a PNG) on ComfyUI restores the workflow; ComfyUI cannot read it back from GIF or MKV, so "
        "drop the first-frame PNG saved beside every video instead. Shows an animated preview."
    )
    CATEGORY = "AnimateDiff"
    FUNCTION = "combine"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("video_path", "all_paths")
    OUTPUT_TOOLTIPS = ("Absolute path of the video file (the folder, for a PNG sequence).",
                       "Every file written, one absolute path per line (video, then first-frame PNG).")

    @classmethod
    def INPUT_TYPES(cls):
        missing = [f"{name}: {reason}" for name, reason in format_availability().items() if reason]
        kept = ", ".join(name for name in FORMATS if name in RESTORES_WORKFLOW)
        crf_formats = ", ".join(name for name, f in FORMATS.items() if f.crf_max)
        crf_ranges = ", ".join(f"{name} 0-{f.crf_max}" for name, f in FORMATS.items() if f.crf_max)
        pix_fmts = "; ".join(f"{name} {' / '.join(f.pix_fmts)}" for name, f in FORMATS.items())
        format_tip = (f"Container and codec. Dropped on ComfyUI, these restore the workflow: {kept}; for the others, "
                      "drop the first-frame PNG written beside the video. Every format is always listed; ") + (
            "not writable here: " + "; ".join(missing) if missing else "all of them can be written here.")
        return {
            "required": {
                "images": ("IMAGE", {"tooltip":
                    "The frames, in order. 4-channel images keep alpha where the format can."}),
                "frame_rate": ("FLOAT", {"default": 8.0, "min": 0.1, "max": 240.0, "step": 0.1, "tooltip":
                    "Frames per second of the output."}),
                "loop_count": ("INT", {"default": 0, "min": 0, "max": 100, "tooltip":
                    "Extra plays after the first; 0 = loop forever. GIF/WebP store it in the file; video formats "
                    "repeat the frames (0 plays once, the player decides on looping)."}),
                "filename_prefix": ("STRING", {"default": "AnimateDiff", "tooltip":
                    "File name, optionally with subfolders ('videos/cat'); a counter is added. Must stay inside the "
                    "output folder."}),
                "format": (list(FORMATS), {"default": "video/h264-mp4", "tooltip": format_tip}),
                "pingpong": ("BOOLEAN", {"default": False, "tooltip":
                    "Play forwards then backwards (without repeating the end frames) for a seamless loop."}),
                "save_output": ("BOOLEAN", {"default": True, "tooltip":
                    "On: save to the output folder. Off: write to the temp folder (preview only)."}),
                "crf": ("INT", {"default": 19, "min": 0, "max": 63, "tooltip":
                    f"Quality of {crf_formats} only (lower: better and bigger files); {crf_ranges}. A value outside "
                    "the chosen format's range stops with an error saying its range."}),
                "pix_fmt": (PIX_FMTS, {"default": "auto", "tooltip":
                    "Pixel format; 'auto' picks the most compatible one (with alpha when the frames have it). "
                    f"10/16-bit formats receive 16-bit frames. Each format takes: {pix_fmts}; any other stops with "
                    "an error listing them."}),
                "webp_quality": ("INT", {"default": 90, "min": 0, "max": 100, "tooltip": "WebP only: lossy quality."}),
                "webp_lossless": ("BOOLEAN", {"default": False, "tooltip": "WebP only: exact pixels, bigger file."}),
                "prores_profile": (list(PRORES_PROFILES), {"default": "auto", "tooltip":
                    "ProRes only: 'auto' is HQ, or 4444 when the frames have alpha."}),
            },
            "optional": {
                "audio": ("AUDIO", {"tooltip": "Muxed into mp4, mov, mkv and webm (first item of a batch), padded "
                                               "with silence or cut to the video's length."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    @checks_numbers
    def combine(self, images, frame_rate, loop_count, filename_prefix, format, pingpong, save_output, crf, pix_fmt,
                webp_quality, webp_lossless, prores_profile, audio=None, prompt=None, extra_pnginfo=None):
        metadata = {}
        if host.metadata_enabled():
            if prompt is not None:
                metadata["prompt"] = prompt
            metadata.update(extra_pnginfo or {})
        settings = EncodeSettings(crf=crf, pix_fmt=pix_fmt, webp_quality=webp_quality, webp_lossless=webp_lossless,
                                  prores_profile=prores_profile)
        saved = save_video(
            images, format, host.folder("output" if save_output else "temp"), filename_prefix, frame_rate=frame_rate,
            preview_dir=host.folder("temp"), settings=settings, loop_count=loop_count, pingpong=pingpong,
            metadata=metadata, audio=None if audio is None else (audio["waveform"][0], audio["sample_rate"]),
            on_frame=host.progress_bar(len(images)))
        written = [p for p in (saved.video, saved.first_frame) if p is not None]
        # "images" is what the frontend previews (a browser-playable file); the written files are
        # listed too, so API clients find a ProRes or PNG-sequence output, not only its preview.
        ui = {"images": [host.ui_file(saved.preview)], "animated": (True,),
              "animatediff_files": list(map(host.ui_file, written))}
        if saved.notes:  # what the format could not keep: shown on the node, and in the API's outputs
            host.show_text("\n".join(saved.notes))
            ui["text"] = list(saved.notes)
        return {"ui": ui, "result": (str(saved.video), "\n".join(map(str, written)))}

