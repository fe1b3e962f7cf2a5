"""The error table: one code per kind, one meaning per exit code, the docs generated from it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import dmv.cli
import dmv.errors
from dmv.errors import DmvError, catalog, render_markdown

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dmv"


def test_docs_errors_md_is_generated_from_the_code() -> None:
    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    assert doc == render_markdown(), "run: python tests/render_errors_doc.py"


def test_each_code_names_one_kind_of_error() -> None:
    owners: dict[str, list[str]] = defaultdict(list)
    for kind in catalog():
        if kind.own_code:
            owners[kind.code].append(kind.name)
    assert {c: n for c, n in owners.items() if len(n) > 1} == {}
    # A class that names no code of its own is a variant of its parent's kind.
    by_name = {k.name: k for k in catalog()}
    for kind in catalog():
        if not kind.own_code:
            assert kind.base is not None and by_name[kind.base].code == kind.code


def test_each_exit_code_means_one_thing() -> None:
    meanings: dict[int, set[str]] = defaultdict(set)
    codes: dict[str, set[int]] = defaultdict(set)
    for kind in catalog():
        meanings[kind.exit_code].add(kind.exit_meaning)
        codes[kind.exit_meaning].add(kind.exit_code)
    assert {c: m for c, m in meanings.items() if len(m) > 1} == {}
    assert {m: c for m, c in codes.items() if len(c) > 1} == {}
    assert not set(meanings) & set(dmv.errors.OTHER_EXIT_CODES)


def test_an_exit_code_is_shared_only_by_inheriting_its_meaning() -> None:
    # A class that sets its own exit code also says what it means.
    for cls in [DmvError, *_all_subclasses(DmvError)]:
        if cls.__module__ != "dmv.errors":
            continue
        own = vars(cls)
        assert ("exit_code" in own) == ("exit_meaning" in own), cls.__name__


def test_every_error_class_lives_in_dmv_errors() -> None:
    """No module but dmv.errors defines a DmvError subclass."""
    names = {k.name for k in catalog()}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).rpartition(".")[2] for b in node.bases}
                if bases & names:
                    found.append(f"{path.relative_to(SRC)}: {node.name}")
    assert found == []


def test_the_catalog_lists_every_class() -> None:
    assert {k.name for k in catalog()} == {
        c.__name__ for c in [DmvError, *_all_subclasses(DmvError)] if c.__module__ == "dmv.errors"
    }
    assert all(k.name in dmv.errors.__all__ for k in catalog())


def test_errors_is_plain_standard_library() -> None:
    """dmv.errors is copied into exported MLflow models: it imports nothing else."""
    tree = ast.parse((SRC / "errors.py").read_text(encoding="utf-8"))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "dataclasses", "typing"}


def _all_subclasses(cls: type[DmvError]) -> list[type[DmvError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def test_the_cli_exit_codes_beyond_errors_are_in_the_table() -> None:
    assert {0, dmv.cli.INTERNAL_ERROR} == set(dmv.errors.OTHER_EXIT_CODES)
    assert dmv.errors.Interrupted.exit_code == dmv.cli.INTERRUPTED


def _errors_without_a_hint() -> list[str]:
    """Every place in src/ that builds a DmvError without ``hint=`` (or ``**kwargs``)."""
    classes = {k.name for k in catalog()}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name not in classes or path.name == "errors.py":
                continue
            keywords = {k.arg for k in node.keywords}
            if "hint" not in keywords and None not in keywords:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return found


def test_every_error_says_what_to_do() -> None:
    """The README's promise: one line of what went wrong, one hint that names the fix."""
    assert _errors_without_a_hint() == []
