"""Models: creating, listing, archiving and deleting them, their aliases and the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmv.facade._base import FacadeBase
from dmv.limits import check_model_fields
from dmv.release import releases
from dmv.version import Reference, Version, as_reference, check_name

if TYPE_CHECKING:
    from dmv.registry import AliasInfo, AuditEntry, ModelInfo

__all__ = ["ModelsMixin"]


class ModelsMixin(FacadeBase):
    """Models: creating, listing, archiving and deleting them, their aliases and the audit log."""

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
    ) -> ModelInfo:
        """Create a model, named by its value (purpose) or function."""
        check_model_fields(
            purpose=purpose,
            function=function,
            description=description,
            primary_metric=primary_metric,
        )
        return self.registry.create_model(
            name,
            purpose=purpose,
            function=function,
            description=description,
            primary_metric=primary_metric,
            metric_goal=metric_goal,
            exist_ok=exist_ok,
        )

    def update_model(self, name: str, **fields: Any) -> ModelInfo:
        check_model_fields(**fields)
        return self.registry.update_model(name, **fields)

    def models(self, *, include_archived: bool = False) -> list[ModelInfo]:
        """Every model by name; archived ones only with ``include_archived``."""
        return self.registry.list_models(include_archived=include_archived)

    def archive_model(self, name: str, *, archived: bool = True) -> ModelInfo:
        """Archive a model: hidden from listings, refusing new runs, every record kept
        (``archived=False`` brings it back). Audited."""
        return self.registry.set_archived(check_name(name), archived)

    def delete_model(self, name: str) -> dict[str, Any]:
        """Delete a model that was never released: its versions, runs, aliases, retrievals,
        stored splits (their warehouse tables) and the blobs nothing else refers to.

        The registry goes first, in one audited transaction; a crash after it leaves
        only orphans, which ``dmv fsck --repair`` removes.
        """
        return releases.delete_model(self.stores, check_name(name))

    def model(self, name: str) -> ModelInfo:
        return self.registry.get_model(check_name(name))

    # -- aliases and the audit log ---------------------------------------------

    def set_alias(self, ref: str | Reference | Version, alias: str) -> AliasInfo:
        """Point ``alias`` (e.g. ``production``) at the version ``ref`` resolves to."""
        # Resolved in the same write transaction that moves the alias.
        return self.registry.set_alias(as_reference(ref), alias)

    def remove_alias(self, model: str, alias: str) -> None:
        self.registry.remove_alias(check_name(model), alias)

    def aliases(self, model: str) -> list[AliasInfo]:
        return self.registry.list_aliases(check_name(model))

    def audit(
        self, *, model: str | None = None, action: str | None = None, limit: int | None = 100
    ) -> list[AuditEntry]:
        """The audit log, newest first."""
        return self.registry.audit_log(model=model, action=action, limit=limit)
