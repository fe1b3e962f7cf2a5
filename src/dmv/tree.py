"""A model's version tree: the versions and exactly the edges the registry recorded.

Nodes: unnumbered experiment runs (``x.x.x-DATA.SPLIT``), prereleases (X = 0) and
releases (X ≥ 1). Edges, and only these:

- **derivation**: a prerelease grew from the earlier prerelease whose recorded
  fingerprints (interface, logic, DATA.SPLIT) differ from its own in the fewest
  components — one, when the history is a chain of single changes; the arrow
  names every component that differs (``logic``, ``interface + data``…);
- **promote**: an experiment run numbered with :meth:`dmv.Project.promote`
  (recorded on the training run it became, as ``promoted_from``);
- **release**: a release from the prerelease it was made from (recorded as
  ``released_from``; for a registry that did not record it, the prerelease with
  the same Y.Z-DATA.SPLIT, which is the only one a release can come from).

Retraining a version adds runs (``tr0``, ``tr1``…) to its node, never an edge.

:func:`arrange` places the nodes for drawing — one row per interface (Y) with
logic changes flowing along it and data changes stacked below, one row per
release generation in the production lane — and is shared by ``dmv tree``
(:func:`render_text`) and the web UI (:mod:`dmv.server.ui._tree`). Pure: it takes
what the registry returned and does no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv.version import ExperimentLabel, check_name

if TYPE_CHECKING:
    from dmv.registry import Registry, RunInfo, VersionInfo
    from dmv.version import Version

__all__ = [
    "Arrangement",
    "Band",
    "Edge",
    "Node",
    "Slot",
    "Tree",
    "arrange",
    "build_tree",
    "changes_between",
    "model_tree",
    "render_text",
]

#: The kinds of edge a tree has; derivation edges carry their changed components instead.
EDGE_KINDS = ("derivation", "promote", "release")


@dataclass(frozen=True)
class Node:
    id: str  # "0.1.0-0123.abcd", or "ex1" for an experiment
    label: str  # what the box shows: "0.1.0-0123.abcd" or "x.x.x-0123.abcd"
    stage: str  # experiment | development | production
    state: str = ""
    runs: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "stage": self.stage,
            "state": self.state,
            "runs": list(self.runs),
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    changes: tuple[str, ...]  # logic, interface, data (a derivation); release; promote

    @property
    def kind(self) -> str:
        if self.changes in (("release",), ("promote",)):
            return self.changes[0]
        return "derivation"

    @property
    def label(self) -> str:
        return " + ".join(self.changes) or "retrain"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "kind": self.kind,
            "changes": list(self.changes),
        }


@dataclass
class Tree:
    model: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def stage(self, name: str) -> list[Node]:
        return [n for n in self.nodes if n.stage == name]

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def incoming(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.target == node_id]

    def _repr_html_(self) -> str:
        """In a notebook: the web UI's diagram (the text tree without the server extra)."""
        import html

        try:
            from dmv.tree_layout import standalone_svg
        except ImportError:
            return f"<pre>{html.escape(render_text(self))}</pre>"
        return standalone_svg(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


def changes_between(a: Version, b: Version) -> tuple[str, ...]:
    """What moved from ``a`` to ``b`` in the numbers: release (X), interface (Y), logic
    (Z), data (DATA or SPLIT). Z restarts at 0 with a new Y, so interface implies no logic."""
    out = []
    if a.x != b.x:
        out.append("release")
    if a.y != b.y:
        out.append("interface")
    elif a.z != b.z:
        out.append("logic")
    if (a.data, a.split) != (b.data, b.split):
        out.append("data")
    return tuple(out)


def recorded_changes(a: VersionInfo, b: VersionInfo) -> tuple[str, ...]:
    """The components whose recorded fingerprints differ between two prereleases.

    A version registered with an explicit number has no fingerprints; its Y and Z
    then stand for them (the same Y, the same interface; the same Y.Z, the same logic).
    """
    va, vb = a.version, b.version
    out = []
    if a.interface_fp and b.interface_fp:
        if a.interface_fp != b.interface_fp:
            out.append("interface")
    elif va.y != vb.y:
        out.append("interface")
    if a.logic_fp and b.logic_fp:
        if a.logic_fp != b.logic_fp:
            out.append("logic")
    elif va.y == vb.y and va.z != vb.z:
        out.append("logic")
    if (va.data, va.split) != (vb.data, vb.split):
        out.append("data")
    return tuple(out)


def derivation_parent(
    info: VersionInfo, earlier: Sequence[VersionInfo]
) -> tuple[VersionInfo, tuple[str, ...]] | None:
    """The earlier prerelease ``info`` grew from: fewest differing components, newest on a tie."""
    best: tuple[VersionInfo, tuple[str, ...]] | None = None
    for other in earlier:  # oldest first, so a later equal count wins
        changes = recorded_changes(other, info)
        if not changes:
            continue
        if best is None or len(changes) <= len(best[1]):
            best = (other, changes)
    return best


def build_tree(
    model: str,
    versions: Sequence[VersionInfo],
    experiments: Sequence[RunInfo] = (),
    runs: Mapping[str, Sequence[str]] | None = None,
    promotions: Iterable[tuple[str, str]] = (),
) -> Tree:
    """The tree of ``model`` from its versions (any order) and its experiment runs.

    ``runs`` maps a version number to its run ids (``tr0``, …) when known;
    ``promotions`` are the recorded (experiment run id, version number) pairs.
    """
    tree = Tree(model)
    runs = runs or {}
    for ex in experiments:
        label = str(ExperimentLabel(ex.data, ex.split))
        tree.nodes.append(
            Node(ex.id, label, "experiment", ex.status, (ex.id,), created_at=ex.started_at)
        )
    development = sorted(
        (v for v in versions if v.version.x == 0), key=lambda v: (v.created_at, v.version)
    )
    releases = sorted(
        (v for v in versions if v.version.x >= 1), key=lambda v: (v.created_at, v.version)
    )
    for info, stage in [(d, "development") for d in development] + [
        (r, "production") for r in releases
    ]:
        number = info.version.number
        tree.nodes.append(
            Node(
                number,
                number,
                stage,
                info.state,
                tuple(runs.get(number, ())),
                info.aliases,
                info.created_at,
            )
        )
    for i, info in enumerate(development):
        found = derivation_parent(info, development[:i])
        if found is not None:
            parent, changes = found
            tree.edges.append(Edge(parent.version.number, info.version.number, changes))
    known = {n.id for n in tree.nodes}
    for ex_id, number in promotions:
        if ex_id in known and number in known:
            tree.edges.append(Edge(ex_id, number, ("promote",)))
    # Releasing 0.Y.Z-D.S is the only way to make N.Y.Z-D.S, so without a record the
    # source is that prerelease.
    twins = {_twin_key(d.version): d.version.number for d in development}
    for info in releases:
        source = info.released_from or twins.get(_twin_key(info.version))
        if source and source in known:
            tree.edges.append(Edge(source, info.version.number, ("release",)))
    return tree


def _twin_key(v: Version) -> tuple[int, int, str, str]:
    return (v.y, v.z, v.data, v.split)


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
    from dmv.version import Version

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


def model_tree(registry: Registry, model: str) -> Tree:
    """The tree of ``model`` from the registry: its versions, runs, experiments, promotions."""
    versions = registry.list_versions(check_name(model))
    runs: dict[str, list[str]] = {}
    promotions: list[tuple[str, str]] = []
    for v in versions:
        if v.version.x != 0:
            continue
        for r in registry.list_runs(v.version):
            runs.setdefault(v.version.number, []).append(r.id)
            promoted = (r.meta or {}).get("promoted_from")
            if isinstance(promoted, str):
                promotions.append((promoted, v.version.number))
    for v in versions:
        if v.released_from:
            runs[v.version.number] = [v.serving_run] if v.serving_run else []
    experiments = registry.list_model_runs(model, kind="experiment")
    return build_tree(model, versions, experiments, runs, promotions)
