"""dmv.reports.tree: which boxes and arrows a model's version tree has, and what each arrow says.

Mostly pure: built from registry records made here (one test uses a real project).
The web UI draws this same tree (tests/test_ui.py), and ``dmv tree`` prints it
(tests/test_scenario.py).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import dmv
from dmv.reports.tree import build_tree, changes_between
from dmv.reports.tree_arrange import render_text


def _info(number: str, created_at: float = 0.0, **fields: Any) -> Any:
    from dmv.registry.records import VersionInfo

    version = dmv.Version.parse_number("m", number)
    state = "released" if version.x >= 1 else "prerelease"
    return VersionInfo(version, state, created_at, **fields)


@pytest.mark.parametrize(
    ("a", "b", "changes"),
    [
        ("0.0.1-a.b", "0.0.2-a.b", ("logic",)),
        ("0.0.2-a.b", "0.1.0-a.b", ("interface",)),
        ("0.1.0-a.b", "0.1.0-a.c", ("data",)),
        ("0.1.3-a.b", "0.2.0-z.b", ("interface", "data")),
        ("0.1.0-a.c", "1.1.0-a.c", ("release",)),
        ("0.0.1-a.b", "0.0.1-a.b", ()),
    ],
)
def test_changes_between(a: str, b: str, changes: tuple[str, ...]) -> None:
    parse = dmv.Version.parse_number
    assert changes_between(parse("m", a), parse("m", b)) == changes


def test_each_prerelease_grows_from_the_closest_earlier_one() -> None:
    # Made in this order: old logic retrained on new data after a logic change.
    versions = [_info("0.0.1-a.b", 1), _info("0.0.2-a.b", 2), _info("0.0.1-a.c", 3)]
    tree = build_tree("m", versions)
    assert [n.id for n in tree.stage("development")] == ["0.0.1-a.b", "0.0.2-a.b", "0.0.1-a.c"]
    assert {(e.source, e.label, e.target) for e in tree.edges} == {
        ("0.0.1-a.b", "logic", "0.0.2-a.b"),
        ("0.0.1-a.b", "data", "0.0.1-a.c"),
    }


def test_a_release_comes_from_its_recorded_source_or_else_its_twin() -> None:
    versions = [
        _info("0.1.0-a.b", 1),
        _info("0.1.0-a.c", 2),
        _info("1.1.0-a.b", 3, released_from="0.1.0-a.c"),  # recorded: wins over the twin
        _info("2.1.0-a.c", 4),  # not recorded: its twin 0.1.0-a.c
        _info("3.2.0-a.c", 5),  # no twin: no arrow
    ]
    tree = build_tree("m", versions)
    releases = [(e.source, e.target) for e in tree.edges if e.changes == ("release",)]
    assert releases == [("0.1.0-a.c", "1.1.0-a.b"), ("0.1.0-a.c", "2.1.0-a.c")]
    assert [n.id for n in tree.stage("production")] == ["1.1.0-a.b", "2.1.0-a.c", "3.2.0-a.c"]
    assert re.search(r"0\.1\.0-a\.c ──release─*▶ 2\.1\.0-a\.c", render_text(tree))


def _experiment(run_id: str, data: str, split: str, started_at: float) -> Any:
    from dmv.registry.records import RunInfo

    return RunInfo(
        run_id, "m", "experiment", "finished", None, data, split, {}, {}, started_at, None
    )


def test_an_experiment_that_was_never_promoted_is_linked_to_nothing() -> None:
    # The reported bug: an experiment logged after seven versions was drawn into the first.
    versions = [_info(f"0.0.{z}-a.b", z, logic_fp=f"l{z}", interface_fp="i") for z in range(1, 8)]
    tree = build_tree("m", versions, [_experiment("ex1", "a", "b", 100.0)])
    assert [n.id for n in tree.stage("experiment")] == ["ex1"]
    assert all("ex1" not in (e.source, e.target) for e in tree.edges)
    assert "promoted" not in render_text(tree)


def test_a_derivation_names_every_component_whose_fingerprint_differs() -> None:
    versions = [
        _info("0.0.1-a.b", 1, interface_fp="i0", logic_fp="l0"),
        _info("0.1.0-a.b", 2, interface_fp="i1", logic_fp="l1"),  # interface and logic
        _info("0.1.0-a.c", 3, interface_fp="i1", logic_fp="l1"),  # data only
    ]
    edges = {(e.source, e.target): e.changes for e in build_tree("m", versions).edges}
    assert edges == {
        ("0.0.1-a.b", "0.1.0-a.b"): ("interface", "logic"),
        ("0.1.0-a.b", "0.1.0-a.c"): ("data",),
    }


def test_the_text_tree_reads_left_to_right_by_interface_and_generation() -> None:
    versions = [
        _info("0.0.1-a.b", 1),
        _info("0.0.2-a.b", 2),
        _info("0.1.0-a.b", 3),
        _info("1.1.0-a.b", 4, released_from="0.1.0-a.b"),
    ]
    text = render_text(build_tree("m", versions))
    lines = text.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if line.strip() == heading)
        for heading in ("interface 0", "interface 1", "release 1")
    ]
    assert order == sorted(order)
    assert re.search(r"● +0\.0\.1-a\.b", text)
    assert re.search(r"0\.0\.1-a\.b ──logic─*▶ 0\.0\.2-a\.b", text)
    assert re.search(r"0\.0\.2-a\.b ──interface─*▶ 0\.1\.0-a\.b", text)
    assert re.search(r"0\.1\.0-a\.b ──release─*▶ 1\.1\.0-a\.b", text)
    assert "◀" not in text  # nothing reads right to left


def test_arrange_wraps_long_rows_and_collapses_deep_stacks() -> None:
    from dmv.reports.tree_arrange import arrange

    versions = [_info(f"0.0.{z}-a.b", z) for z in range(1, 10)]
    versions += [_info(f"0.0.1-a.s{i}", 10 + i) for i in range(6)]
    tree = build_tree("m", versions)
    arranged = arrange(tree, max_cols=4, max_stack=4)
    where = arranged.slot_of()
    assert {where[f"0.0.{z}-a.b"].line for z in range(1, 10)} == {0, 1, 2}
    assert max(s.col for s in arranged.slots) == 3
    group = next(s for s in arranged.slots if s.collapsed)
    assert group.group == "0.0.1" and group.ids == (
        "0.0.1-a.s0",
        "0.0.1-a.s1",
        "0.0.1-a.s2",
        "0.0.1-a.s3",
    )
    assert not where["0.0.1-a.s5"].collapsed and where["0.0.1-a.s5"].depth == 3
    opened = arrange(tree, max_cols=4, max_stack=4, expand={"0.0.1"})
    assert not any(s.collapsed for s in opened.slots)
    assert {i for s in opened.slots for i in s.ids} == {n.id for n in tree.nodes}


def test_a_promotion_is_drawn_from_the_recorded_edge(project: dmv.Project) -> None:
    from conftest import seed_warehouse

    project.create_model("m")
    seed_warehouse(project, "m")
    iface = {
        "inputs": [{"name": "a", "type": "float"}],
        "outputs": [{"name": "y", "type": "float"}],
    }
    for c in range(3):
        with project.run("m", data="0123.abcd", params={"C": c}, interface=iface) as run:
            run.log_metrics({"acc": 0.5}, "test")
    with project.experiment("m", data="0123.efgh", params={"C": 9}, interface=iface) as ex:
        pass
    with project.experiment("m", data="0123.efgh", params={"C": 8}, interface=iface):
        pass
    assert {e.kind for e in project.tree("m").edges} == {"derivation"}
    promoted = project.promote("m", ex.id)
    assert promoted.version is not None
    tree = project.tree("m")
    assert [(e.source, e.target) for e in tree.edges if e.kind == "promote"] == [
        (ex.id, promoted.version.number)
    ]
    assert f"promoted from {ex.id}" in render_text(tree)


def test_a_notebook_shows_the_same_diagram_as_the_web_ui() -> None:
    pytest.importorskip("jinja2")
    versions = [_info("0.0.1-a.b", 1), _info("0.0.2-a.b", 2), _info("1.0.2-a.b", 3)]
    html = build_tree("m", versions)._repr_html_()
    assert html.startswith('<div class="dmv-tree"><style>') and "--c-split" in html
    assert '<svg class="tree"' in html
    for number in ("0.0.1-a.b", "0.0.2-a.b", "1.0.2-a.b"):
        assert f'data-version="{number}"' in html
    assert 'data-change="logic" data-from="0.0.1-a.b" data-to="0.0.2-a.b"' in html
    assert "<script" not in html
