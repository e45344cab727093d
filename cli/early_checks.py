"""What can be checked in a workflow before any server starts (which takes seconds).

An API prompt is checked as it is. A UI workflow names its inputs only through the node
schemas that a running server gives, so before that only its nodes are known: ``--set`` node
names (node id, title or node type; a node's display name needs the server) and the loaders
``--demo`` rewrites are checked against an outline of them.
"""

from .workflow import BYPASSED, FRONTEND_ONLY, MUTED, apply_overrides, is_ui_format

if "." in __package__:  # imported as <pack>.cli.early_checks: the pack's modules are its siblings
    from .. import demo_models
else:  # the pack's folder is on sys.path
    import demo_models


class _UnknownInputs(dict):
    """The inputs of a node whose schema is not known yet: any input name may exist."""

    def __contains__(self, name) -> bool:
        return True


def prompt_outline(workflow: dict) -> dict:
    """The workflow as an API prompt as far as it is known without a server."""
    if not is_ui_format(workflow):
        return workflow
    outline = {}
    for node in workflow["nodes"]:
        # The nodes ui_to_api leaves out of a prompt.
        if node.get("type") in FRONTEND_ONLY or node.get("mode") in (MUTED, BYPASSED):
            continue
        meta = {"title": node["title"]} if node.get("title") else {}
        outline[str(node["id"])] = {"class_type": node.get("type"), "inputs": _UnknownInputs(), "_meta": meta}
    return outline


def check_before_server(workflow: dict, assignments: list[str], demo: bool) -> None:
    """Raise ValueError for a ``--set`` naming no node (or, for an API prompt, no input) or a
    ``--demo`` that finds no loader to point at its models."""
    outline = prompt_outline(workflow)
    if demo:
        outline = demo_models.point_at_demo_models(outline)
    apply_overrides(outline, assignments)
