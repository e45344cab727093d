"""AnimateDiff core: plain torch, no host imports.

The temporal transformer, checkpoint formats and loading, MotionLoRA and domain
adapter maths, the SD1.5 injection plan, noise schedules, keyframe schedules and
context windows. Each module has one job and is tested alone. (Video files live
beside it, in ../video.)
"""

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
