"""The ComfyUI features the pack relies on, checked once when the pack is imported. A host release that renamed
or removed one still loads the pack; the nodes that need the missing piece fail with a message naming the ComfyUI
version and the piece, instead of a TypeError in the middle of sampling."""

import importlib
import inspect
import logging

from ..animatediff_core import MotionModelError

log = logging.getLogger("AnimateDiff")

TESTED_RELEASES = ("0.3.64", "0.8.0")

# feature: the "module:attribute.path" pieces it needs (all must exist).
FEATURES = {
    "sampling wrappers": [
        "comfy.patcher_extension:WrappersMP.OUTER_SAMPLE",
        "comfy.patcher_extension:WrappersMP.PREPARE_SAMPLING",
        "comfy.patcher_extension:WrappersMP.CALC_COND_BATCH",
        "comfy.model_patcher:ModelPatcher.add_wrapper_with_key",
        "comfy.model_patcher:ModelPatcher.remove_wrappers_with_key",
    ],
    "model injections": [
        "comfy.patcher_extension:PatcherInjection",
        "comfy.model_patcher:ModelPatcher.set_injections",
        "comfy.model_patcher:ModelPatcher.set_additional_models",
        "comfy.model_patcher:ModelPatcher.set_model_forward_timestep_embed_patch",
        "comfy.model_patcher:ModelPatcher.eject_model",
    ],
    "LoRA weight adapter": ["comfy.weight_adapter.lora:LoRAAdapter.calculate_weight"],
    "LCM sampling": [
        "comfy_extras.nodes_model_advanced:LCM",
        "comfy_extras.nodes_model_advanced:ModelSamplingDiscreteDistilled",
    ],
    "ControlNet hints": ["comfy.controlnet:ControlBase"],
    "model loading for training": [
        "comfy.model_management:load_models_gpu",
        "comfy.model_management:throw_exception_if_processing_interrupted",
        "comfy.model_base:BaseModel.process_latent_in",
        "comfy.ldm.modules.diffusionmodules.openaimodel:ResBlock",
        "comfy.ldm.modules.attention:SpatialTransformer",
    ],
}
# Attributes of every ControlNet object that per-window hint slicing reads and sets.
CONTROL_ATTRIBUTES = ("cond_hint_original", "cond_hint", "previous_controlnet")


def lookup(piece: str):
    """The object ``"module:attr.path"`` names; raises ImportError or AttributeError."""
    module_name, _, path = piece.partition(":")
    found = importlib.import_module(module_name)
    for name in path.split("."):
        found = getattr(found, name)
    return found


def host_version() -> str:
    try:
        return lookup("comfyui_version:__version__")
    except (ImportError, AttributeError):
        return "(unknown version)"


def _problems() -> dict[str, str]:
    problems = {}
    for feature, pieces in FEATURES.items():
        for piece in pieces:
            try:
                lookup(piece)
            except (ImportError, AttributeError) as error:
                problems[feature] = f"{piece} is missing ({type(error).__name__}: {error})"
                break
    if "LoRA weight adapter" not in problems:
        # The pack builds the host's adapter as LoRAAdapter(loaded_keys, weights), as the host itself does.
        parameters = list(inspect.signature(lookup("comfy.weight_adapter.lora:LoRAAdapter")).parameters)
        if parameters[:2] != ["loaded_keys", "weights"]:
            problems["LoRA weight adapter"] = f"LoRAAdapter takes ({', '.join(parameters)}), not (loaded_keys, weights)"
    if "ControlNet hints" not in problems:
        missing = [a for a in CONTROL_ATTRIBUTES if not hasattr(lookup("comfy.controlnet:ControlBase")(), a)]
        if missing:
            problems["ControlNet hints"] = f"ControlBase has no {', '.join(missing)}"
    return problems


PROBLEMS = _problems()
for _feature, _problem in PROBLEMS.items():
    log.warning("AnimateDiff: ComfyUI %s: %s: %s", host_version(), _feature, _problem)


def require(feature: str, needed_for: str) -> None:
    """Raise a clear error if this ComfyUI lacks ``feature``."""
    problem = PROBLEMS.get(feature)
    if problem:
        raise MotionModelError(
            f"{needed_for} needs ComfyUI's {feature}, which this ComfyUI ({host_version()}) changed: {problem}. "
            f"The pack is tested with ComfyUI {' and '.join(TESTED_RELEASES)}: update the pack, or use one of those."
        )
