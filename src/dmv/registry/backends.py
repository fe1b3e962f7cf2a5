"""What a registry backend provides, and the table that opens one by URL scheme.

:class:`RegistryStore` is everything the rest of dmv calls on a registry:
models, versions, runs, aliases, releases, retrievals and splits, tokens and
the audit log. Domain code is typed against it, never against a backend's
class, so a package's registry that provides it runs every command. dmv's own backend
(:class:`~dmv.registry.repository.Registry`, on SQLAlchemy) registers for
``sqlite`` and ``postgresql`` in :data:`BACKENDS` with the same call another
package's does; a package adds one with an entry point in ``dmv.registries``
(see :mod:`dmv.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dmv._urls import registry_url
from dmv.plugins import Backends
from dmv.registry.repository import Registry

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dmv.registry.data import QueryRecord, SplitRecord
    from dmv.registry.predictions import PredictionRecord
    from dmv.registry.records import (
        AliasInfo,
        AuditEntry,
        DeliveryRecord,
        ModelInfo,
        NewRun,
        RunInfo,
        StoredArtifact,
        VersionInfo,
    )
    from dmv.registry.reviews import ApprovalRecord, EvaluationRecord
    from dmv.registry.signatures import SignatureRecord
    from dmv.registry.tokens import TokenRecord
    from dmv.version import Reference, Version

__all__ = ["BACKENDS", "RegistryStore", "open_registry"]


@runtime_checkable
class RegistryStore(Protocol):
    """Every call dmv makes on a project's registry, grouped by noun.

    * connection: ``url``, ``close``, ``counts``;
    * models: ``create_model``, ``get_model``, ``list_models``, ``update_model``,
      ``set_archived``, ``is_archived``, ``delete_model``;
    * versions: ``create_version``, ``get_version``, ``resolve``, ``change_marks``,
      ``list_versions``;
    * runs: ``commit_run``, ``get_run``, ``list_runs``, ``list_model_runs``,
      ``stored_artifacts``, ``referenced_digests``;
    * aliases: ``set_alias``, ``remove_alias``, ``list_aliases``;
    * releases: ``serving_run``, ``require_unreleased``, ``release_version``,
      ``select_run``, ``deprecate_version``, ``check_deletable``, ``delete_version``;
    * data: ``add_query``, ``get_query``, ``list_queries``, ``add_split``,
      ``get_split``, ``list_splits``, ``add_part_check``, ``drop_split``;
    * tokens: ``add_token``, ``token_by_hash``, ``list_tokens``, ``revoke_token``,
      ``has_tokens``, ``token_mark``;
    * signatures: ``add_signature``, ``list_signatures``, ``signature_blobs``;
    * predictions: ``add_prediction``, ``list_predictions``, ``get_prediction``;
    * audit: ``audit_log``;
    * webhooks: ``subscribe_webhooks``, ``record_event``, ``claim_deliveries``,
      ``finish_delivery``, ``list_deliveries``, ``redeliver``;
    * reviews: ``add_evaluation``, ``list_evaluations``, ``add_approval``,
      ``list_approvals``.

    A backend that provides these, with these signatures, is a registry: dmv
    calls nothing else on it. :class:`~dmv.registry.repository.Registry` is the
    built-in one.
    """

    # -- connection ---------------------------------------------------------

    @property
    def url(self) -> str: ...

    def close(self) -> None: ...

    def counts(self) -> dict[str, int]: ...

    # -- models -------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        purpose: str = "",
        function: str = "",
        description: str = "",
        primary_metric: str | None = None,
        metric_goal: str = "max",
        exist_ok: bool = False,
    ) -> ModelInfo: ...

    def get_model(self, name: str) -> ModelInfo: ...

    def list_models(self, *, include_archived: bool = False) -> list[ModelInfo]: ...

    def update_model(self, name: str, **fields: Any) -> ModelInfo: ...

    def set_archived(self, name: str, archived: bool) -> ModelInfo: ...

    def is_archived(self, name: str) -> bool: ...

    def delete_model(self, name: str) -> dict[str, Any]: ...

    # -- versions -----------------------------------------------------------

    def create_version(self, version: Version, **components: Any) -> VersionInfo: ...

    def get_version(self, version: Version) -> VersionInfo: ...

    def resolve(self, ref: Reference | str) -> VersionInfo: ...

    def change_marks(self, models: Sequence[str]) -> dict[str, tuple[Any, ...]]: ...

    def list_versions(self, model: str, *, state: str | None = None) -> list[VersionInfo]: ...

    # -- runs ---------------------------------------------------------------

    def commit_run(self, run: NewRun) -> RunInfo: ...

    def get_run(self, model: str, run_id: str, version: Version | None = None) -> RunInfo: ...

    def list_runs(self, version: Version) -> list[RunInfo]: ...

    def list_model_runs(
        self, model: str, *, kind: str | None = None, status: str | None = None
    ) -> list[RunInfo]: ...

    def stored_artifacts(self) -> list[StoredArtifact]: ...

    def referenced_digests(self, digests: list[str]) -> set[str]: ...

    # -- aliases ------------------------------------------------------------

    def set_alias(self, version: Version | Reference, alias: str) -> AliasInfo: ...

    def remove_alias(self, model: str, alias: str) -> None: ...

    def list_aliases(self, model: str) -> list[AliasInfo]: ...

    # -- releases -----------------------------------------------------------

    def serving_run(self, version: Version) -> int: ...

    def require_unreleased(self, version: Version) -> None: ...

    def release_version(
        self,
        version: Version,
        *,
        serving: int,
        major: bool,
        verified: list[str],
        overrides: list[str] | None = None,
    ) -> VersionInfo: ...

    def select_run(self, version: Version, run_id: str) -> VersionInfo: ...

    def deprecate_version(self, version: Version, *, reason: str = "") -> VersionInfo: ...

    def check_deletable(self, version: Version) -> None: ...

    def delete_version(self, version: Version) -> None: ...

    # -- data: retrievals and stored splits ---------------------------------

    def add_query(
        self,
        model: str,
        kind: str,
        definition: dict[str, Any],
        columns: list[dict[str, str]],
        choose: Callable[[Sequence[QueryRecord]], QueryRecord | str],
    ) -> QueryRecord: ...

    def get_query(self, model: str, data: str) -> QueryRecord: ...

    def list_queries(self, model: str) -> list[QueryRecord]: ...

    def add_split(
        self,
        model: str,
        data: str,
        split: str,
        spec: dict[str, Any],
        parts: dict[str, Any],
        leakage: dict[str, Any] | None,
    ) -> SplitRecord: ...

    def get_split(self, model: str, data: str, split: str) -> SplitRecord: ...

    def list_splits(self, model: str | None, data: str | None = None) -> list[SplitRecord]: ...

    def add_part_check(
        self, model: str, data: str, split: str, part: str, key: str, value: str
    ) -> None: ...

    def drop_split(self, model: str, data: str, split: str) -> None: ...

    # -- tokens -------------------------------------------------------------

    def add_token(
        self, name: str, digest: str, scope: str, model: str | None, now: float
    ) -> TokenRecord: ...

    def token_by_hash(self, digest: str) -> TokenRecord | None: ...

    def list_tokens(self, *, include_revoked: bool = True) -> list[TokenRecord]: ...

    def revoke_token(self, name: str, now: float) -> TokenRecord: ...

    def has_tokens(self) -> bool: ...

    def token_mark(self) -> tuple[int, int]: ...

    # -- signatures ---------------------------------------------------------

    def add_signature(
        self,
        version: Version,
        *,
        key_id: str,
        public_key: str,
        signed_at: float,
        bundle: tuple[str, int],
        envelope: tuple[str, int],
    ) -> SignatureRecord: ...

    def list_signatures(self, version: Version) -> list[SignatureRecord]: ...

    def signature_blobs(self) -> list[StoredArtifact]: ...

    # -- predictions ----------------------------------------------------------

    def add_prediction(self, record: PredictionRecord) -> PredictionRecord: ...

    def list_predictions(
        self, model: str | None, version: Version | None = None
    ) -> list[PredictionRecord]: ...

    def get_prediction(self, prediction_id: str) -> PredictionRecord: ...

    # -- audit --------------------------------------------------------------

    def audit_log(
        self, *, model: str | None = None, action: str | None = None, limit: int | None = 100
    ) -> list[AuditEntry]: ...

    # -- webhooks: the outbox ------------------------------------------------

    def subscribe_webhooks(self, hooks: dict[str, frozenset[str]]) -> None: ...

    def record_event(
        self, model: str, action: str, target: str, details: dict[str, Any] | None = None
    ) -> None: ...

    def claim_deliveries(
        self,
        hook: str,
        owner: str,
        *,
        lease: float,
        limit: int = 50,
        not_attempted_since: float | None = None,
        now: float | None = None,
    ) -> list[DeliveryRecord]: ...

    def finish_delivery(
        self,
        delivery_id: int,
        owner: str,
        *,
        delivered: bool,
        status: int | None,
        error: str | None,
        retry_at: float | None,
    ) -> None: ...

    def list_deliveries(
        self, *, status: str | None = None, limit: int | None = 100
    ) -> list[DeliveryRecord]: ...

    def redeliver(self, delivery: str) -> DeliveryRecord: ...

    # -- reviews: evaluations and approvals -----------------------------------

    def add_evaluation(self, evaluation: EvaluationRecord) -> EvaluationRecord: ...

    def list_evaluations(self, version: Version) -> list[EvaluationRecord]: ...

    def add_approval(
        self, version: Version, approver: str, *, via: str, comment: str, at: float
    ) -> ApprovalRecord: ...

    def list_approvals(self, version: Version) -> list[ApprovalRecord]: ...


#: Registry backends by URL scheme; other packages add theirs in ``dmv.registries``.
BACKENDS: Backends[RegistryStore] = Backends("registry", "dmv.registries")


def open_registry(location: str, *, actor: str | None = None) -> RegistryStore:
    """The registry at ``location`` (a SQLite path or URL, ``postgresql://``, or a plugin's)."""
    return BACKENDS.factory(registry_url(location))(location, actor=actor)


if TYPE_CHECKING:

    def _conforms(registry: Registry) -> RegistryStore:
        """mypy's proof that the built-in registry is a :class:`RegistryStore`."""
        return registry


# The built-ins are in the table before any entry point can be read.
for _scheme in ("sqlite", "postgresql"):
    BACKENDS.register(_scheme, Registry)
