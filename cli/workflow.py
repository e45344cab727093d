"""ComfyUI workflow JSON in its two shapes, converted both ways without ComfyUI.

The UI format (what the frontend saves and artists share) lists nodes with positional
`widgets_values` and links as `[id, from_node, from_slot, to_node, to_slot, type]`; the API
format (what `POST /prompt` takes) is `{"<id>": {"class_type", "inputs", "_meta"}}` with links as
`[node_id, slot]`. Widget positions are only meaningful against the node schemas from
`/object_info`, so every conversion takes them.

Node modes in the UI: 2 = muted (dropped, like the frontend does), 4 = bypassed (a consumer
of a bypassed node's output gets the bypassed node's input of the same type instead, the
same-index input first; with no such input the consumer's input is left out).
"""

import copy
import json

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
MEDIA_UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload")
MUTED, BYPASSED = 2, 4
NOTE_TYPES = {"Note", "MarkdownNote"}
REROUTE, PRIMITIVE = "Reroute", "PrimitiveNode"
FRONTEND_ONLY = NOTE_TYPES | {REROUTE, PRIMITIVE}


# --- schema reading --------------------------------------------------------------------

def spec_type(spec) -> str:
    """An input or output type as a name: a list of choices is a COMBO."""
    kind = spec[0] if isinstance(spec, (list, tuple)) else spec
    return "COMBO" if isinstance(kind, (list, tuple)) else kind


def spec_options(spec) -> dict:
    return spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}


def _inputs(schema: dict, section: str) -> dict:
    return schema.get("input", {}).get(section) or {}


def all_inputs(schema: dict) -> dict:
    return {**_inputs(schema, "required"), **_inputs(schema, "optional")}


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
        specs = _inputs(schema, section)
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


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def is_ui_format(data: dict) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


# --- UI -> API -------------------------------------------------------------------------

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
        """What a link delivers in the API prompt: ('link', [id, slot]), ('value', v) or None."""
        if link_id is None or link_id not in self.links or depth > len(self.nodes):
            return None
        from_id, from_slot, link_type = self.links[link_id]
        node = self.nodes.get(from_id)
        if node is None or node.get("type") in NOTE_TYPES or node.get("mode") == MUTED:
            return None
        if node.get("type") == PRIMITIVE:
            values = node.get("widgets_values") or []
            return ("value", values[0]) if values else None
        if node.get("type") == REROUTE:
            inputs = node.get("inputs") or []
            return self.source(inputs[0].get("link") if inputs else None, depth + 1)
        if node.get("mode") == BYPASSED:
            return self.source(self._bypass_input(node, from_slot, link_type), depth + 1)
        return "link", [str(from_id), from_slot]

    @staticmethod
    def _bypass_input(node: dict, slot: int, link_type: str):
        linked = [(i, entry) for i, entry in enumerate(node.get("inputs") or []) if entry.get("link") is not None]
        matching = [(i, entry) for i, entry in linked if types_match(entry.get("type", "*"), link_type)]
        same_slot = [entry for i, entry in matching if i == slot]
        chosen = same_slot or [entry for _, entry in matching]
        return chosen[0]["link"] if chosen else None


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


def ui_to_api(ui: dict, schemas: dict) -> dict:
    """A frontend workflow as the prompt `POST /prompt` takes."""
    graph = _UiGraph(ui)
    prompt = {}
    for node in sorted(ui["nodes"], key=lambda n: (n.get("order", 0), n["id"])):
        class_type = node.get("type")
        if class_type in FRONTEND_ONLY or node.get("mode") in (MUTED, BYPASSED):
            continue
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
                inputs[entry["name"]] = delivered[1]
        for name in _inputs(schema, "required"):
            if name not in inputs:
                raise ValueError(f"{_node_label(node)}: required input '{name}' is not connected (or comes from a "
                                 "muted/bypassed node with nothing to pass through): connect it")
        title = node.get("title") or display_name(schema, class_type)
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": class_type, "_meta": {"title": title}}
    return prompt


# --- editing and checking API prompts --------------------------------------------------

def _find_node(api: dict, key: str) -> str:
    if key in api:
        return key
    for name_of in (_title, lambda node: node["class_type"]):
        found = [i for i, node in api.items() if name_of(node) == key]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"'{key}' matches nodes {', '.join(found)}: use a node id")
    known = ", ".join(f"{i} '{_title(n)}'" for i, n in api.items())
    raise ValueError(f"no node '{key}': use a node id, a unique title or a unique node type ({known})")


def _title(node: dict) -> str:
    return node.get("_meta", {}).get("title") or node["class_type"]


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(api: dict, assignments: list) -> dict:
    """A copy of the prompt with `node.input=value` assignments applied (node: id, unique title or
    unique class_type; value: JSON when it parses, else the text)."""
    api = copy.deepcopy(api)
    for assignment in assignments:
        target, equals, text = assignment.partition("=")
        node_key, dot, input_name = target.rpartition(".")
        if not equals or not dot or not node_key or not input_name:
            raise ValueError(f"'{assignment}': expected node.input=value, e.g. KSampler.steps=20")
        node = api[_find_node(api, node_key)]
        if input_name not in node["inputs"]:
            raise ValueError(f"'{assignment}': node '{node_key}' ({node['class_type']}) has no input '{input_name}' "
                             f"(it has {', '.join(node['inputs'])})")
        node["inputs"][input_name] = _parse_value(text)
    return api


def check_links(api: dict, schemas: dict) -> list:
    """Every problem that would stop the server running the prompt's graph, as sentences."""
    problems = []
    for node_id, node in api.items():
        label = f"node {node_id} ({node.get('class_type')})"
        schema = schemas.get(node.get("class_type"))
        if schema is None:
            problems.append(f"{label}: unknown node type")
            continue
        specs = all_inputs(schema)
        problems += [f"{label}: required input '{name}' is missing"
                     for name in _inputs(schema, "required") if name not in node["inputs"]]
        for name, value in node["inputs"].items():
            if name not in specs:
                problems.append(f"{label}: '{name}' is not an input of this node type")
                continue
            if not is_link(value):
                continue
            source = api.get(value[0])
            if source is None:
                problems.append(f"{label}: input '{name}' links to missing node {value[0]}")
                continue
            outputs = (schemas.get(source["class_type"]) or {}).get("output")
            if outputs is None:
                continue  # the unknown source type is reported on its own
            if not 0 <= value[1] < len(outputs):
                problems.append(f"{label}: input '{name}' links to output {value[1]} of node {value[0]} "
                                f"({source['class_type']}), which has {len(outputs)} outputs")
                continue
            output_type, input_type = spec_type(outputs[value[1]]), spec_type(specs[name])
            if not types_match(output_type, input_type):
                problems.append(f"{label}: input '{name}' takes {input_type} but node {value[0]} "
                                f"({source['class_type']}) output {value[1]} gives {output_type}")
    return problems
