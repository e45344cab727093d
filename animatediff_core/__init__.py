"""AnimateDiff core: plain torch, no host imports. Each module has one job (said at its top) and is
tested alone; README's Development section maps the whole pack."""

from .errors import MotionModelError
from .injection import UnetBlock, plan_injection
from .model import MotionModel, load_motion_model
from .motion_lora import domain_adapter_factors, load_domain_adapter, load_motion_lora

__all__ = [
    "MotionModel",
    "MotionModelError",
    "UnetBlock",
    "domain_adapter_factors",
    "load_domain_adapter",
    "load_motion_lora",
    "load_motion_model",
    "plan_injection",
]
