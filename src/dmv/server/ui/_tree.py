"""The version tree of one model drawn as ``seed/diagram1.png`` draws it.

Which boxes and arrows exist and what each arrow says is :mod:`dmv.tree`'s, the
same tree ``dmv tree`` prints and the API returns; this module only draws it.
Three stages, top to bottom: experiment runs (one box per ``x.x.x-DATA.SPLIT``),
prereleases (X = 0) left to right in the tree's order, and releases (X ≥ 1)
below the prerelease their arrow comes from (a release with none gets a column
of its own). An arrow between neighbouring prereleases is drawn between them;
one that skips columns arches over the boxes in between. The arrow from the
experiment stage is drawn without a label, as the diagram draws it.

Pure: it takes a :class:`dmv.tree.Tree` and returns boxes and arrows with
coordinates, which ``templates/_tree.html`` turns into inline SVG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dmv.tree import Node, Tree, changes_between
from dmv.version import Version

__all__ = ["Arrow", "Box", "Drawing", "Stage", "change_between", "layout", "number_parts"]

CHAR_W = 7.9  # width of one character of the 13px monospace font used in boxes
BOX_H = 50
MIN_BOX_W = 150
GAP_X = 120  # room for a horizontal arrow and its label
ROW_H = 124  # one stage (or one more row of releases): box, aliases line, arrow room
BOX_TOP = 30  # the box's offset inside its row
GUTTER = 150  # the stage names, left of the boxes

#: What a change label means, for tooltips and the legend.
CHANGE_HELP = {
    "logic": "change in library, hyperparameter or code (Z)",
    "interface": "change in input or output (Y)",
    "data": "change in data retrieval or stored split (DATA.SPLIT)",
    "release": "released to production (X ≥ 1)",
}


@dataclass(frozen=True)
class Box:
    """One version (or one experiment label) drawn as a box."""

    kind: str  # experiment | prerelease | release
    x: float
    y: float
    w: float
    title: str  # the model name, or "Experiment runs"
    parts: tuple[tuple[str, str], ...]  # (css part, text): coloured spans of the number
    version: str  # X.Y.Z-DATA.SPLIT, or x.x.x-DATA.SPLIT for experiments
    href: str | None = None
    state: str = ""
    note: str = ""  # aliases, or the experiment run ids

    @property
    def h(self) -> int:
        return BOX_H

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass(frozen=True)
class Arrow:
    """A block arrow between two boxes with its label."""

    change: str  # logic | interface | data, joined by "+"; release; or "" (first version)
    points: str  # polygon points for SVG
    label_x: float
    label_y: float
    anchor: str  # text-anchor of the label
    source: str
    target: str

    @property
    def label(self) -> str:
        return self.change.replace("+", " + ")

    @property
    def help(self) -> str:
        return "; ".join(CHANGE_HELP.get(c, c) for c in self.change.split("+") if c)


@dataclass(frozen=True)
class Stage:
    """One horizontal band of the tree: its name, extent and a note when empty."""

    title: str
    y: float
    h: float
    empty: str


@dataclass
class Drawing:
    width: float
    height: float
    stages: list[Stage] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)


def change_between(a: Version, b: Version) -> str:
    """What changed from ``a`` to ``b`` as an arrow's ``data-change``: "logic",
    "interface+data", "release"… (the diff page uses it for any two versions)."""
    return "+".join(changes_between(a, b))


def number_parts(v: Version) -> tuple[tuple[str, str], ...]:
    """The number ``X.Y.Z-DATA.SPLIT`` as spans, each tagged with its part's colour class."""
    return (
        ("x", str(v.x)),
        ("sep", "."),
        ("y", str(v.y)),
        ("sep", "."),
        ("z", str(v.z)),
        ("sep", "-"),
        ("data", v.data),
        ("sep", "."),
        ("split", v.split),
    )


def _note(node: Node) -> str:
    """The line under a box: its aliases, and "deprecated" when it is."""
    bits = [f"@{a}" for a in node.aliases]
    if node.state == "deprecated":
        bits.append("deprecated")
    return " ".join(bits)


