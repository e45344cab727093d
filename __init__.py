"""AnimateDiff for ComfyUI: motion modules, MotionLoRAs, context windows and video output.

ComfyUI imports this package from custom_nodes/ and reads the mappings below.
"""

import importlib.util

# `python -m <pack>` (the command line, __main__.py) imports this package outside ComfyUI,
# where the nodes cannot load: register them only where ComfyUI's modules are importable.
if importlib.util.find_spec("folder_paths") is not None:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
