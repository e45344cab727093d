"""AnimateDiff core: plain torch, no host imports.

The temporal transformer, checkpoint formats and loading, MotionLoRA and domain
adapter maths, the SD1.5 injection plan, noise schedules, context windows and
video encoding. Each module has one job and is tested alone.
"""

from .errors import MotionModelError
from .loader import load_motion_model
from .model import MotionModel
from .temporal import TemporalTransformer, sinusoidal_pe

__all__ = ["MotionModelError", "MotionModel", "TemporalTransformer", "load_motion_model", "sinusoidal_pe"]
