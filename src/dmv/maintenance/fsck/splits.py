"""fsck of stored splits (``deep``): every part re-fingerprinted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmv.errors import DmvError, StorageError
from dmv.maintenance.fsck.report import FsckReport, StoreStatus

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.stores import Stores


# -- splits ---------------------------------------------------------------------


def _check_splits(
    stores: Stores, data: ProjectData, report: FsckReport, *, deep: bool, registry_ok: bool
) -> None:
    status = StoreStatus("splits", "warehouse tables, against the registry's fingerprints")
    report.stores.append(status)
    if not deep:
        status.status, status.summary = "skipped", "--deep re-fingerprints every stored split"
        return
    if not registry_ok or report.store("warehouse").status == "damaged":
        status.status, status.summary = "skipped", "needs a readable registry and warehouse"
        return
    count, bad = 0, 0
    try:
        for model in stores.registry.list_models():
            for info in data.splits(model.name):
                count += 1
                what = f"{model.name} {info.ref}"
                found = data.verify(model.name, info.ref)
                for m in found.get("mismatches", []):
                    bad += 1
                    report.problem(
                        status,
                        "split",
                        what,
                        f"{m['part']} {m['what']}: recorded {str(m['expected'])[:24]}, "
                        f"now {str(m['actual'])[:24]}",
                    )
    except DmvError as exc:
        report.problem(status, "splits", status.location, exc.message)
        status.status = "damaged" if isinstance(exc, StorageError) else "problems"
    report.checked["splits"] = count
    if status.status == "ok":
        status.summary = f"{count} stored split(s): every part matches its fingerprint"
    elif not status.summary:
        status.summary = f"{count} stored split(s), {bad} mismatch(es)"
