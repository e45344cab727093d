"""The one error type the core raises for bad user input."""


class MotionModelError(ValueError):
    """A motion-model, MotionLoRA or adapter file (or a value) the pack cannot use.

    The message names the file or input, says what was expected and what to do.
    """
