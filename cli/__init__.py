"""The pack's command line: ``render``. Torch-free: it may run in a Python without torch."""