def _box_w(*texts: str) -> float:
    return max(MIN_BOX_W, max(len(t) for t in texts) * CHAR_W + 28)


def _right_arrow(x0: float, x1: float, cy: float) -> str:
    """A block arrow pointing right from ``x0`` to ``x1`` centred on ``cy`` (as the seed's)."""
    head = min(26.0, (x1 - x0) / 2)
    return _points(
        (x0, cy - 9),
        (x1 - head, cy - 9),
        (x1 - head, cy - 20),
        (x1, cy),
        (x1 - head, cy + 20),
        (x1 - head, cy + 9),
        (x0, cy + 9),
    )


def _down_arrow(cx: float, y0: float, y1: float) -> str:
    head = min(18.0, (y1 - y0) / 2)
    return _points(
        (cx - 9, y0),
        (cx + 9, y0),
        (cx + 9, y1 - head),
        (cx + 20, y1 - head),
        (cx, y1),
        (cx - 20, y1 - head),
        (cx - 9, y1 - head),
    )


def _points(*pts: tuple[float, float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)


def _arch_arrow(x0: float, x1: float, y_boxes: float, level: int) -> tuple[str, float]:
    """A block arrow from the top of one box over the boxes between to the top of
    another (``x0`` < ``x1``), and the height of its bar, for the label above it.
    Arches whose spans overlap get higher levels, so their bars stay apart."""
    top = y_boxes - 28 - 18 * level  # the bar's centre
    tip = y_boxes - 2
    return (
        _points(
            (x0 - 4, tip),
            (x0 - 4, top - 4),
            (x1 + 4, top - 4),
            (x1 + 4, tip - 10),
            (x1 + 11, tip - 10),
            (x1, tip),
            (x1 - 11, tip - 10),
            (x1 - 4, tip - 10),
            (x1 - 4, top + 4),
            (x0 + 4, top + 4),
            (x0 + 4, tip),
        ),
        top,
    )


def _experiment_groups(nodes: list[Node]) -> list[tuple[str, str, str, list[str]]]:
    """Experiment runs grouped by their ``x.x.x-DATA.SPLIT`` label, in first-seen order:
    (label, DATA, SPLIT, run ids)."""
    groups: dict[str, list[str]] = {}
    for node in nodes:
        groups.setdefault(node.label, []).extend(node.runs or (node.id,))
    out = []
    for label, ids in groups.items():
        data, _, split = label.removeprefix("x.x.x-").partition(".")
        out.append((label, data, split, ids))
    return out


def layout(tree: Tree, href: dict[str, str]) -> Drawing:
    """Place a box for every node of ``tree`` and an arrow for every edge.

    ``href`` maps a version number to its page.
    """
    name = tree.model
    pre = tree.stage("development")
    rel = tree.stage("production")
    incoming = {e.target: e for e in tree.edges}

    # Columns: one per prerelease; a release goes under the prerelease its arrow
    # comes from (stacked when there are several), or into a column of its own.
    columns: list[list[Node]] = [[] for _ in pre]
    col_of = {n.id: i for i, n in enumerate(pre)}
    extra: list[Node] = []
    for r in rel:
        edge = incoming.get(r.id)
        i = col_of.get(edge.source) if edge is not None else None
        if i is None:
            extra.append(r)
        else:
            columns[i].append(r)
    columns.extend([r] for r in extra)
    n_cols = max(len(columns), 1)

    exp_groups = _experiment_groups(tree.stage("experiment"))
    col_w = [0.0] * max(n_cols, len(exp_groups))
    for i, n in enumerate(pre):
        col_w[i] = max(col_w[i], _box_w(name, n.label))
    for i, col in enumerate(columns):
        for r in col:
            col_w[i] = max(col_w[i], _box_w(name, r.label))
    for i, (label, *_) in enumerate(exp_groups):
        col_w[i] = max(col_w[i], _box_w("Experiment runs", label))
    col_w = [w or MIN_BOX_W for w in col_w]
    col_x = []
    x = float(GUTTER + 10)
    for w in col_w:
        col_x.append(x)
        x += w + GAP_X
    width = x - GAP_X + 80  # room for a "release" label right of the last column

    rows_prod = max([len(c) for c in columns] + [1])
    drawing = Drawing(width=width, height=3 * ROW_H + (rows_prod - 1) * ROW_H)
    y_exp, y_dev, y_prod = BOX_TOP, ROW_H + BOX_TOP, 2 * ROW_H + BOX_TOP
    drawing.stages = [
        Stage("Experiment stage", 0, ROW_H, "" if exp_groups else "no experiment runs"),
        Stage("Development stage", ROW_H, ROW_H, "" if pre else "no prerelease yet"),
        Stage("Production stage", 2 * ROW_H, rows_prod * ROW_H, "" if rel else "nothing released"),
    ]

    exp_box: dict[str, Box] = {}  # by experiment run id
    for i, (label, data, split, ids) in enumerate(exp_groups):
        parts = (("exp", "x.x.x"), ("sep", "-"), ("data", data), ("sep", "."), ("split", split))
        note = ", ".join(ids) if len(ids) <= 4 else f"{ids[0]} … {ids[-1]} ({len(ids)} runs)"
        box = Box(
            "experiment",
            col_x[i],
            y_exp,
            col_w[i],
            "Experiment runs",
            parts,
            label,
            href="#experiments",
            note=note,
        )
        drawing.boxes.append(box)
        exp_box.update(dict.fromkeys(ids, box))

    dev_boxes: list[Box] = []
    for i, n in enumerate(pre):
        version = Version.parse_number(name, n.id)
        box = Box(
            "prerelease",
            col_x[i],
            y_dev,
            col_w[i],
            name,
            number_parts(version),
            n.id,
            href=href.get(n.id),
            state=n.state,
            note=_note(n),
        )
        dev_boxes.append(box)
        drawing.boxes.append(box)

    arches: list[tuple[float, float]] = []  # the spans of arrows drawn over the boxes
    for i, n in enumerate(pre):
        edge = incoming.get(n.id)
        if edge is None:
            continue
        b = dev_boxes[i]
        if edge.source in exp_box:
            # Out of the experiment stage, as the diagram draws it: no label.
            a = exp_box[edge.source]
            cx = b.cx if abs(a.cx - b.cx) < 1 else a.cx
            drawing.arrows.append(
                Arrow(
                    "",
                    _down_arrow(cx, y_exp + BOX_H + 20, y_dev - 6),
                    cx + 26,
                    0,
                    "start",
                    a.version,
                    b.version,
                )
            )
            continue
        j = col_of.get(edge.source)
        if j is None:
            continue
        a = dev_boxes[j]
        change = "+".join(edge.changes)
        if j == i - 1:
            x0, x1 = a.x + a.w + 8, b.x - 8
            cy = y_dev + BOX_H / 2
            points, label_x, label_y = _right_arrow(x0, x1, cy), (x0 + x1) / 2, cy - 28
        else:
            x0, x1 = a.x + a.w - 28, b.x + 28
            level = sum(1 for s0, s1 in arches if s0 < x1 and x0 < s1)
            arches.append((x0, x1))
            points, top = _arch_arrow(x0, x1, y_dev, level)
            label_x, label_y = (x0 + x1) / 2, top - 8
        drawing.arrows.append(
            Arrow(change, points, label_x, label_y, "middle", a.version, b.version)
        )

    for i, col in enumerate(columns):
        above: Box | None = dev_boxes[i] if i < len(dev_boxes) else None
        for j, r in enumerate(col):
            y = y_prod + j * ROW_H
            box = Box(
                "release",
                col_x[i],
                y,
                col_w[i],
                name,
                number_parts(Version.parse_number(name, r.id)),
                r.id,
                href=href.get(r.id),
                state=r.state,
                note=_note(r),
            )
            drawing.boxes.append(box)
            edge = incoming.get(r.id)
            if above is not None and edge is not None:
                y0 = above.y + BOX_H + 20
                drawing.arrows.append(
                    Arrow(
                        "+".join(edge.changes),
                        _down_arrow(box.cx, y0, y - 6),
                        box.cx + 26,
                        (y0 + y) / 2 + 4,
                        "start",
                        edge.source,
                        r.id,
                    )
                )
            above = box
    return drawing
