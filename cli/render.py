"""``render``: run one workflow on a ComfyUI server and report the files it wrote.

Order matters for the user's time: everything that can fail without a server fails first;
then the demo models (built once), then the server (started, or connected to), and the
prompt. A server this command started is stopped however it ends.
"""

import contextlib
import json
import shutil
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from .comfy_client import ComfyClient
from .comfy_server import ComfyProcess
from .early_checks import check_before_server
from .outputs import copy_destination, local_path, output_files, server_folders
from .progress import ProgressBar
from .workflow import apply_overrides, check_links, is_ui_format, ui_to_api

if "." in __package__:  # imported as <pack>.cli.render: the pack's modules are its siblings
    from .. import demo_models
else:  # the pack's folder is on sys.path
    import demo_models

PACK_DIR = Path(__file__).resolve().parents[1]


@dataclass
class RenderRequest:
    workflow: Path
    comfyui: Path | None = None
    python: str | None = None
    connect: str | None = None
    assignments: list[str] = field(default_factory=list)
    out: Path | None = None
    demo: bool = False
    timeout: float = 3600.0
    cpu: bool = False
    base_directory: Path | None = None


class RenderFailed(Exception):
    """A failure to report as its message alone: the server's words, or ours."""


def read_workflow(path: Path) -> dict:
    try:
        workflow = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RenderFailed(f"cannot read the workflow: {error}") from None
    except ValueError as error:
        raise RenderFailed(f"{path} is not JSON: {error}") from None
    is_api = isinstance(workflow, dict) and all(isinstance(n, dict) and "class_type" in n for n in workflow.values())
    if not (is_ui_format(workflow) or (is_api and workflow)):
        raise RenderFailed(f"{path} is neither a ComfyUI workflow (UI format) nor an API-format prompt")
    return workflow


def comfyui_python(comfyui: Path | None) -> str:
    """ComfyUI's Python when it has a virtual environment of its own in the checkout, else this one."""
    if comfyui is None:
        return sys.executable
    places = [comfyui / venv / python for venv in ("venv", ".venv") for python in ("bin/python", "Scripts/python.exe")]
    return next((str(path) for path in places if path.exists()), sys.executable)


def render(request: RenderRequest) -> list[Path | str]:
    """Run the workflow; print and return where its files are (paths, or /view URLs when the
    connected server's folders are unknown) on stdout; everything else goes to stderr.
    Raises RenderFailed, PromptFailed, ValueError, and the server's and client's errors."""
    workflow = read_workflow(request.workflow)
    check_before_server(workflow, request.assignments, request.demo)
    python = request.python or comfyui_python(request.comfyui)
    with contextlib.ExitStack() as cleanup:
        work_dir = Path(tempfile.mkdtemp(prefix="animatediff-render-"))
        cleanup.callback(shutil.rmtree, work_dir, ignore_errors=True)
        model_folders = {}
        if request.demo:
            print(demo_models.STARTING_NOTICE.format(cache=demo_models.cache_dir()), file=sys.stderr)
            model_folders = demo_models.prepare_demo_models(work_dir / "models", request.comfyui, python)
        client, server = _open_server(request, python, work_dir, model_folders, cleanup)
        schemas = client.object_info()
        prompt = _final_prompt(workflow, schemas, request, server)
        extra_data = {"extra_pnginfo": {"workflow": workflow}} if is_ui_format(workflow) else None
        prompt_id = client.submit(prompt, extra_data)
        bar = ProgressBar(sys.stderr, {i: n.get("_meta", {}).get("title", n["class_type"]) for i, n in prompt.items()})
        try:
            outputs = client.wait(prompt_id, request.timeout, bar.on_event)
        except KeyboardInterrupt:
            with contextlib.suppress(OSError):  # a server that is gone renders nothing
                client.interrupt(prompt_id)  # a connected server would otherwise render on
            raise
        finally:
            bar.finish()
        results = _deliver(client, output_files(outputs), request)
    for result in results:
        print(result)
    if not results:
        print("the workflow finished but wrote no files (it has no output node that saves)", file=sys.stderr)
    if request.demo:
        print(demo_models.NOISE_NOTICE, file=sys.stderr)
    return results


def _open_server(request: RenderRequest, python: str, work_dir: Path, model_folders: dict, cleanup):
    """A client of the requested server, listening to its events when possible; a server this
    started is stopped on leaving ``cleanup``."""
    server = None
    if request.connect:
        client = ComfyClient(request.connect)
    else:
        comfy_args = ("--cpu",) if request.cpu else ()
        server = ComfyProcess(request.comfyui, python, PACK_DIR, work_dir, base_directory=request.base_directory,
                              model_folders=model_folders, comfy_args=comfy_args)
        cleanup.callback(server.stop)
        print(f"starting ComfyUI ({request.comfyui}) ...", file=sys.stderr)
        server.start()
        client = ComfyClient(server.url, server)
    cleanup.callback(client.close)
    try:
        client.listen()
    except OSError as error:
        print(f"no progress bar: {error}", file=sys.stderr)  # the render itself needs no events
    return client, server


def _final_prompt(workflow: dict, schemas: dict, request: RenderRequest, server: ComfyProcess | None) -> dict:
    try:
        prompt = ui_to_api(workflow, schemas) if is_ui_format(workflow) else workflow
        if request.demo:
            prompt = demo_models.point_at_demo_models(prompt)
        prompt = apply_overrides(prompt, request.assignments)
    except ValueError as error:
        raise RenderFailed(_with_pack_import_error(str(error), server)) from None
    problems = check_links(prompt, schemas)
    if problems:
        raise RenderFailed(_with_pack_import_error("the workflow cannot run:\n  " + "\n  ".join(problems), server))
    return prompt


def _with_pack_import_error(message: str, server: ComfyProcess | None) -> str:
    """An unknown node type is most often this pack failing to load: say so, with ComfyUI's reason."""
    reason = server.pack_import_error() if server is not None else None
    return f"{message}\nComfyUI could not load this pack:\n{reason}" if reason else message


def _deliver(client: ComfyClient, files: list[dict], request: RenderRequest) -> list[Path | str]:
    """Where each file can be found: copied into ``--out``, else on the server's disk, else at a URL."""
    if request.out is not None:
        copies = []
        for file_info in files:
            destination = copy_destination(file_info, request.out)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with demo_models.atomic_path(destination) as partial:  # an interrupted copy leaves no half file
                partial.write_bytes(client.view(file_info))
            copies.append(destination)
        return copies
    argv = client.system_stats()["system"].get("argv", [])
    folders = server_folders(argv, request.comfyui)
    if folders is None:
        return [f"{client.url}/view?{urllib.parse.urlencode(f)}" for f in files]
    return [local_path(f, folders) for f in files]
