"""The registry owns every statement: nothing outside ``dmv/registry/`` reaches into it.

Outside the package, code may call the registry's public methods and read its
records, and nothing else: no private member (``_write``, ``_read``,
``_audit``, ``_model_row``, ``_fast``…), no ``engine``, no table of the schema
(only its ``SCHEMA_VERSION`` stamp), no module of its plumbing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dmv"
REGISTRY = SRC / "registry"
#: Modules of the registry's plumbing that nothing outside it imports.
PLUMBING = {"core", "compiled", "statements", "fast", "rows", "migrations", "schema"}
#: The names the registry is held by (``project.registry``, ``self._registry``, ``reg``…).
HOLDERS = {"registry", "_registry", "reg"}


def _is_registry(node: ast.expr) -> bool:
    """Whether ``node`` is an expression naming a registry object."""
    if isinstance(node, ast.Name):
        return node.id in HOLDERS
    if isinstance(node, ast.Attribute):
        return node.attr in HOLDERS
    return False


def violations(source: str, where: str) -> list[str]:
    tree = ast.parse(source, filename=where)
    found: list[str] = []
    schema_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_registry(node.value):
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            if private or node.attr == "engine":
                found.append(f"{where}:{node.lineno}: registry.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module
            if mod.startswith("dmv.registry."):
                sub = mod.split(".")[2]
                # URL helpers only: they read a location string, not the database.
                allowed = sub == "engine" and all(
                    a.name in ("redact_url", "normalise_url") for a in node.names
                )
                if sub in PLUMBING or (sub == "engine" and not allowed):
                    found.append(f"{where}:{node.lineno}: imports {mod}")
            if mod == "dmv.registry":
                for alias in node.names:
                    if alias.name in PLUMBING - {"schema"}:
                        found.append(f"{where}:{node.lineno}: imports dmv.registry.{alias.name}")
                    if alias.name == "schema":
                        schema_names.add(alias.asname or alias.name)
                    if alias.name.startswith("_"):
                        found.append(f"{where}:{node.lineno}: imports {alias.name}")
    # The schema may be imported for its stamp only: any other use is a statement outside.
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in schema_names
            and node.attr != "SCHEMA_VERSION"
        ):
            found.append(f"{where}:{node.lineno}: schema.{node.attr}")
    return found


def _outside() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if REGISTRY not in p.parents]


def test_no_module_outside_the_registry_touches_its_private_members_or_tables() -> None:
    found = [
        v
        for path in _outside()
        for v in violations(path.read_text(encoding="utf-8"), str(path.relative_to(SRC.parent)))
    ]
    assert found == [], "\n".join(found)


def test_tokens_take_the_registry_not_the_project() -> None:
    tree = ast.parse((SRC / "tokens.py").read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "dmv.project" not in imported


@pytest.mark.parametrize(
    "source",
    [
        "project.registry._write(fn)",
        "registry._audit(conn, 'x', None, None)",
        "self._registry._fast",
        "reg.engine.connect()",
        "from dmv.registry import schema as t\nt.splits",
        "from dmv.registry.core import RegistryCore",
        "from dmv.registry.engine import create_engine",
    ],
)
def test_the_check_catches_each_kind_of_reach_in(source: str) -> None:
    assert violations(source, "probe.py"), source


@pytest.mark.parametrize(
    "source",
    [
        "project.registry.list_versions('m')",
        "wh.engine.connect()",  # a warehouse's engine is not the registry's
        "self._store._write(x)",
        "from dmv.registry import schema\nschema.SCHEMA_VERSION",
        "from dmv.registry.engine import redact_url",
    ],
)
def test_the_check_leaves_unrelated_names_alone(source: str) -> None:
    assert violations(source, "probe.py") == [], source


def test_registry_backends_open_by_scheme_like_any_plugin(tmp_path: Path) -> None:
    from dmv.errors import ConfigError
    from dmv.registry import Registry, RegistryStore, open_registry
    from dmv.registry.backends import BACKENDS

    registry = open_registry(str(tmp_path / "r.db"))
    assert isinstance(registry, Registry) and isinstance(registry, RegistryStore)
    registry.close()
    assert {"sqlite", "postgresql"} <= set(BACKENDS.schemes())
    with pytest.raises(ConfigError, match="no registry backend for mysql://"):
        open_registry("mysql://localhost/x")
