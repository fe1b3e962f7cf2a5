"""The model repository: models, versions, runs, aliases, data, tokens, releases, audit.

The records (:mod:`dmv.registry.records`) import nothing heavy; the store itself
(:class:`Registry`, :func:`open_registry`, :func:`upgrade_schema`) loads SQLAlchemy, so
those names are imported when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from dmv.registry.records import (
    AliasInfo,
    ArtifactInfo,
    AuditEntry,
    ModelInfo,
    NewArtifact,
    NewRun,
    RunInfo,
    VersionInfo,
    parse_run_id,
)

if TYPE_CHECKING:
    from dmv.registry.backends import RegistryStore, open_registry
    from dmv.registry.engine import local_writes
    from dmv.registry.migrations import upgrade_schema
    from dmv.registry.repository import Registry

__all__ = [
    "AliasInfo",
    "ArtifactInfo",
    "AuditEntry",
    "ModelInfo",
    "NewArtifact",
    "NewRun",
    "Registry",
    "RegistryStore",
    "RunInfo",
    "VersionInfo",
    "local_writes",
    "open_registry",
    "parse_run_id",
    "upgrade_schema",
]

_STORE = {
    "RegistryStore": "dmv.registry.backends",
    "open_registry": "dmv.registry.backends",
    "upgrade_schema": "dmv.registry.migrations",
    "local_writes": "dmv.registry.engine",
    "Registry": "dmv.registry.repository",
}


def __getattr__(name: str) -> Any:
    module = _STORE.get(name)
    if module is None:
        raise AttributeError(f"module 'dmv.registry' has no attribute {name!r}")
    return getattr(import_module(module), name)
