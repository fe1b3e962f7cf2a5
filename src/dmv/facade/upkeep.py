"""Upkeep of the stores: checking them (fsck), backing them up and restoring them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dmv.facade._base import FacadeBase
from dmv.maintenance.backup import backup, restore
from dmv.maintenance.fsck import DEFAULT_GRACE_SECONDS, fsck

if TYPE_CHECKING:
    from dmv.maintenance.fsck import FsckReport
    from dmv.progress import Progress

__all__ = ["UpkeepMixin"]


class UpkeepMixin(FacadeBase):
    """Upkeep of the stores: checking them (fsck), backing them up and restoring them."""

    def fsck(
        self, *, repair: bool = False, deep: bool = False, grace_seconds: float | None = None
    ) -> FsckReport:
        """Check every store; list or remove what a crash left behind (``deep``: re-hash all)."""
        grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        return fsck(self.stores, self.data_access, repair=repair, deep=deep, grace_seconds=grace)

    def backup(
        self,
        dest: str | os.PathLike[str],
        *,
        warehouse_external: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """A consistent copy of registry, warehouse and artifacts in the new folder ``dest``
        (``warehouse_external``: a server warehouse's tables named, with the command that
        backs them up, instead of copied as Parquet)."""
        return backup(self.stores, dest, warehouse_external=warehouse_external, progress=progress)

    def restore(
        self,
        src: str | os.PathLike[str],
        *,
        force: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Replace this project's stores with the backup in ``src`` (``force``: over data)."""
        return restore(self.stores, src, force=force, progress=progress)
