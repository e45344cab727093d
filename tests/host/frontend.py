"""The real ComfyUI frontend in headless Chromium (Debian's chromium, driven by Playwright).

No browser is downloaded: Playwright drives the system's /usr/bin/chromium. Where it or
Playwright is missing, every frontend test is skipped with one line saying what to install.
"""

import base64
import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MISSING = ("frontend tests skipped: install Debian's chromium (apt-get install chromium) and Playwright "
           "(pip install -r requirements-test.txt)")
# Without these, Chromium tries Google's services at start; this machine has no network for them.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
READY = "window.app && window.app.graph && window.LiteGraph && Object.keys(LiteGraph.registered_node_types).length > 50"


class Frontend:
    """One browser tab on the server's frontend; ``errors`` collects console errors and page errors."""

    def __init__(self, page):
        self.page = page
        self.errors = []
        # Console errors, uncaught page errors, and failed requests (their console line names no URL).
        page.on("console", lambda message: message.type == "error" and not message.text.startswith(
            "Failed to load resource") and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("response", lambda response: response.status >= 400 and self.errors.append(
            f"HTTP {response.status} {response.url}"))

    def evaluate(self, script: str, argument=None):
        return self.page.evaluate(script, argument)

    def load(self, workflow: dict) -> None:
        self.evaluate("async (workflow) => { await window.app.loadGraphData(workflow); }", workflow)

    def prompt(self) -> dict:
        """What the frontend would queue: its own graphToPrompt()."""
        return self.evaluate("async () => (await window.app.graphToPrompt()).output")

    def node_titles(self) -> list[str]:
        return self.evaluate("() => window.app.graph._nodes.map(node => node.title)")

    def visible_dialog_text(self) -> str:
        return self.evaluate("() => [...document.querySelectorAll('[role=dialog]')]"
                             ".filter(d => d.offsetParent !== null).map(d => d.innerText).join('\\n')")

    def drop_file(self, data: bytes, name: str, mime: str) -> None:
        """A real drop event on the canvas carrying the file, as when an artist drags it from a folder."""
        self.evaluate("""([data, name, mime]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: mime}));
            const canvas = document.querySelector('canvas#graph-canvas') || document.querySelector('canvas');
            for (const kind of ['dragenter', 'dragover', 'drop']) {
                canvas.dispatchEvent(new DragEvent(kind, {dataTransfer: transfer, bubbles: true, cancelable: true,
                                                          clientX: 400, clientY: 300}));
            }
        }""", [base64.b64encode(data).decode(), name, mime])


def open_frontend(comfy):
    """(Frontend, close) for ``comfy``'s server, with the first-start template dialog switched off."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(MISSING)
    if not os.path.exists(CHROMIUM):
        pytest.skip(MISSING)
    comfy.client.request("POST", "/api/settings/Comfy.TutorialCompleted", True)
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    frontend = Frontend(page)
    page.goto(comfy.url)
    page.wait_for_function(READY, timeout=120_000)
    page.wait_for_load_state("networkidle")
    frontend.errors.clear()  # the host's own start-up probes (user.css, user data listings) 404 on a new install

    def close():
        browser.close()
        playwright.stop()

    return frontend, close
