"""dmv.tree: which boxes and arrows a model's version tree has, and what each arrow says.

Pure: built from registry records made here. The web UI draws this same tree
(tests/test_ui.py), and ``dmv tree`` prints it (tests/test_scenario.py).
"""

from __future__ import annotations

from typing import Any

import pytest

import dmv
from dmv.tree import build_tree, changes_between, render_text


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
    assert "2.1.0-a.c  ◀─release── 0.1.0-a.c" in render_text(tree)
