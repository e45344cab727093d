"""API prompt -> the UI workflow the frontend opens: nodes laid out to be read, a note, groups.

Layout: columns by dependency depth, left to right, each as wide as its widest node (the frontend widens a
node to fit its title); each group's nodes form a band across the columns they use, bands stacked where they
would meet; the view opens scaled to show the whole graph. Sizes are the frontend's own for these nodes
(tests/host/test_frontend.py measures them in the real frontend and checks that nothing overlaps).
"""

from cli.workflow import (display_name, has_value_control, is_widget, ordered_inputs, spec_options, spec_type,
                          ui_widget_names)

NODE_WIDTH, TITLE_HEIGHT = 340, 30  # the frontend's default node width, and its title bar above pos
TITLE_CHAR_WIDTH, TITLE_PADDING = 7.5, 10  # how the frontend widens a node to fit a long title
COLUMN_GAP, ROW_GAP, MARGIN = 50, 30, 40
GROUP_PADDING, GROUP_TITLE = 15, 40  # around a group's nodes; its title bar
NOTE_SIZE = (520, 200)
VIEW = (1400, 780)  # the canvas area the graph must fit at open (a 1080p screen less ComfyUI's bars)
VIEW_ORIGIN = (80, 90)  # where the graph starts on screen: right of the side bar, below the top bars
GROUP_COLORS = ("#3f789e", "#8a8a3f", "#b06634", "#6b8f4e", "#7c5a96", "#4e8f8a")


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def all_inputs(schema: dict) -> dict:
    return {name: spec for name, spec, _ in ordered_inputs(schema)}


def combo_choices(spec) -> list | None:
    """A combo's choices in either spelling (``[[...]]`` or ``["COMBO", {"options": [...]}]``); None: no combo."""
    return spec[0] if isinstance(spec[0], (list, tuple)) else spec_options(spec).get("options")


def _depths(api: dict) -> dict:
    """Longest chain of links leading into each node: its column in the layout."""
    depths = {}

    def depth(node_id, seen=()):
        if node_id not in depths:
            if node_id in seen:
                raise ValueError(f"node {node_id}: its inputs form a cycle")
            sources = [v[0] for v in api[node_id]["inputs"].values() if is_link(v) and v[0] in api]
            depths[node_id] = 1 + max((depth(s, seen + (node_id,)) for s in sources), default=-1)
        return depths[node_id]

    return {node_id: depth(node_id) for node_id in api}


def _widget_default(spec):
    options, choices = spec_options(spec), combo_choices(spec)
    if "default" in options:
        return options["default"]
    return choices[0] if choices else {"INT": 0, "FLOAT": 0.0, "BOOLEAN": False}.get(spec_type(spec), "")


def _ui_widgets_values(inputs: dict, schema: dict) -> list:
    """widgets_values for an API node's inputs; a linked widget keeps its default underneath."""
    specs, names = all_inputs(schema), ui_widget_names(schema)
    values = []
    for previous, name in zip([None] + names, names):
        if name is not None:
            value = inputs.get(name)
            values.append(_widget_default(specs[name]) if value is None or is_link(value) else value)
        elif previous is not None and has_value_control(previous, specs[previous]):
            values.append("fixed")  # the frontend's own value after a seed: its control mode
        else:
            values.append("image")  # the upload button's
    return values


def _ui_sockets(node_id: str, api: dict, schemas: dict, nodes: dict, links: list) -> list:
    """The node's input slots (links, and widgets turned into sockets); adds its links to `links` and to the
    outputs of its source nodes in `nodes`."""
    inputs = api[node_id]["inputs"]
    sockets = []
    for name, spec, _ in ordered_inputs(schemas[api[node_id]["class_type"]]):
        value = inputs.get(name)
        if is_widget(spec) and not is_link(value):
            continue
        socket = {"name": name, "type": spec_type(spec), "link": None}
        if is_widget(spec):
            socket["widget"] = {"name": name}
        if is_link(value):
            source_outputs = nodes[value[0]]["outputs"]
            if value[1] >= len(source_outputs):
                raise ValueError(f"node {value[0]}: has no output {value[1]}")
            output = source_outputs[value[1]]
            socket["link"] = len(links) + 1
            output["links"].append(socket["link"])
            output["slot_index"] = value[1]
            links.append([socket["link"], int(value[0]), value[1], int(node_id), len(sockets), output["type"]])
        sockets.append(socket)
    return sockets


def _check(node_id: str, api: dict, schemas: dict) -> None:
    class_type = api[node_id]["class_type"]
    if class_type not in schemas:
        raise ValueError(f"node {node_id}: unknown node type '{class_type}'")
    specs = all_inputs(schemas[class_type])
    for name, value in api[node_id]["inputs"].items():
        if name not in specs:
            raise ValueError(f"node {node_id} ({class_type}): '{name}' is not an input of {class_type}")
        if is_link(value) and value[0] not in api:
            raise ValueError(f"node {node_id} ({class_type}): input '{name}' links to missing node {value[0]}")


