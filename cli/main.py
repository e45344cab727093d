"""The pack's command line: ``python -m <pack> render WORKFLOW --comfyui PATH ...``.

Exit status: 0 when the workflow ran, 1 when it failed (the message is the server's node
error, or ours), 2 for a command-line mistake, 130 when interrupted.
"""

import argparse
import contextlib
import signal
import sys
import threading
import urllib.parse
from pathlib import Path

from .comfy_client import ServerError
from .comfy_server import ServerFailed
from .prompt_errors import PromptFailed
from .render import RenderFailed, RenderRequest, demo_models, render

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

EXAMPLES = """examples:
  render workflows/txt2vid.json --comfyui ~/ComfyUI
  render workflows/txt2vid.json --comfyui ~/ComfyUI --set KSampler.steps=25 --set "Positive prompt.text=a cat"
  render workflows/txt2vid.json --comfyui ~/ComfyUI --demo --cpu --set EmptyLatentImage.width=64
  render workflows/api/txt2vid.api.json --connect http://127.0.0.1:8188 --out renders/
"""


def _program_name() -> str:
    """How the user ran the command line: ``python -m <pack>`` or ``python path/to/<pack>``."""
    if "." in __package__:  # imported as <pack>.cli.main
        return f"python -m {__package__.split('.')[0]}"
    return f"python {sys.argv[0]}"


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command line's parser, and its ``render`` subcommand's."""
    parser = argparse.ArgumentParser(prog=_program_name(), description="AnimateDiff for ComfyUI.")
    commands = parser.add_subparsers(dest="command", required=True)
    render_args = commands.add_parser(
        "render", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run a workflow on a ComfyUI server and print the paths of the files it wrote",
        description="Run a workflow (UI or API format) on a ComfyUI server on this machine, with a progress "
                    "bar; print the paths of the files it wrote, one per line.")
    render_args.add_argument("workflow", type=Path, help="workflow JSON, as saved by ComfyUI or in API format")
    render_args.add_argument("--comfyui", type=Path, metavar="PATH", help="the ComfyUI checkout to start")
    render_args.add_argument("--python", metavar="PY",
                             help="ComfyUI's Python (default: PATH/venv or PATH/.venv, else this Python)")
    render_args.add_argument("--connect", metavar="URL",
                             help="use the ComfyUI server already running at URL (on this machine) instead")
    render_args.add_argument("--set", dest="assignments", action="append", default=[], metavar="NODE.INPUT=VALUE",
                             help="change an input before running; NODE is a node id, title or type, VALUE is JSON "
                                  "or text (repeatable)")
    render_args.add_argument("--out", type=Path, metavar="DIR", help="copy the files written into DIR")
    render_args.add_argument("--demo", action="store_true",
                             help="use random-weight models built on first use (no downloads): the output is noise")
    render_args.add_argument("--timeout", type=float, default=RenderRequest.timeout, metavar="S",
                             help="give up (and interrupt the prompt) after S seconds (default: %(default).0f)")
    render_args.add_argument("--cpu", action="store_true", help="run the started server on the CPU")
    render_args.add_argument("--base-directory", type=Path, metavar="DIR",
                             help="the started server's data folder (models, custom_nodes, output), if not PATH")
    return parser, render_args


def _absolute(path: Path | None) -> Path | None:
    return path.expanduser().resolve() if path is not None else None  # the server runs in another folder


def parse_request(argv: list[str] | None = None) -> RenderRequest:
    top, parser = build_parser()
    args = top.parse_args(argv)
    comfyui = _absolute(args.comfyui)
    if args.connect:
        if args.demo or args.cpu or args.base_directory:
            parser.error("--demo, --cpu and --base-directory are for a server this command starts: drop --connect")
        url = urllib.parse.urlsplit(args.connect)
        if url.scheme != "http" or url.hostname not in LOOPBACK_HOSTS:
            parser.error(f"--connect takes http://127.0.0.1:PORT (a server on this machine), not {args.connect}")
    elif comfyui is None:
        parser.error("give --comfyui PATH (a ComfyUI checkout to start) or --connect URL")
    elif not (comfyui / "main.py").is_file():
        parser.error(f"--comfyui {args.comfyui}: no main.py there; give the ComfyUI checkout")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return RenderRequest(workflow=args.workflow, comfyui=comfyui, python=args.python, connect=args.connect,
                         assignments=args.assignments, out=args.out, demo=args.demo, timeout=args.timeout,
                         cpu=args.cpu, base_directory=_absolute(args.base_directory))


@contextlib.contextmanager
def _sigterm_unwinds():
    """While rendering, ``kill`` unwinds like Ctrl-C does, so a server this command started is stopped too."""
    if threading.current_thread() is not threading.main_thread():  # only it may handle signals
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    request = parse_request(argv)
    try:
        with _sigterm_unwinds():
            render(request)
    # OSError: the server cannot be reached, a file cannot be written.
    except (RenderFailed, PromptFailed, ServerFailed, ServerError, demo_models.BuildFailed, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
