"""ComfyUI workflow JSON in its two shapes, read without ComfyUI (workflows/ui_graph.py writes
the UI shape with these schema readers too). The UI format (what the frontend saves) lists
nodes with positional `widgets_values`, meaningful only against the `/object_info` schemas, and
links as `[id, from_node, from_slot, to_node, to_slot, type]`; the API format (what `POST /prompt`
takes) is `{"<id>": {"class_type", "inputs", "_meta"}}`, links as `[node_id, slot]`. A muted node
is dropped; a bypassed one passes a consumer its input of the same type (same index first), or
nothing: the consumer's input is left out."""

import copy
import json

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
MEDIA_UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload")
MUTED, BYPASSED = 2, 4
NOTE_TYPES = {"Note", "MarkdownNote"}
REROUTE, PRIMITIVE = "Reroute", "PrimitiveNode"
FRONTEND_ONLY = NOTE_TYPES | {REROUTE, PRIMITIVE}

def spec_type(spec) -> str:
    """An input or output type as a name: a list of choices is a COMBO."""
    kind = spec[0] if isinstance(spec, (list, tuple)) else spec
    return "COMBO" if isinstance(kind, (list, tuple)) else kind


def spec_options(spec) -> dict:
    return spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}


def is_widget(spec) -> bool:
    options = spec_options(spec)
    return spec_type(spec) in WIDGET_TYPES and not options.get("forceInput") and not options.get("defaultInput")


def has_value_control(name: str, spec) -> bool:
    """The frontend adds a 'control_after_generate' widget after these (seed-like) inputs."""
    return bool(spec_options(spec).get("control_after_generate")) or (
        spec_type(spec) == "INT" and name in ("seed", "noise_seed"))


def ordered_inputs(schema: dict) -> list:
    """(name, spec, required) in the frontend's order: `input_order` when the server sends it."""
    order = schema.get("input_order") or {}
    result = []
    for section in ("required", "optional"):
        specs = schema.get("input", {}).get(section) or {}
        names = [n for n in order.get(section, []) if n in specs]
        names += [n for n in specs if n not in names]
        result += [(name, specs[name], section == "required") for name in names]
    return result


def _takes_upload(spec, required: bool) -> bool:
    return required and spec_type(spec) == "COMBO" and any(spec_options(spec).get(o) for o in MEDIA_UPLOAD_OPTIONS)


def ui_widget_names(schema: dict) -> list:
    """Input names in the order of a UI node's `widgets_values`; None marks a value the
    frontend stores for itself (a control_after_generate mode, an upload button)."""
    names, after_required = [], 0
    inputs = ordered_inputs(schema)
    for name, spec, required in inputs:
        if is_widget(spec):
            names += [name, None] if has_value_control(name, spec) else [name]
        if required:
            after_required = len(names)
    if any(_takes_upload(spec, required) for _, spec, required in inputs):
        # The frontend adds its upload button as one more required input, which lands after every
        # input named in `input_order`, or after the required ones when the server sends no order.
        names.insert(len(names) if schema.get("input_order") else after_required, None)
    return names


def display_name(schema: dict, class_type: str) -> str:
    return schema.get("display_name") or class_type


def types_match(output_type: str, input_type: str) -> bool:
    """The frontend's rule: '*' matches anything, 'A,B' matches either."""
    if "*" in (output_type, input_type):
        return True
    return bool(set(output_type.split(",")) & set(input_type.split(",")))


def is_ui_format(data: dict) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data

def _ui_links(ui: dict) -> dict:
    """link id -> (from_node, from_slot, type); both the list form and the object form."""
    links = {}
    for link in ui.get("links") or []:
        if isinstance(link, dict):
            links[link["id"]] = (link["origin_id"], link["origin_slot"], link.get("type", "*"))
        else:
            links[link[0]] = (link[1], link[2], link[5] if len(link) > 5 else "*")
    return links


def _node_label(node: dict) -> str:
    return f"node {node['id']} ({node.get('type')})"


class _UiGraph:
    def __init__(self, ui: dict):
        self.nodes = {node["id"]: node for node in ui["nodes"]}
        self.links = _ui_links(ui)

    def source(self, link_id, depth: int = 0):
        """What a link delivers in the API prompt: ``[node id, slot]``, a primitive's value, or None for nothing."""
        if link_id is None or link_id not in self.links or depth > len(self.nodes):
            return None
        from_id, from_slot, link_type = self.links[link_id]
        node = self.nodes.get(from_id)
        if node is None or node.get("type") in NOTE_TYPES or node.get("mode") == MUTED:
            return None
        if node.get("type") == PRIMITIVE:
            values = node.get("widgets_values") or []
            return values[0] if values else None
        if node.get("type") == REROUTE:
            inputs = node.get("inputs") or []
            return self.source(inputs[0].get("link") if inputs else None, depth + 1)
        if node.get("mode") == BYPASSED:
            return self.source(self._bypass_input(node, from_slot, link_type), depth + 1)
        return [str(from_id), from_slot]

    @staticmethod
    def _bypass_input(node: dict, slot: int, link_type: str):
        inputs = node.get("inputs") or []
        passing = [i for i, entry in enumerate(inputs)
                   if entry.get("link") is not None and types_match(entry.get("type", "*"), link_type)]
        return inputs[slot if slot in passing else passing[0]]["link"] if passing else None


