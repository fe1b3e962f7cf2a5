"""Check every store of a project, and clean up what a crash left behind.

dmv writes blobs and warehouse tables first and registers them last, in one
registry transaction. A process killed in between leaves unreferenced blobs,
temporary files, split tables or unused warehouse space, never a version that
points at something missing. :func:`fsck` checks each store in turn and gives
each one status:

* **registry**: SQLite's own ``PRAGMA quick_check`` (``integrity_check`` with
  ``deep``) and ``foreign_key_check``, and the schema stamp;
* **artifacts**: every registered blob present with its size (``deep``: re-hashed);
* **warehouse**: the file opens and is as long as its header says, every
  registered split table is present, dmv tables nobody registered are orphans,
  and the space a killed writer left unused is measured (``repair``: reclaimed
  with a checkpoint, the bytes reported);
* **splits** (``deep``): every stored split re-fingerprinted, the same code path
  as ``dmv data verify``.

With ``repair`` orphans older than a grace period are removed, so runs still in
progress elsewhere keep theirs. Nothing is ever removed while the registry
cannot be read: without it dmv cannot tell an orphan from a registered blob.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmv.maintenance.fsck.artifacts import _check_artifacts
from dmv.maintenance.fsck.registry import _check_registry
from dmv.maintenance.fsck.report import DEFAULT_GRACE_SECONDS, STATUSES, FsckReport, StoreStatus
from dmv.maintenance.fsck.splits import _check_splits
from dmv.maintenance.fsck.warehouse import _check_warehouse

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.stores import Stores

__all__ = ["DEFAULT_GRACE_SECONDS", "STATUSES", "FsckReport", "StoreStatus", "fsck"]


def fsck(
    stores: Stores,
    data: ProjectData,
    *,
    repair: bool = False,
    deep: bool = False,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> FsckReport:
    """Check every store; list (and with ``repair`` remove) orphans. See the module docs."""
    report = FsckReport(deep=deep)
    registry_ok = _check_registry(stores, report, deep=deep)
    referenced = _check_warehouse(
        stores, data, report, repair=repair, grace_seconds=grace_seconds, registry_ok=registry_ok
    )
    _check_artifacts(
        stores,
        report,
        deep=deep,
        repair=repair,
        grace_seconds=grace_seconds,
        registry_ok=registry_ok,
        referenced=referenced,
    )
    _check_splits(stores, data, report, deep=deep, registry_ok=registry_ok)
    return report
