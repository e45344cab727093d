"""Load Frames: a video, animated image or folder of images -> IMAGE frames (e.g. ControlNet depth maps)."""

import os

import torch

from ..video.errors import VideoEncodeError, VideoError
from ..video.files import FOLDER_FRAME_RATE, folder_images, read_video_frames
from . import host
from .widget_values import checks_numbers

FOLDER_SUFFIX = "/"  # how a subfolder of images shows in the list


def input_choices() -> list[str]:
    """Videos and (animated) images in ComfyUI's input folder, then its subfolders that hold images."""
    root = host.folder("input")
    entries = sorted(os.listdir(root))
    files = [e for e in entries if os.path.isfile(os.path.join(root, e))]
    folders = [e + FOLDER_SUFFIX for e in entries
               if os.path.isdir(os.path.join(root, e)) and folder_images(os.path.join(root, e))]
    return host.media_files(files) + folders


def frame_source(video: str, path: str | None) -> tuple[str, str, str | None]:
    """(the input it comes from, the file or folder to read, why it cannot be read or None): a non-empty `path`
    wins over `video`."""
    if path and path.strip():
        input_name, location = "path", os.path.expanduser(path.strip())
        hint = "give an absolute path to a video or a folder of images"
    else:
        input_name, location = "video", host.input_path(video.removesuffix(FOLDER_SUFFIX))
        hint = "upload it, or put it (or a folder of images) in ComfyUI's input folder"
    problem = None if os.path.exists(location) else f"{input_name}: '{location}' does not exist: {hint}"
    return input_name, location, problem


class LoadFrames:
    DESCRIPTION = (
        "Loads frames from a video, an animated image or a folder of images (sorted by name, played at "
        f"{FOLDER_FRAME_RATE:g} fps), e.g. depth maps for ControlNet: one frame per animation frame. "
        "Decoded by the same bundled ffmpeg that Video Combine uses."
    )
    CATEGORY = "AnimateDiff"
    RETURN_TYPES = ("IMAGE", "INT", "FLOAT")
    RETURN_NAMES = ("images", "frame_count", "fps")
    OUTPUT_TOOLTIPS = (
        "The frames (RGB).",
        "How many frames were loaded: use it as the latent batch size so frames and hints line up.",
        "Frame rate of the loaded frames (the source's, divided by every_nth).",
    )
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video": (input_choices(), {"video_upload": True, "tooltip":
                    "A video or animated image in ComfyUI's input folder, or a subfolder of images (ending in /)."}),
                "frame_cap": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip":
                    "Most frames to load (after skipping); 0 = all."}),
                "skip_first": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip":
                    "Frames to drop from the start."}),
                "every_nth": ("INT", {"default": 1, "min": 1, "max": 1000, "tooltip":
                    "Keep one frame in n (2 halves the frame rate)."}),
                "width": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 8, "tooltip":
                    "Resize to this width; 0 keeps it (or follows the aspect ratio when height is set)."}),
                "height": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 8, "tooltip":
                    "Resize to this height; 0 keeps it (or follows the aspect ratio when width is set)."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip":
                    "Overrides video: an absolute path to a video, animated image or folder of images."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, video, path=None):
        # Taking `video` here also lets a `path` run without `video` naming a listed file.
        return frame_source(video, path)[2] or True

    @classmethod
    def IS_CHANGED(cls, video, path=None, **_other_inputs):
        """Reload when the file (or a folder's images) changed on disk under the same name."""
        _, location, _ = frame_source(video, path)
        if os.path.isdir(location):
            return str([(p.name, p.stat().st_mtime) for p in folder_images(location)])
        return os.path.getmtime(location) if os.path.exists(location) else ""

    @checks_numbers
    def load(self, video, frame_cap, skip_first, every_nth, width, height, path=None):
        input_name, location, problem = frame_source(video, path)
        if problem:
            raise VideoError(problem)
        size = (width or -1, height or -1) if width or height else None
        try:
            with host.blame(input_name):
                decoded = read_video_frames(location, max_frames=frame_cap, skip_first=skip_first,
                                            every_nth=every_nth, size=size)
        except VideoEncodeError as error:
            raise VideoError(f"{input_name}: cannot read '{location}': it is not a video or image that "
                                   f"ffmpeg can decode (damaged or unsupported). {error}") from error
        if len(decoded.frames) == 0:
            reason = ("it holds no frames (empty or damaged)" if skip_first == 0
                      else f"no frames are left after skip_first {skip_first}: lower it")
            raise VideoError(f"{input_name}: '{location}': {reason}")
        images = torch.from_numpy(decoded.frames).float() / 255
        text = f"{len(images)} frames, {images.shape[2]}x{images.shape[1]}, {decoded.fps:g} fps"
        return {"ui": {"text": [text]}, "result": (images, len(images), decoded.fps)}
