"""The ways a prompt can fail on the server, as exceptions carrying the server's own words."""


class PromptFailed(Exception):
    """ComfyUI rejected the prompt or it failed while running.

    ``node_errors``: the server's per-node validation errors when it was rejected;
    ``server_traceback``: the tail of the server-side traceback when a node raised.
    """

    def __init__(self, message: str, node_errors: dict | None = None, server_traceback: str = ""):
        super().__init__(message)
        self.node_errors = node_errors or {}
        self.server_traceback = server_traceback


class PromptInterrupted(PromptFailed):
    """The prompt stopped because of ``POST /interrupt``."""


def describe_rejection(body: dict) -> str:
    """The text of an HTTP 400 answer to ``POST /prompt``: the overall error, then each node's."""
    error = body.get("error", {})
    if isinstance(error, dict):
        lines = [f"{error.get('message', '')}: {error.get('details', '')}"]
    else:
        lines = [str(error)]
    for node_id, info in body.get("node_errors", {}).items():
        for problem in info.get("errors", []):
            lines.append(f"node {node_id!r} ({info.get('class_type')}): {problem.get('message')}: "
                         f"{problem.get('details', '')}")
    return "prompt rejected: " + "\n  ".join(lines)


def describe_execution_error(prompt_id: str, status: dict) -> PromptFailed:
    """The error a finished-but-unsuccessful history entry's ``status`` stands for."""
    for event, data in status.get("messages", []):
        if event == "execution_interrupted":
            return PromptInterrupted(f"prompt {prompt_id} was interrupted in node {data.get('node_id')!r} "
                                     f"({data.get('node_type')})")
        if event == "execution_error":
            return PromptFailed(
                f"prompt {prompt_id} failed in node {data.get('node_id')!r} ({data.get('node_type')}): "
                f"{data.get('exception_type')}: {str(data.get('exception_message')).strip()}",
                # The innermost frames tell the story.
                server_traceback="".join(data.get("traceback", []))[-4000:],
            )
    return PromptFailed(f"prompt {prompt_id} ended with status {status}")
