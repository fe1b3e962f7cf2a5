"""The version tree of one model, laid out for drawing (the web UI, notebooks).

Which boxes and arrows exist is :mod:`dmv.reports.tree`'s (exactly the recorded edges),
and where they go is :func:`dmv.reports.tree.arrange`'s — the same arrangement ``dmv
tree`` prints. This module turns that arrangement into coordinates: three stages
top to bottom (experiments, development, production); in development one band per
interface (Y) with logic changes flowing left to right and data changes stacked
below, in production one band per release generation. The number of columns is
chosen so the drawing fits a 1,280 px page: long rows wrap, deep stacks collapse
into a group whose link expands it (``?expand=0.1.3``; no script needed).

Arrows are thin orthogonal lines routed through the gaps between columns and the
channel above each line of boxes, so they never cross a box; each is labelled
just above the box it leads to. Pure: ``templates/_tree.html`` draws the result.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from dmv.reports.tree_arrange import Slot, arrange
from dmv.version import ExperimentLabel, Version, changes_between

if TYPE_CHECKING:
    from dmv.reports.tree import Node, Tree

__all__ = [
    "Arrow",
    "Box",
    "Drawing",
    "Stage",
    "change_between",
    "layout",
    "number_parts",
]

WIDTH = 1228  # what the page's main column leaves for the drawing at 1,280 px
CHAR_W = 7.3  # one character of the 12px monospace font in the boxes
MIN_BOX_W = 120
BOX_H = 30
LABEL_H = 15  # room above a box for the label of the arrow into it
NOTE_H = 14  # room below a box for its runs and aliases
CHANNEL = 10  # room above each line of boxes for arrows running across
PITCH_Y = LABEL_H + BOX_H + NOTE_H + 4
GAP_X = 40
INDENT = 14  # a data branch sits this far right of the version above it
GUTTER = 104  # the band titles, left of the boxes
STAGE_HEAD = 24

#: What a change label means, for tooltips and the legend.
CHANGE_HELP = {
    "logic": "change in library, hyperparameter or code (Z)",
    "interface": "change in input or output (Y)",
    "data": "change in data retrieval or stored split (DATA.SPLIT)",
    "release": "released to production (X ≥ 1)",
    "promote": "an experiment run numbered as this version",
}


@dataclass(frozen=True)
class Box:
    """One version, one experiment label, or one collapsed group, drawn as a box."""

    kind: str  # experiment | prerelease | release | group
    x: float
    y: float
    w: float
    parts: tuple[tuple[str, str], ...]  # (css part, text): coloured spans of the label
    version: str  # X.Y.Z-DATA.SPLIT, x.x.x-DATA.SPLIT, or the group's key
    href: str | None = None
    state: str = ""
    note: str = ""  # runs and aliases, or the experiment run ids
    members: tuple[str, ...] = ()  # what a group (or an experiment box) holds

    @property
    def h(self) -> int:
        return BOX_H

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass(frozen=True)
class Arrow:
    """A recorded edge drawn as a routed line with its label above the target box."""

    change: str  # logic | interface | data joined by "+"; release; promote
    points: str  # polyline points for SVG
    label_x: float
    label_y: float
    anchor: str  # text-anchor of the label
    source: str
    target: str

    @property
    def label(self) -> str:
        return "promoted" if self.change == "promote" else self.change.replace("+", " + ")

    @property
    def kind(self) -> str:
        return self.change.split("+")[0]

    @property
    def help(self) -> str:
        what = "; ".join(CHANGE_HELP.get(c, c) for c in self.change.split("+") if c)
        return f"{self.source} → {self.target}: {what}"


@dataclass(frozen=True)
class Stage:
    """One horizontal band of the drawing: a stage, or a band within one."""

    title: str
    y: float
    h: float
    empty: str = ""
    level: int = 0  # 0: a stage; 1: an interface or release generation within it


@dataclass
class Drawing:
    width: float
    height: float
    stages: list[Stage] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    columns: int = 1
    collapsed: int = 0  # versions hidden in collapsed groups

    @property
    def bands(self) -> list[Stage]:
        return [s for s in self.stages if s.level == 1]


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
    """The line under a box: its runs, aliases, and "deprecated" when it is."""
    bits = []
    if node.runs:
        bits.append(" ".join(node.runs) if len(node.runs) <= 3 else f"{len(node.runs)} runs")
    bits += [f"@{a}" for a in node.aliases]
    if node.state == "deprecated":
        bits.append("deprecated")
    bits += [f.upper() for f in node.flags]
    return " · ".join(bits)


def _points(*pts: tuple[float, float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)


def expand_href(expanded: Collection[str], key: str) -> str:
    keys = sorted({*expanded, key})
    return f"?expand={quote(','.join(keys))}#tree"


def layout(
    tree: Tree, href: dict[str, str], expand: Collection[str] = (), width: float = WIDTH
) -> Drawing:
    """Place a box for every node of ``tree`` (or its collapsed group) and an arrow
    for every edge. ``href`` maps a version number to its page."""
    labels = [n.label for n in tree.nodes]
    box_w = max([MIN_BOX_W, *(len(t) * CHAR_W + 18 for t in labels)])
    box_w = min(box_w, width - GUTTER - GAP_X)
    pitch_x = box_w + GAP_X
    # The right margin holds the arrows leaving the last column (half a gap).
    margin = GAP_X / 2 + 6
    max_cols = max(1, int((width - GUTTER - margin + GAP_X) // pitch_x))
    arrangement = arrange(tree, max_cols=max_cols, expand=expand)
    drawing = Drawing(
        width=GUTTER + max_cols * pitch_x - GAP_X + margin, height=0, columns=max_cols
    )
    nodes = {n.id: n for n in tree.nodes}

    line_top: dict[tuple[str, int], float] = {}
    y = 0.0
    stage_names = (
        ("experiment", "Experiment stage", "no experiment runs"),
        ("development", "Development stage", "no prerelease yet"),
        ("production", "Production stage", "nothing released"),
    )
    for stage, title, empty in stage_names:
        top = y
        y += STAGE_HEAD
        bands = [b for b in arrangement.bands if b.stage == stage]
        band_stages = []
        for band in bands:
            band_top = y
            for line, depth in enumerate(band.depths):
                line_top[(band.key, line)] = y
                y += CHANNEL + depth * PITCH_Y
            if stage != "experiment":
                band_stages.append(Stage(band.title, band_top, y - band_top, level=1))
        if not bands:
            y += 26
        drawing.stages.append(Stage(title, top, y - top, "" if bands else empty))
        drawing.stages.extend(band_stages)
        y += 6
    drawing.height = y

    def cell_x(slot: Slot) -> float:
        return GUTTER + slot.col * pitch_x

    def box_y(slot: Slot) -> float:
        return line_top[(slot.band, slot.line)] + CHANNEL + LABEL_H + slot.depth * PITCH_Y

    box_of: dict[str, tuple[Box, Slot]] = {}
    for slot in arrangement.slots:
        x = cell_x(slot) + (INDENT if slot.depth else 0)
        w = box_w - (INDENT if slot.depth else 0)
        by = box_y(slot)
        if slot.collapsed:
            drawing.collapsed += len(slot.ids)
            box = Box(
                "group",
                x,
                by,
                w,
                (("exp", f"+{len(slot.ids)} more · expand"),),
                slot.group,
                href=expand_href(expand, slot.group),
                members=slot.ids,
            )
        else:
            node = nodes[slot.ids[0]]
            if node.stage == "experiment":
                exp = ExperimentLabel.parse(node.label)
                data, split = exp.data or "x", exp.split or "x"
                parts = (
                    ("exp", "x.x.x"),
                    ("sep", "-"),
                    ("data", data),
                    ("sep", "."),
                    ("split", split),
                )
                ids = slot.ids
                note = ", ".join(ids) if len(ids) <= 4 else f"{ids[0]} … {ids[-1]} ({len(ids)})"
                box = Box("experiment", x, by, w, parts, node.label, "#experiments", "", note, ids)
            else:
                version = Version.parse_number(tree.model, node.id)
                box = Box(
                    "release" if node.stage == "production" else "prerelease",
                    x,
                    by,
                    w,
                    number_parts(version),
                    node.id,
                    href=href.get(node.id),
                    state=node.state,
                    note=_note(node),
                )
        drawing.boxes.append(box)
        for i in slot.ids:
            box_of[i] = (box, slot)

    for edge in tree.edges:
        if edge.source not in box_of or edge.target not in box_of:
            continue
        (a, sa), (b, sb) = box_of[edge.source], box_of[edge.target]
        if b.kind == "group" or a is b:
            continue  # inside a collapsed group: the group stands for it
        points = _route(a, sa, b, sb, cell_x, line_top, box_w)
        change = "+".join(edge.changes)
        if edge.kind == "promote":
            label = (b.x + b.w - 2, b.y - 4, "end")
        else:
            label = (b.x + 2, b.y - 4, "start")
        drawing.arrows.append(
            Arrow(change, points, label[0], label[1], label[2], edge.source, edge.target)
        )
    return drawing


def _route(
    a: Box,
    sa: Slot,
    b: Box,
    sb: Slot,
    cell_x: Callable[[Slot], float],
    line_top: dict[tuple[str, int], float],
    box_w: float,
) -> str:
    """Orthogonal points from box ``a`` to box ``b`` that stay in gaps and channels."""
    ay, by = a.y + BOX_H / 2, b.y + BOX_H / 2
    same_line = (sa.band, sa.line) == (sb.band, sb.line)
    if same_line and sa.col == sb.col and sb.depth > sa.depth:
        # A data branch: down the left edge of the stack, into the box below.
        rail = cell_x(sa) + 7
        start = [(rail, a.y + BOX_H)] if sa.depth == 0 else [(a.x, ay), (rail, ay)]
        return _points(*start, (rail, by), (b.x, by))
    out_x = cell_x(sa) + box_w
    if same_line and sb.col == sa.col + 1:
        mid = out_x + GAP_X / 2
        if abs(ay - by) < 0.5:
            return _points((out_x, ay), (b.x, by))
        return _points((out_x, ay), (mid, ay), (mid, by), (b.x, by))
    channel = line_top[(sb.band, sb.line)] + CHANNEL / 2
    right = out_x + GAP_X / 2
    left = cell_x(sb) - GAP_X / 2
    return _points(
        (out_x, ay), (right, ay), (right, channel), (left, channel), (left, by), (b.x, by)
    )


def standalone_svg(tree: Tree) -> str:
    """The tree as one self-contained SVG with its styles (a notebook's ``_repr_html_``)."""
    from pathlib import Path
    from types import SimpleNamespace

    import jinja2

    here = Path(__file__).parents[1] / "server" / "ui"  # the web UI's templates and styles
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(here / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    css = (here / "static" / "app.css").read_text(encoding="utf-8")
    # The colour variables and the tree's own rules; nothing that styles a page.
    keep = [line for line in css.splitlines() if line.lstrip().startswith(("--", "svg.tree"))]
    variables = "\n".join(line for line in keep if line.lstrip().startswith("--"))
    rules = "\n".join(line for line in keep if not line.lstrip().startswith("--"))
    drawing = layout(tree, {}, expand={"all"})
    svg = env.get_template("_tree.html").render(
        tree=drawing, model=SimpleNamespace(name=tree.model)
    )
    style = f"<style>.dmv-tree {{ {variables} }}\n{rules}</style>"
    return f'<div class="dmv-tree">{style}{svg}</div>'
