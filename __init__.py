"""AnimateDiff for ComfyUI: motion modules, MotionLoRAs, context windows and video output.

ComfyUI imports this package from custom_nodes/ and reads the mappings below.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
