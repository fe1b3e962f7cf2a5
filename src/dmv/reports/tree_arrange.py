"""The version tree arranged for drawing: stages, bands and slots; and as text (``dmv tree``).

:func:`arrange` decides where each node of a :class:`~dmv.reports.tree.Tree` goes, the
same for the text tree and the web UI's diagram (:mod:`dmv.reports.tree_layout`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dmv.version import Version

if TYPE_CHECKING:
    from dmv.reports.tree import Node, Tree

__all__ = ["Arrangement", "Band", "Slot", "arrange", "render_text"]


# -- arranging the tree for drawing -------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One place in the drawing: a node, or a collapsed group of nodes."""

    band: str  # the key of the band (row group) it is in
    line: int  # the wrapped line within the band
    col: int
    depth: int  # 0 for a cell's first version; 1, 2… for the data branches below it
    ids: tuple[str, ...]  # one node, or the nodes of a collapsed group
    group: str = ""  # for a collapsed group: the key that expands it

    @property
    def collapsed(self) -> bool:
        return bool(self.group)


@dataclass
class Band:
    """A row group: experiment runs, one interface (Y), or one release generation (X)."""

    key: str  # "experiments", "y0", "x1"
    stage: str  # experiment | development | production
    title: str
    depths: list[int] = field(default_factory=list)  # per line: stack depth (≥ 1)


@dataclass
class Arrangement:
    bands: list[Band] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    max_cols: int = 1

    def slot_of(self) -> dict[str, Slot]:
        """Where each node is drawn (a collapsed node: in its group's slot)."""
        return {i: s for s in self.slots for i in s.ids}


def arrange(
    tree: Tree,
    max_cols: int = 6,
    max_stack: int = 4,
    expand: Collection[str] = (),
) -> Arrangement:
    """Place every node of ``tree``: bands of lines of columns of stacks.

    Experiments: one cell per ``x.x.x-DATA.SPLIT`` label. Development: one band per
    interface Y, one column per logic Z, the versions of one Y.Z (data changes)
    stacked below the first. Production: one band per release generation X, in the
    order they were made. A line holds at most ``max_cols`` columns (more wrap onto
    the next line); a stack deeper than ``max_stack`` keeps its first and newest
    versions and collapses the middle into one group, unless its key ("0.1.3") is
    in ``expand`` (or ``expand`` holds "all").
    """
    max_cols = max(1, max_cols)
    max_stack = max(3, max_stack)
    out = Arrangement(max_cols=max_cols)

    def place(band: Band, cells: Sequence[Sequence[Slot | tuple[str, ...]]]) -> None:
        depths: dict[int, int] = {}
        for i, stack in enumerate(cells):
            line, col = divmod(i, max_cols)
            for depth, item in enumerate(stack):
                if isinstance(item, Slot):
                    slot = Slot(band.key, line, col, depth, item.ids, item.group)
                else:
                    slot = Slot(band.key, line, col, depth, item)
                out.slots.append(slot)
            depths[line] = max(depths.get(line, 1), len(stack))
        band.depths = [depths[k] for k in sorted(depths)] or [1]
        out.bands.append(band)

    groups: dict[str, list[str]] = {}
    for n in tree.stage("experiment"):
        groups.setdefault(n.label, []).append(n.id)
    if groups:
        place(
            Band("experiments", "experiment", "experiments"),
            [[tuple(ids)] for ids in groups.values()],
        )

    dev = tree.stage("development")
    by_y: dict[int, dict[int, list[Node]]] = {}
    for n in dev:
        v = Version.parse_number(tree.model, n.id)
        by_y.setdefault(v.y, {}).setdefault(v.z, []).append(n)
    for y in sorted(by_y):
        cells: list[list[Slot | tuple[str, ...]]] = []
        for z in sorted(by_y[y]):
            nodes = sorted(by_y[y][z], key=lambda n: n.created_at)
            key = f"0.{y}.{z}"
            stack: list[Slot | tuple[str, ...]] = [(n.id,) for n in nodes]
            if len(nodes) > max_stack and key not in expand and "all" not in expand:
                keep = max_stack - 2  # the first, the group, then the newest
                hidden = tuple(n.id for n in nodes[1 : len(nodes) - keep])
                stack = [
                    (nodes[0].id,),
                    Slot("", 0, 0, 0, hidden, key),
                    *[(n.id,) for n in nodes[len(nodes) - keep :]],
                ]
            cells.append(stack)
        place(Band(f"y{y}", "development", f"interface {y}"), cells)

    by_x: dict[int, list[Node]] = {}
    for n in tree.stage("production"):
        by_x.setdefault(int(n.id.split(".", 1)[0]), []).append(n)
    for x in sorted(by_x):
        nodes = sorted(by_x[x], key=lambda n: n.created_at)
        place(Band(f"x{x}", "production", f"release {x}"), [[(n.id,)] for n in nodes])
    return out


# -- text -----------------------------------------------------------------------------


def _extras(node: Node) -> str:
    bits = []
    if node.runs and node.stage != "experiment":
        bits.append(" ".join(node.runs))
    if node.aliases:
        bits.append("@" + ", @".join(node.aliases))
    if node.state == "deprecated":
        bits.append("deprecated")
    bits += [f.upper() for f in node.flags]
    if node.branch:
        bits.append(f"branch {node.branch}")
    return f"   [{'; '.join(bits)}]" if bits else ""


def render_text(tree: Tree) -> str:
    """The tree as plain text, left to right: one line per node, ``SOURCE ──change──▶ NODE``.

    Grouped as the web UI draws it: experiments, then one group per interface (Y),
    then one per release generation (X). A node nothing led to starts its line with
    ``●``; promotions are named after the node (``◀ promoted from ex3``).
    """
    lines = [tree.model, ""]
    arrangement = arrange(tree, max_cols=10**6, max_stack=10**6)
    by_band: dict[str, list[Slot]] = {}
    for slot in arrangement.slots:
        by_band.setdefault(slot.band, []).append(slot)
    sources = [e.source for e in tree.edges if e.kind != "promote"]
    width = max([len(s) for s in sources] + [1])
    arrow_w = max([len(e.label) for e in tree.edges if e.kind != "promote"] + [0]) + 6
    stage_titles = {
        "experiment": "Experiment stage",
        "development": "Development stage",
        "production": "Production stage",
    }
    for stage, title in stage_titles.items():
        lines.append(title)
        bands = [b for b in arrangement.bands if b.stage == stage]
        if not bands:
            lines.append("  (none)")
        for band in bands:
            if stage == "experiment":
                for slot in by_band[band.key]:
                    label = tree.node(slot.ids[0]).label
                    lines.append(f"  {label}   [{', '.join(slot.ids)}]")
                continue
            lines.append(f"  {band.title}")
            slots = sorted(by_band[band.key], key=lambda s: (s.line, s.col, s.depth))
            for slot in slots:
                node = tree.node(slot.ids[0])
                incoming = tree.incoming(node.id)
                main = next((e for e in incoming if e.kind != "promote"), None)
                if main is None:
                    lead = "●".rjust(width) + " " + " " * arrow_w
                else:
                    bar = f"──{main.label}".ljust(arrow_w - 2, "─") + "▶ "
                    lead = main.source.rjust(width) + " " + bar
                promoted = [e.source for e in incoming if e.kind == "promote"]
                note = f"   ◀ promoted from {', '.join(promoted)}" if promoted else ""
                lines.append(f"    {lead}{node.label}{_extras(node)}{note}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
