"""The tree never draws an edge that did not happen: random histories, every drawn edge checked.

Histories are built from what the registry records: versions with their
fingerprints and creation order, experiment runs, promotions (experiment → the
version it was numbered as) and releases (``released_from``). The checks below
restate what a recorded edge is without using dmv.reports.tree's own helpers, then look
at the tree, the web UI's drawing of it and the text ``dmv tree`` prints.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import dmv
from dmv.registry.records import RunInfo, VersionInfo
from dmv.reports.tree import build_tree
from dmv.reports.tree_arrange import render_text
from dmv.reports.tree_layout import BOX_H, layout

DATA = ("a.b", "a.c", "d.e")


@st.composite
def histories(draw: Any) -> tuple[list[VersionInfo], list[RunInfo], list[tuple[str, str]]]:
    t = 0.0
    versions: dict[str, VersionInfo] = {}
    experiments: list[RunInfo] = []
    promotions: list[tuple[str, str]] = []
    generation = 0
    for _ in range(draw(st.integers(1, 28))):
        t += 1
        kind = draw(st.sampled_from(["version", "version", "version", "experiment", "release"]))
        if kind == "version" or not versions:
            y, z = draw(st.integers(0, 2)), draw(st.integers(0, 3))
            data, split = draw(st.sampled_from(DATA)).split(".")
            number = f"0.{y}.{z}-{data}.{split}"
            if number in versions:
                continue
            # One interface per Y and one logic per Y.Z, as derivation hands them out.
            versions[number] = VersionInfo(
                dmv.Version.parse_number("m", number),
                "prerelease",
                t,
                interface_fp=f"i{y}",
                logic_fp=f"l{y}.{z}",
            )
            if experiments and draw(st.booleans()):
                ex = draw(st.sampled_from(experiments))
                promotions.append((ex.id, number))
        elif kind == "experiment":
            data, split = draw(st.sampled_from(DATA)).split(".")
            run_id = f"ex{len(experiments) + 1}"
            experiments.append(
                RunInfo(run_id, "m", "experiment", "finished", None, data, split, {}, {}, t, None)
            )
        else:
            pre = [v for v in versions.values() if v.version.x == 0]
            source = draw(st.sampled_from(pre)).version
            generation += draw(st.integers(0, 1)) or (generation == 0)
            number = f"{generation}.{source.y}.{source.z}-{source.data}.{source.split}"
            if number in versions:
                continue
            recorded = source.number if draw(st.booleans()) else None
            versions[number] = VersionInfo(
                dmv.Version.parse_number("m", number), "released", t, released_from=recorded
            )
    return list(versions.values()), experiments, promotions


def _differs(a: VersionInfo, b: VersionInfo) -> set[str]:
    out = set()
    if a.interface_fp != b.interface_fp:
        out.add("interface")
    if a.logic_fp != b.logic_fp:
        out.add("logic")
    if (a.version.data, a.version.split) != (b.version.data, b.version.split):
        out.add("data")
    return out


def _crosses(points: str, box: Any) -> bool:
    """Whether the polyline enters the inside of ``box`` (its edges do not count)."""
    pts = [tuple(map(float, p.split(","))) for p in points.split()]
    x0, x1, y0, y1 = box.x + 0.5, box.x + box.w - 0.5, box.y + 0.5, box.y + BOX_H - 0.5
    for (ax, ay), (bx, by) in itertools.pairwise(pts):
        if ax == bx and x0 < ax < x1 and min(ay, by) < y1 and max(ay, by) > y0:
            return True
        if ay == by and y0 < ay < y1 and min(ax, bx) < x1 and max(ax, bx) > x0:
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(histories(), st.sampled_from([500.0, 900.0, 1228.0]))
def test_every_drawn_edge_is_a_recorded_one(history: Any, width: float) -> None:
    versions, experiments, promotions = history
    by_number = {v.version.number: v for v in versions}
    tree = build_tree("m", versions, experiments, promotions=promotions)
    parents: dict[str, int] = {}
    for e in tree.edges:
        if e.kind == "promote":
            assert (e.source, e.target) in promotions
        elif e.kind == "release":
            target = by_number[e.target]
            if target.released_from is not None:
                assert e.source == target.released_from
            else:  # not recorded: only 0.Y.Z-D.S can have been released as N.Y.Z-D.S
                assert e.source == "0." + e.target.split(".", 1)[1]
            assert by_number[e.source].version.x == 0
        else:
            a, b = by_number[e.source], by_number[e.target]
            assert a.version.x == b.version.x == 0 and a.created_at < b.created_at
            assert set(e.changes) == _differs(a, b)
            earlier = [v for v in versions if v.version.x == 0 and v.created_at < b.created_at]
            assert len(e.changes) == min(len(_differs(v, b)) for v in earlier)
            parents[e.target] = parents.get(e.target, 0) + 1
    assert all(n == 1 for n in parents.values())  # one derivation parent at most
    pre = sorted((v for v in versions if v.version.x == 0), key=lambda v: v.created_at)
    assert set(parents) == {v.version.number for v in pre[1:]}  # and every later one has one
    assert {(e.source, e.target) for e in tree.edges if e.kind == "promote"} == {
        p for p in promotions if p[1] in by_number
    }

    recorded = {(e.source, e.target, "+".join(e.changes)) for e in tree.edges}
    drawing = layout(tree, {}, width=width)
    drawn = {(a.source, a.target, a.change) for a in drawing.arrows}
    assert drawn <= recorded
    hidden = {i for b in drawing.boxes if b.kind == "group" for i in b.members}
    assert {r for r in recorded if r[1] not in hidden} == drawn
    assert drawing.width <= width
    for arrow in drawing.arrows:
        assert not any(_crosses(arrow.points, box) for box in drawing.boxes), arrow

    text = render_text(tree)
    for source, label, target in re.findall(r"(\S+) ──([a-z +]+?)─*▶ (\S+)", text):
        assert (source, target, label.replace(" + ", "+")) in recorded
