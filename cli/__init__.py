"""Command-line tools for the pack: workflow conversion and the headless renderer."""
