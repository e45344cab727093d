"""``render``: run one workflow on a ComfyUI server and print the files it wrote. What can fail
without a server fails first: starting one takes seconds, the demo models minutes. Exit status:
0 when the workflow ran, 1 when it failed (the server's node error, or ours), 2 for a
command-line mistake, 130 when interrupted.
"""

import argparse
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import urllib.parse
from pathlib import Path

from .comfy_client import ComfyClient, PromptFailed, ServerFailed, output_files
from .comfy_server import ComfyProcess
from .workflow import (apply_overrides, find_node, is_ui_format, node_title, parse_assignment, prompt_nodes,
                       ui_to_api)

if "." in __package__:  # imported as <pack>.cli.main: the pack's modules are its siblings
    from .. import demo_models
    from ..video.whole_files import atomic_path
else:  # the pack's folder is on sys.path
    import demo_models
    from video.whole_files import atomic_path

PACK_DIR = Path(__file__).resolve().parents[1]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
BAR_WIDTH = 24
EXAMPLES = """examples:
  render workflows/txt2vid.json --comfyui ~/ComfyUI
  render workflows/txt2vid.json --comfyui ~/ComfyUI --set KSampler.steps=25 --set "Positive prompt.text=a cat"
  render workflows/txt2vid.json --comfyui ~/ComfyUI --demo --cpu --set EmptyLatentImage.width=64
  render workflows/api/txt2vid.api.json --connect http://127.0.0.1:8188 --out renders/
"""


