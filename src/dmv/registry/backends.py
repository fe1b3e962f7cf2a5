"""What a registry backend provides, and the table that opens one by URL scheme.

:class:`RegistryStore` is the part of the registry the rest of dmv versions
with: models, versions, aliases, runs and the audit log. dmv's own backend
(:class:`~dmv.registry.repository.Registry`, on SQLAlchemy) registers for
``sqlite`` and ``postgresql`` in :data:`BACKENDS` with the same call another
package's does; a package adds one with an entry point in ``dmv.registries``
(see :mod:`dmv._backends`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dmv._backends import Backends

if TYPE_CHECKING:
    from dmv.registry.records import AliasInfo, AuditEntry, ModelInfo, RunInfo, VersionInfo
    from dmv.registry.runs import NewRun
    from dmv.version import Reference, Version

__all__ = ["BACKENDS", "RegistryStore", "open_registry"]


@runtime_checkable
class RegistryStore(Protocol):
    """Models, versions, aliases, runs and the audit log of one project."""

    @property
    def url(self) -> str: ...

    def create_model(self, name: str, **fields: Any) -> ModelInfo: ...

    def get_model(self, name: str) -> ModelInfo: ...

    def list_models(self, *, include_archived: bool = False) -> list[ModelInfo]: ...

    def create_version(self, version: Version, **components: Any) -> VersionInfo: ...

    def get_version(self, version: Version) -> VersionInfo: ...

    def resolve(self, ref: Reference | str) -> VersionInfo: ...

    def list_versions(self, model: str, *, state: str | None = None) -> list[VersionInfo]: ...

    def set_alias(self, version: Version | Reference, alias: str) -> AliasInfo: ...

    def remove_alias(self, model: str, alias: str) -> None: ...

    def list_aliases(self, model: str) -> list[AliasInfo]: ...

    def commit_run(self, run: NewRun) -> RunInfo: ...

    def list_runs(self, version: Version) -> list[RunInfo]: ...

    def audit_log(
        self, *, model: str | None = None, action: str | None = None, limit: int | None = 100
    ) -> list[AuditEntry]: ...

    def close(self) -> None: ...


#: Registry backends by URL scheme; other packages add theirs in ``dmv.registries``.
BACKENDS: Backends[Any] = Backends("registry", "dmv.registries")


def open_registry(location: str, *, actor: str | None = None) -> Any:
    """The registry at ``location`` (a SQLite path or URL, ``postgresql://``, or a plugin's)."""
    from dmv.registry.engine import normalise_url

    return BACKENDS.factory(normalise_url(location))(location, actor=actor)


def _register_builtins() -> None:
    from dmv.registry.repository import Registry

    for scheme in ("sqlite", "postgresql"):
        BACKENDS.register(scheme, Registry)


_register_builtins()
