"""Tensor files: reading safetensors, or pickles loaded without executing code."""

import pickle
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

from .errors import MotionModelError

_WRAPPER_PREFIXES = re.compile(r"^(?:module\.|unet\.)+")


def read_tensors(source) -> tuple[dict[str, torch.Tensor], str]:
    """A flat ``{name: tensor}`` dict and a name for messages, from a path or a dict.

    Unwraps ``{"state_dict": ...}``, drops non-tensor entries and strips
    ``module.``/``unet.`` prefixes.
    """
    if isinstance(source, dict):
        return clean_state_dict(source), "<state dict>"
    path = Path(source)
    if not path.is_file():
        raise MotionModelError(f"{path}: no such file")
    return clean_state_dict(_read_file(path)), str(path)


def _read_file(path: Path) -> dict:
    with open(path, "rb") as f:
        head = f.read(8)
    # Sniff the content, not the extension: renamed files are common.
    if head[:2] != b"PK" and head[:1] != b"\x80":
        try:
            return load_file(path)
        except Exception as error:
            raise MotionModelError(
                f"{path}: cannot read it as safetensors or as a PyTorch checkpoint ({error}). "
                "The file is truncated or corrupt: download it again."
            ) from error
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise MotionModelError(
            f"{path}: the checkpoint holds Python objects other than tensors (possibly code), so it was not "
            "loaded: loading it could run that code. Use a .safetensors version from a source you trust."
        ) from error
    except Exception as error:
        raise MotionModelError(
            f"{path}: cannot read this PyTorch checkpoint ({error}). The file is truncated or corrupt: "
            "download it again."
        ) from error
    if not isinstance(loaded, dict):
        raise MotionModelError(f"{path}: expected a dict of tensors, found a {type(loaded).__name__}")
    return loaded


def clean_state_dict(raw: dict) -> dict[str, torch.Tensor]:
    while isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    return {_WRAPPER_PREFIXES.sub("", key): value for key, value in raw.items() if isinstance(value, torch.Tensor)}
