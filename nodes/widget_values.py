"""Number inputs checked against what their widgets promise, for values that skip the widgets.

API clients can send any JSON number. The host checks min/max only for inputs a node's
VALIDATE_INPUTS does not take, and never catches NaN (it passes every comparison), so
every pack node checks its numbers itself before it runs.
"""

import functools
import math

from ..animatediff_core import MotionModelError


def checks_numbers(method):
    """Decorate a node's FUNCTION: its INT/FLOAT inputs are checked against its INPUT_TYPES before it runs."""

    @functools.wraps(method)
    def checked(self, **values):
        inputs = type(self).INPUT_TYPES()
        specs = {**inputs.get("required", {}), **inputs.get("optional", {})}
        problems = []
        for name, value in values.items():
            spec = specs.get(name)
            if spec is None or spec[0] not in ("INT", "FLOAT") or not isinstance(value, (int, float)):
                continue
            options = spec[1] if len(spec) > 1 else {}
            low, high = options.get("min", -math.inf), options.get("max", math.inf)
            if not math.isfinite(value):
                problems.append(f"{name} is {value}, not a number: give a value from {low} to {high}")
            elif not low <= value <= high:
                problems.append(f"{name} {value} is outside its range: give a value from {low} to {high}")
        if problems:
            raise MotionModelError("; ".join(problems))
        return method(self, **values)

    return checked
