"""File (or state dict) -> MotionModel, detecting the family from the contents."""

from torch import nn

from .formats import MODULE_PREFIX, check_tensors, detect_layout
from .model import MotionModel, build_motion_model
from .tensor_files import read_tensors


def load_motion_model(source, groupnorm: str | None = None, ops=nn, dtype=None) -> MotionModel:
    """Load any AnimateDiff motion module (v1, v2, v3, AnimateLCM, SDXL beta, HotshotXL).

    ``source``: a path (.safetensors/.ckpt/.pth/.pt) or a state dict, in the
    original, diffusers or HotshotXL naming. ``groupnorm``: "per_frame" or
    "across_frames"; default is what the family was trained with. ``ops``: the
    module classes to build with (torch.nn, or a host's casting/offloading ops);
    ``dtype``: convert the weights on load (default: the file's).
    Raises MotionModelError naming the file for anything it cannot use.
    """
    tensors, name = read_tensors(source)
    layout, original = detect_layout(tensors, name)
    channels = check_tensors(original, layout, name)
    original = {k: v for k, v in original.items() if MODULE_PREFIX.match(k)}
    return build_motion_model(layout, original, channels, name, groupnorm, ops, dtype)
