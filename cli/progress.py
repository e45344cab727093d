"""A one-line text progress bar, redrawn with ``\\r``, fed with ComfyUI's websocket events.

``executing`` names the node that starts (``node: null`` when the prompt is done);
``progress`` carries ``value``/``max`` of the running node (sampler steps, frames written).
"""

BAR_WIDTH = 24


class ProgressBar:
    def __init__(self, stream, titles: dict[str, str]):
        """``titles``: node id -> what to call it (the API prompt's ``_meta.title``)."""
        self.stream = stream
        self.titles = titles
        self._node = None
        self._drawn = 0  # length of the line on screen, to blank out leftovers

    def on_event(self, event: dict) -> None:
        kind, data = event.get("type"), event.get("data", {})
        if kind == "executing":
            if data.get("node") is None:
                self.finish()
            else:
                self._node = self.titles.get(data["node"], data["node"])
                self._draw(f"{self._node} ...")
        elif kind == "progress" and data.get("max"):
            value, maximum = data["value"], data["max"]
            filled = round(BAR_WIDTH * value / maximum)
            node = self.titles.get(data.get("node"), self._node or "")
            self._draw(f"{node} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {value}/{maximum}")

    def finish(self) -> None:
        """End the line, so what is printed next starts on its own."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(text)
