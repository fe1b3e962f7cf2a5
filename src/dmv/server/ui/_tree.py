"""The version tree of one model, laid out as ``seed/diagram1.png`` draws it.

Three stages, top to bottom: experiment runs (``x.x.x-DATA.SPLIT``), prereleases
(X = 0) left to right in dmv's precedence, and releases (X ≥ 1) below the
prerelease they were released from. Every arrow between two consecutive
prereleases says what changed; release arrows say "release".

Pure: it takes registry records and returns boxes and arrows with coordinates,
which ``templates/_tree.html`` turns into inline SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dmv.registry.records import RunInfo, VersionInfo
from dmv.version import Version

__all__ = ["Arrow", "Box", "Stage", "Tree", "change_between", "layout"]

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
class Tree:
    width: float
    height: float
    stages: list[Stage] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)


def change_between(a: Version, b: Version) -> str:
    """What changed from ``a`` to ``b``: "logic", "interface+data", "release"…

    Between consecutive prereleases X never changes, so this is the label of
    each development arrow; the diff page uses it for any two versions.
    """
    parts = []
    if a.x != b.x:
        parts.append("release")
    if a.y != b.y:
        parts.append("interface")  # Z restarts at 0 with a new Y: no separate "logic"
    elif a.z != b.z:
        parts.append("logic")
    if (a.data, a.split) != (b.data, b.split):
        parts.append("data")
    return "+".join(parts)


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


def _note(v: VersionInfo) -> str:
    """The line under a box: its aliases, and "deprecated" when it is."""
    bits = [f"@{a}" for a in v.aliases]
    if v.state == "deprecated":
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


def _experiment_groups(experiments: Sequence[RunInfo]) -> list[tuple[str, str | None, list[str]]]:
    """Experiment runs grouped by their ``x.x.x-DATA.SPLIT`` label, in first-seen order."""
    groups: dict[tuple[str | None, str | None], list[str]] = {}
    for run in experiments:
        groups.setdefault((run.data, run.split), []).append(run.id)
    return [(d or "x", s, ids) for (d, s), ids in groups.items()]


def layout(
    name: str,
    versions: Sequence[VersionInfo],
    experiments: Sequence[RunInfo],
    released_from: dict[str, str],
    href: dict[str, str],
) -> Tree:
    """Place every box and arrow.

    ``versions`` in dmv's precedence; ``released_from`` maps a release's number to
    the prerelease number it was made from (when recorded); ``href`` maps a
    number to its page.
    """
    pre = [v for v in versions if v.version.x == 0]
    rel = [v for v in versions if v.version.x >= 1]

    # Columns: one per prerelease; releases go under their source's column, or,
    # when the source is unknown, under a prerelease with the same Y.Z-DATA.SPLIT,
    # or else into a column of their own at the right.
    columns: list[list[VersionInfo]] = [[] for _ in pre]
    col_of = {v.version.number: i for i, v in enumerate(pre)}
    same = {
        (v.version.y, v.version.z, v.version.data, v.version.split): i for i, v in enumerate(pre)
    }
    extra: list[VersionInfo] = []
    for r in rel:
        src = released_from.get(r.version.number)
        key = (r.version.y, r.version.z, r.version.data, r.version.split)
        i = col_of.get(src) if src is not None else same.get(key)
        if i is None:
            extra.append(r)
        else:
            columns[i].append(r)
    columns.extend([r] for r in extra)
    n_cols = max(len(columns), 1)

    exp_groups = _experiment_groups(experiments)
    col_w = [0.0] * max(n_cols, len(exp_groups))
    for i, v in enumerate(pre):
        col_w[i] = max(col_w[i], _box_w(name, v.version.number))
    for i, col in enumerate(columns):
        for r in col:
            col_w[i] = max(col_w[i], _box_w(name, r.version.number))
    for i, (d, s, _) in enumerate(exp_groups):
        col_w[i] = max(col_w[i], _box_w("Experiment runs", f"x.x.x-{d}.{s or 'x'}"))
    col_w = [w or MIN_BOX_W for w in col_w]
    col_x = []
    x = float(GUTTER + 10)
    for w in col_w:
        col_x.append(x)
        x += w + GAP_X
    width = x - GAP_X + 80  # room for a "release" label right of the last column

    rows_prod = max([len(c) for c in columns] + [1])
    tree = Tree(width=width, height=3 * ROW_H + (rows_prod - 1) * ROW_H)
    y_exp, y_dev, y_prod = BOX_TOP, ROW_H + BOX_TOP, 2 * ROW_H + BOX_TOP
    tree.stages = [
        Stage("Experiment stage", 0, ROW_H, "" if exp_groups else "no experiment runs"),
        Stage("Development stage", ROW_H, ROW_H, "" if pre else "no prerelease yet"),
        Stage("Production stage", 2 * ROW_H, rows_prod * ROW_H, "" if rel else "nothing released"),
    ]

    for i, (d, s, ids) in enumerate(exp_groups):
        label = f"x.x.x-{d}.{s or 'x'}"
        parts = (("exp", "x.x.x"), ("sep", "-"), ("data", d), ("sep", "."), ("split", s or "x"))
        note = ", ".join(ids) if len(ids) <= 4 else f"{ids[0]} … {ids[-1]} ({len(ids)} runs)"
        tree.boxes.append(
            Box(
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
        )

    dev_boxes: list[Box] = []
    for i, v in enumerate(pre):
        number = v.version.number
        box = Box(
            "prerelease",
            col_x[i],
            y_dev,
            col_w[i],
            name,
            number_parts(v.version),
            number,
            href=href.get(number),
            state=v.state,
            note=_note(v),
        )
        dev_boxes.append(box)
        tree.boxes.append(box)

    # The first development version comes out of the experiment stage.
    if exp_groups and dev_boxes:
        first = tree.boxes[0]
        target = dev_boxes[0]
        cx = target.cx if abs(first.cx - target.cx) < 1 else first.cx
        tree.arrows.append(
            Arrow(
                "",
                _down_arrow(cx, y_exp + BOX_H + 20, y_dev - 6),
                cx + 26,
                0,
                "start",
                first.version,
                target.version,
            )
        )

    for a, b, va, vb in zip(dev_boxes, dev_boxes[1:], pre, pre[1:], strict=False):
        change = change_between(va.version, vb.version)
        x0, x1 = a.x + a.w + 8, b.x - 8
        cy = y_dev + BOX_H / 2
        tree.arrows.append(
            Arrow(
                change,
                _right_arrow(x0, x1, cy),
                (x0 + x1) / 2,
                cy - 28,
                "middle",
                a.version,
                b.version,
            )
        )

    for i, col in enumerate(columns):
        above: Box | None = dev_boxes[i] if i < len(dev_boxes) else None
        for j, r in enumerate(col):
            number = r.version.number
            y = y_prod + j * ROW_H
            box = Box(
                "release",
                col_x[i],
                y,
                col_w[i],
                name,
                number_parts(r.version),
                number,
                href=href.get(number),
                state=r.state,
                note=_note(r),
            )
            tree.boxes.append(box)
            src = released_from.get(number) or (above.version if above is not None else "")
            if above is not None:
                y0 = above.y + BOX_H + 20
                tree.arrows.append(
                    Arrow(
                        "release",
                        _down_arrow(box.cx, y0, y - 6),
                        box.cx + 26,
                        (y0 + y) / 2 + 4,
                        "start",
                        src,
                        number,
                    )
                )
            above = box
    return tree
