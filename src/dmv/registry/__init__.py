"""The model repository: models, versions, runs, aliases, data, tokens, releases, audit."""

from dmv.registry.backends import RegistryStore, open_registry
from dmv.registry.migrations import upgrade_schema
from dmv.registry.records import (
    AliasInfo,
    ArtifactInfo,
    AuditEntry,
    ModelInfo,
    RunInfo,
    VersionInfo,
)
from dmv.registry.repository import NewArtifact, NewRun, Registry, parse_run_id

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
    "open_registry",
    "parse_run_id",
    "upgrade_schema",
]