def _widget_inputs(node: dict, schema: dict) -> dict:
    values = node.get("widgets_values")
    names = ui_widget_names(schema)
    if isinstance(values, dict):  # some custom nodes store widgets by name
        return {name: values[name] for name in names if name is not None and name in values}
    values = values or []
    required = {name for name, _, is_required in ordered_inputs(schema) if is_required}
    if len(values) < len(names) and not required & set(names[len(values):]):
        names = names[:len(values)]  # saved before these optional inputs existed: the server uses their defaults
    if len(values) != len(names):
        raise ValueError(
            f"{_node_label(node)}: has {len(values)} widget values but {node.get('type')} takes {len(names)} "
            f"({', '.join(n or '<frontend value>' for n in names)}); the workflow was saved with another "
            "version of this node: open it in ComfyUI and save it again"
        )
    return {name: value for name, value in zip(names, values) if name is not None}


def prompt_nodes(ui: dict) -> list:
    """The UI nodes that become nodes of the API prompt, in execution order."""
    return [node for node in sorted(ui["nodes"], key=lambda n: (n.get("order", 0), n["id"]))
            if node.get("type") not in FRONTEND_ONLY and node.get("mode") not in (MUTED, BYPASSED)]


def ui_to_api(ui: dict, schemas: dict) -> dict:
    """A frontend workflow as the prompt `POST /prompt` takes."""
    graph = _UiGraph(ui)
    prompt = {}
    for node in prompt_nodes(ui):
        class_type = node.get("type")
        schema = schemas.get(class_type)
        if schema is None:
            raise ValueError(f"{_node_label(node)}: unknown node type '{class_type}': install the node pack that "
                             "provides it, or remove the node")
        inputs = _widget_inputs(node, schema)
        for entry in node.get("inputs") or []:
            if entry.get("link") is None:
                continue
            delivered = graph.source(entry["link"])
            if delivered is None:
                inputs.pop(entry["name"], None)
            else:
                inputs[entry["name"]] = delivered
        for name, _, required in ordered_inputs(schema):
            if required and name not in inputs:
                raise ValueError(f"{_node_label(node)}: required input '{name}' is not connected (or comes from a "
                                 "muted/bypassed node with nothing to pass through): connect it")
        title = node.get("title") or display_name(schema, class_type)
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": class_type, "_meta": {"title": title}}
    return prompt

def find_node(api: dict, key: str) -> str:
    """The id of the node `key` names: a node id, a unique title or a unique node type."""
    if key in api:
        return key
    for name_of in (node_title, lambda node: node["class_type"]):
        found = [i for i, node in api.items() if name_of(node) == key]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"'{key}' matches nodes {', '.join(found)}: use a node id")
    known = ", ".join(f"{i} '{node_title(n)}'" for i, n in api.items())
    raise ValueError(f"no node '{key}': use a node id, a unique title or a unique node type ({known})")


def node_title(node: dict) -> str:
    return node.get("_meta", {}).get("title") or node["class_type"]


def apply_overrides(api: dict, assignments: list) -> dict:
    """A copy of the prompt with the `node.input=value` assignments applied."""
    api = copy.deepcopy(api)
    for assignment in assignments:
        node_key, input_name, value = parse_assignment(assignment)
        node = api[find_node(api, node_key)]
        if input_name not in node["inputs"]:
            raise ValueError(f"'{assignment}': node '{node_key}' ({node['class_type']}) has no input '{input_name}' "
                             f"(it has {', '.join(node['inputs'])})")
        node["inputs"][input_name] = value
    return api


def parse_assignment(assignment: str) -> tuple:
    """`node.input=value` as (node, input, value): the value as JSON when it parses, else as text."""
    target, equals, text = assignment.partition("=")
    node_key, dot, input_name = target.rpartition(".")
    if not equals or not dot or not node_key or not input_name:
        raise ValueError(f"'{assignment}': expected node.input=value, e.g. KSampler.steps=20")
    try:
        return node_key, input_name, json.loads(text)
    except json.JSONDecodeError:
        return node_key, input_name, text