def _ui_node(node_id: str, order: int, api: dict, schemas: dict, nodes: dict, links: list) -> dict:
    entry = api[node_id]
    class_type = entry["class_type"]
    schema = schemas[class_type]
    specs = all_inputs(schema)
    sockets = _ui_sockets(node_id, api, schemas, nodes, links)
    outputs = schema.get("output") or []
    names = schema.get("output_name") or outputs
    ui_outputs = [{"name": names[i], "type": spec_type(t), "links": []} for i, t in enumerate(outputs)]
    title = entry.get("_meta", {}).get("title") or display_name(schema, class_type)
    widget_count = sum(is_widget(spec) for spec in specs.values())
    multiline = sum(bool(spec_options(spec).get("multiline")) for spec in specs.values())
    width = max(NODE_WIDTH, round(TITLE_CHAR_WIDTH * len(title) + TITLE_PADDING))
    height = 30 + 22 * max(len(sockets), len(ui_outputs)) + 26 * widget_count + 90 * multiline
    node = {
        "id": int(node_id), "type": class_type, "pos": [0, 0], "size": [width, height],
        "flags": {}, "order": order, "mode": 0, "inputs": sockets, "outputs": ui_outputs,
        "properties": {"Node name for S&R": class_type},
        "widgets_values": _ui_widgets_values(entry["inputs"], schema),
    }
    if title != display_name(schema, class_type):
        node["title"] = title
    return node


def _place(nodes: dict, depths: dict, band_of: dict, band_titles: list, top: float) -> list:
    """Set every node's pos; returns the groups (one per titled band) around their nodes."""
    column_x, x = {}, MARGIN
    for depth in sorted(set(depths.values())):
        column_x[depth] = x
        x += max(node["size"][0] for i, node in nodes.items() if depths[i] == depth) + COLUMN_GAP
    skyline = dict.fromkeys(column_x, top)  # lowest free y in each column
    groups = []
    for band, title in enumerate(band_titles):
        members = [i for i in nodes if band_of[i] == band]
        if not members:
            continue
        span = range(min(depths[i] for i in members), max(depths[i] for i in members) + 1)
        band_top = max(skyline[d] for d in span if d in skyline)
        column_y = {d: band_top + GROUP_TITLE + TITLE_HEIGHT for d in span}
        for node_id in members:
            depth = depths[node_id]
            nodes[node_id]["pos"] = [column_x[depth], column_y[depth]]
            column_y[depth] += nodes[node_id]["size"][1] + TITLE_HEIGHT + ROW_GAP
        bottom = max(column_y.values()) - ROW_GAP + GROUP_PADDING
        left = min(column_x[depths[i]] for i in members) - GROUP_PADDING
        right = max(column_x[depths[i]] + nodes[i]["size"][0] for i in members) + GROUP_PADDING
        skyline.update(dict.fromkeys(span, bottom + ROW_GAP))
        if title:
            groups.append({"title": title, "bounding": [left, band_top, right - left, bottom - band_top],
                           "color": GROUP_COLORS[len(groups) % len(GROUP_COLORS)], "font_size": 24, "flags": {}})
    return groups


def api_to_ui(api: dict, schemas: dict, note: str | None = None, bands: list | None = None) -> dict:
    """A workflow the frontend loads, from an API prompt. ``note``: Markdown shown in a note node at the top
    left. ``bands``: ``[(group title, {class types})]`` top to bottom; a node in none goes in a last, untitled one.
    """
    bands = list(bands or [])
    depths = _depths(api)
    ids = sorted(api, key=lambda i: (depths[i], int(i)))  # each node's sources before it
    for node_id in ids:
        _check(node_id, api, schemas)
    nodes, links = {}, []
    for order, node_id in enumerate(ids):
        nodes[node_id] = _ui_node(node_id, order, api, schemas, nodes, links)
    band_of = {i: next((b for b, (_, types) in enumerate(bands) if api[i]["class_type"] in types), len(bands))
               for i in nodes}
    top = MARGIN + (NOTE_SIZE[1] + TITLE_HEIGHT + ROW_GAP if note else 0)
    groups = _place(nodes, depths, band_of, [title for title, _ in bands] + [None], top)
    ui_nodes = list(nodes.values())
    last_id = max((int(i) for i in api), default=0)
    if note:
        last_id += 1
        ui_nodes.append({"id": last_id, "type": "MarkdownNote", "pos": [MARGIN, MARGIN + TITLE_HEIGHT],
                         "size": list(NOTE_SIZE), "flags": {}, "order": len(ui_nodes), "mode": 0, "inputs": [],
                         "outputs": [], "properties": {}, "widgets_values": [note], "title": "About this workflow",
                         "color": "#432", "bgcolor": "#653"})
    return {"last_node_id": last_id, "last_link_id": len(links), "nodes": ui_nodes, "links": links, "groups": groups,
            "config": {}, "extra": {"ds": _view(ui_nodes, groups)}, "version": 0.4}


def _view(nodes: list, groups: list) -> dict:
    """The canvas scale and offset that show everything at open, clear of the frontend's bars."""
    boxes = [(n["pos"][0], n["pos"][1] - TITLE_HEIGHT, n["size"][0], n["size"][1] + TITLE_HEIGHT) for n in nodes]
    boxes += [g["bounding"] for g in groups]  # (left, top, width, height)
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    width, height = max(b[0] + b[2] for b in boxes) - left, max(b[1] + b[3] for b in boxes) - top
    scale = round(min(1.0, VIEW[0] / width, VIEW[1] / height), 3)
    # The canvas draws a point at (pos + offset) * scale.
    return {"scale": scale, "offset": [round(VIEW_ORIGIN[0] / scale - left), round(VIEW_ORIGIN[1] / scale - top)]}