def parse_request(argv: list[str] | None = None) -> argparse.Namespace:
    # As the user ran it: python -m <pack>, or python path/to/<pack>.
    prog = f"python -m {__package__.split('.')[0]}" if "." in __package__ else f"python {sys.argv[0]}"
    top = argparse.ArgumentParser(prog=prog, description="AnimateDiff for ComfyUI.")
    parser = top.add_subparsers(dest="command", required=True).add_parser(
        "render", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run a workflow on a ComfyUI server and print the paths of the files it wrote",
        description="Run a workflow (UI or API format) on a ComfyUI server on this machine, with a progress "
                    "bar; print the paths of the files it wrote, one per line.")
    add = parser.add_argument
    add("workflow", type=Path, help="workflow JSON, as saved by ComfyUI or in API format")
    add("--comfyui", type=Path, metavar="PATH", help="the ComfyUI checkout to start")
    add("--python", metavar="PY", help="ComfyUI's Python (default: PATH/venv or PATH/.venv, else this Python)")
    add("--connect", metavar="URL", help="use the ComfyUI server already running at URL (on this machine) instead")
    add("--set", dest="assignments", action="append", default=[], metavar="NODE.INPUT=VALUE",
        help="change an input before running; NODE is a node id, title or type, VALUE is JSON or text (repeatable)")
    add("--out", type=Path, metavar="DIR", help="copy the files written into DIR")
    add("--demo", action="store_true", help="use random-weight models built on first use: the output is noise")
    add("--timeout", type=float, default=3600.0, metavar="S",
        help="give up (and interrupt the prompt) after S seconds (default: %(default).0f)")
    add("--cpu", action="store_true", help="run the started server on the CPU")
    add("--base-directory", type=Path, metavar="DIR",
        help="the started server's data folder (models, custom_nodes, output), if not PATH")
    args = top.parse_args(argv)
    # Resolved: the server runs in another folder.
    args.comfyui, args.base_directory = (p and p.expanduser().resolve() for p in (args.comfyui, args.base_directory))
    if args.connect:
        if args.demo or args.cpu or args.base_directory:
            parser.error("--demo, --cpu and --base-directory are for a server this command starts: drop --connect")
        url = urllib.parse.urlsplit(args.connect)
        if url.scheme != "http" or url.hostname not in LOOPBACK_HOSTS:
            parser.error(f"--connect takes http://127.0.0.1:PORT (a server on this machine), not {args.connect}")
    elif args.comfyui is None:
        parser.error("give --comfyui PATH (a ComfyUI checkout to start) or --connect URL")
    elif not (args.comfyui / "main.py").is_file():
        parser.error(f"--comfyui {args.comfyui}: no main.py there; give the ComfyUI checkout")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    request = parse_request(argv)
    # While rendering, `kill` unwinds like Ctrl-C does, so a server this command started is stopped too.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        render(request)
    # ValueError: the workflow or a --set; OSError: the server cannot be reached, a file cannot be written.
    except (PromptFailed, ServerFailed, demo_models.BuildFailed, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def read_workflow(path: Path, assignments: list[str], demo: bool) -> dict:
    """The workflow; ValueError for a file that is none, a ``--set`` naming no node or a ``--demo``
    finding no loader. Input names wait for the server: only its schemas name a UI node's widgets."""
    try:
        workflow = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read the workflow: {error}") from None
    except ValueError as error:
        raise ValueError(f"{path} is not JSON: {error}") from None
    nodes = workflow
    if is_ui_format(workflow):
        nodes = {str(node["id"]): {"class_type": node.get("type"), "inputs": {}, "_meta": {"title": node.get("title")}}
                 for node in prompt_nodes(workflow)}
    elif not (workflow and isinstance(workflow, dict)
              and all(isinstance(node, dict) and "class_type" in node for node in workflow.values())):
        raise ValueError(f"{path} is neither a ComfyUI workflow (UI format) nor an API-format prompt")
    for assignment in assignments:
        find_node(nodes, parse_assignment(assignment)[0])
    if demo:
        demo_models.point_at_demo_models(nodes)
    return workflow


def render(request) -> None:
    """Run the workflow; print where its files are (paths, or /view URLs of a connected server)
    on stdout, everything else on stderr."""
    workflow = read_workflow(request.workflow, request.assignments, request.demo)
    with contextlib.ExitStack() as cleanup:
        client = _open_server(request, cleanup)
        try:
            prompt = ui_to_api(workflow, client.get_json("/object_info")) if is_ui_format(workflow) else workflow
            if request.demo:
                prompt = demo_models.point_at_demo_models(prompt)
            prompt = apply_overrides(prompt, request.assignments)
            extra_data = {"extra_pnginfo": {"workflow": workflow}} if is_ui_format(workflow) else None
            prompt_id = client.submit(prompt, extra_data)
        except (ValueError, PromptFailed) as error:
            # An unknown node type is most often this pack failing to load: say so, with ComfyUI's reason.
            reason = client.server and client.server.pack_import_error()
            if reason:
                raise ValueError(f"{error}\nComfyUI could not load this pack:\n{reason}") from None
            raise
        bar = ProgressBar(sys.stderr, {node_id: node_title(node) for node_id, node in prompt.items()})
        try:
            outputs = client.wait(prompt_id, request.timeout, bar.on_event)
        except KeyboardInterrupt:
            with contextlib.suppress(OSError):  # a server that is gone renders nothing
                client.interrupt(prompt_id)  # a connected server would otherwise render on
            raise
        finally:
            bar.finish()
        results = deliver(client, output_files(outputs), request)
    for result in results:
        print(result)
    if not results:
        print("the workflow finished but wrote no files (it has no output node that saves)", file=sys.stderr)
    if request.demo:
        print(demo_models.NOISE_NOTICE, file=sys.stderr)


def _open_server(request, cleanup: contextlib.ExitStack):
    """A client of the requested server, receiving its events when possible; a server this command
    starts is stopped, and its work folder removed, on leaving ``cleanup``."""
    if request.connect:
        client = ComfyClient(request.connect)
    else:
        # ComfyUI's Python: its own virtual environment in the checkout, if it has one.
        venvs = [request.comfyui / venv / exe for venv in ("venv", ".venv")
                 for exe in ("bin/python", "Scripts/python.exe")]
        python = request.python or next((str(path) for path in venvs if path.exists()), sys.executable)
        work_dir = Path(tempfile.mkdtemp(prefix="animatediff-render-"))
        cleanup.callback(shutil.rmtree, work_dir, ignore_errors=True)
        model_folders = {}
        if request.demo:
            print(demo_models.STARTING_NOTICE.format(cache=demo_models.cache_dir()), file=sys.stderr)
            model_folders = demo_models.prepare_demo_models(work_dir / "models", request.comfyui, python)
        server = ComfyProcess(request.comfyui, python, PACK_DIR, work_dir, base_directory=request.base_directory,
                              model_folders=model_folders, comfy_args=("--cpu",) if request.cpu else ())
        cleanup.callback(server.stop)
        print(f"starting ComfyUI ({request.comfyui}) ...", file=sys.stderr)
        client = server.start()
    cleanup.callback(client.close)
    try:
        client.listen()
    except OSError as error:
        print(f"no progress bar: {error}", file=sys.stderr)  # the render itself needs no events
    return client


def deliver(client: ComfyClient, files: list[dict], request) -> list[Path | str]:
    """Each file: copied into ``--out``, else in the started server's folders, else its /view URL."""
    if request.out is not None:
        copies = [(request.out / f.get("subfolder", "") / f["filename"]).resolve() for f in files]
        for file_info, copy in zip(files, copies):
            copy.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(copy) as partial:  # an interrupted copy leaves no half file
                partial.write_bytes(client.view(file_info))
        return copies
    if request.connect:
        return [client.url + client.view_path(file_info) for file_info in files]
    base = request.base_directory or request.comfyui  # the only folder flag the started server was given
    return [(base / f.get("type", "output") / f.get("subfolder", "") / f["filename"]).resolve() for f in files]


class ProgressBar:
    """One line redrawn with ``\\r`` from ComfyUI's websocket events: ``executing`` names the node
    that starts, ``progress`` carries the running node's ``value``/``max`` (sampler steps, frames
    written); ``finish()`` ends the line once the prompt is done."""

    def __init__(self, stream, titles: dict[str, str]):
        self.stream, self.titles = stream, titles  # titles: node id -> name shown
        self._drawn = 0  # the line's length on screen, to blank out leftovers

    def on_event(self, event: dict) -> None:
        kind, data = event.get("type"), event.get("data", {})
        node = self.titles.get(data.get("node"), data.get("node"))
        if kind == "executing" and node is not None:
            self._draw(f"{node} ...")
        elif kind == "progress" and data.get("max"):
            filled = round(BAR_WIDTH * data["value"] / data["max"])
            self._draw(f"{node} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {data['value']}/{data['max']}")

    def finish(self) -> None:
        """End the line, so that what is printed next starts on its own."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(text)
