"""A model's version tree, staged as the pattern's diagram draws it.

Experiment stage: unnumbered runs (``x.x.x-DATA.SPLIT``). Development stage:
prereleases in the order they were made, each arrow labelled with what changed
(``interface`` when Y moved, ``logic`` when Z moved, ``data`` when DATA or SPLIT
did). Production stage: releases, each drawn from the prerelease it was made
from (or, when that was not recorded, from the prerelease with the same
Y.Z-DATA.SPLIT). Pure: it takes what the registry returned and does no I/O.
The web UI draws this same tree (:mod:`dmv.server.ui._tree`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dmv.registry import RunInfo, VersionInfo
    from dmv.version import Version

__all__ = ["Edge", "Node", "Tree", "build_tree", "changes_between", "render_text"]


@dataclass(frozen=True)
class Node:
    id: str  # "0.1.0-0123.abcd", or "ex1" for an experiment
    label: str  # what the box shows: "0.1.0-0123.abcd" or "x.x.x-0123.abcd"
    stage: str  # experiment | development | production
    state: str = ""
    runs: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

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
    changes: tuple[str, ...]  # logic, interface, data, release, promote

    @property
    def label(self) -> str:
        return " + ".join(self.changes) or "retrain"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "changes": list(self.changes)}


@dataclass
class Tree:
    model: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def stage(self, name: str) -> list[Node]:
        return [n for n in self.nodes if n.stage == name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


def changes_between(a: Version, b: Version) -> tuple[str, ...]:
    """What moved from ``a`` to ``b``: release (X), interface (Y), logic (Z), data
    (DATA or SPLIT). Z restarts at 0 with a new Y, so interface implies no logic."""
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


def build_tree(
    model: str,
    versions: Sequence[VersionInfo],
    experiments: Sequence[RunInfo] = (),
    runs: dict[str, list[str]] | None = None,
) -> Tree:
    """The tree of ``model`` from its versions (any order) and its experiment runs.

    ``runs`` maps a version number to its run ids (``tr0``, …) when known.
    """
    tree = Tree(model)
    runs = runs or {}
    for ex in experiments:
        label = f"x.x.x-{ex.data or 'x'}.{ex.split or 'x'}"
        tree.nodes.append(Node(ex.id, label, "experiment", ex.status, (ex.id,)))
    development = sorted(
        (v for v in versions if v.version.x == 0), key=lambda v: (v.created_at, v.version)
    )
    for info in development:
        number = info.version.number
        tree.nodes.append(
            Node(
                number, number, "development", info.state, tuple(runs.get(number, ())), info.aliases
            )
        )
    for i, info in enumerate(development[1:], start=1):
        parent = _parent(info.version, [d.version for d in development[:i]])
        tree.edges.append(
            Edge(parent.number, info.version.number, changes_between(parent, info.version))
        )
    if experiments and development:
        tree.edges.append(Edge(experiments[0].id, development[0].version.number, ("promote",)))
    releases = sorted(
        (v for v in versions if v.version.x >= 1), key=lambda v: (v.created_at, v.version)
    )
    # A release whose source was not recorded is drawn from its twin: the
    # prerelease with the same Y.Z-DATA.SPLIT, when there is one.
    twins = {_twin_key(d.version): d.version.number for d in development}
    for info in releases:
        number = info.version.number
        tree.nodes.append(
            Node(
                number, number, "production", info.state, tuple(runs.get(number, ())), info.aliases
            )
        )
        source = info.released_from or twins.get(_twin_key(info.version))
        if source:
            tree.edges.append(Edge(source, number, ("release",)))
    return tree


def _twin_key(v: Version) -> tuple[int, int, str, str]:
    return (v.y, v.z, v.data, v.split)


def _parent(version: Version, earlier: list[Version]) -> Version:
    """The version ``version`` most likely grew from: the newest earlier one sharing the
    most (same Y.Z: only data moved; same Y: logic moved; else the newest: interface)."""
    for same in (
        lambda v: (v.y, v.z) == (version.y, version.z),
        lambda v: v.y == version.y,
        lambda v: True,
    ):
        matching = [v for v in earlier if same(v)]
        if matching:
            return matching[-1]
    return earlier[-1]


def render_text(tree: Tree) -> str:
    """The tree as plain text, stage by stage, arrows labelled with what changed."""
    lines = [f"{tree.model}", ""]
    incoming = {e.target: e for e in tree.edges}
    for stage, title in (
        ("experiment", "Experiment stage"),
        ("development", "Development stage"),
        ("production", "Production stage"),
    ):
        nodes = tree.stage(stage)
        lines.append(title)
        if not nodes:
            lines.append("  (none)")
        for node in nodes:
            edge = incoming.get(node.id)
            arrow = ""
            if edge is not None and stage != "experiment":
                # The diagram's arrow out of the experiment stage carries no label.
                label = "" if edge.changes == ("promote",) else edge.label
                arrow = f"  ◀─{label}── {edge.source}"
            extras = []
            if node.runs and stage != "experiment":
                extras.append(" ".join(node.runs))
            if node.aliases:
                extras.append("@" + ", @".join(node.aliases))
            if node.state == "deprecated":
                extras.append("deprecated")
            suffix = f"   [{'; '.join(extras)}]" if extras else ""
            lines.append(f"  {node.label}{arrow}{suffix}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
