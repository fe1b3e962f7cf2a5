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

:func:`dmv.reports.tree_arrange.arrange` places the nodes for drawing — one row
per interface (Y) with logic changes flowing along it and data changes stacked
below, one row per release generation in the production lane — and is shared by
``dmv tree`` (:func:`~dmv.reports.tree_arrange.render_text`) and the web UI
(:mod:`dmv.reports.tree_layout`). Pure: it takes what the registry returned and
does no I/O.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dmv.reports.tree_arrange import render_text
from dmv.reports.tree_layout import standalone_svg
from dmv.version import ExperimentLabel, changes_between, check_name

if TYPE_CHECKING:
    from dmv.registry import RegistryStore, RunInfo, VersionInfo
    from dmv.version import Version

__all__ = [
    "Edge",
    "Node",
    "Tree",
    "build_tree",
    "changes_between",
    "model_tree",
    "with_branches",
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
    flags: tuple[str, ...] = ()  # VersionInfo.flags: dirty, unverified data, failed behaviour
    branch: str | None = None  # the version's git branch ([git] branch_pattern), if it exists

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "stage": self.stage,
            "state": self.state,
            "runs": list(self.runs),
            "aliases": list(self.aliases),
            "flags": list(self.flags),
            "branch": self.branch,
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
        try:
            return standalone_svg(self)
        except ImportError:  # no jinja2 (the server extra): the text tree
            return f"<pre>{html.escape(render_text(self))}</pre>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


def with_branches(tree: Tree, branches: dict[str, str]) -> Tree:
    """``tree`` with each node in ``branches`` (node id → branch name) showing its branch."""
    nodes = [replace(n, branch=branches.get(n.id)) for n in tree.nodes]
    return Tree(tree.model, nodes, tree.edges)


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
                tuple(info.flags),
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


def model_tree(registry: RegistryStore, model: str) -> Tree:
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
    # A listing knows only 'dirty'; a release's policy overrides are in its full record.
    versions = [registry.get_version(v.version) if v.released_from else v for v in versions]
    experiments = registry.list_model_runs(model, kind="experiment")
    return build_tree(model, versions, experiments, runs, promotions)
