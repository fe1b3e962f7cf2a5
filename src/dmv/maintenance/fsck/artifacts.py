"""fsck of the artifact store: every registered blob present (``deep``: re-hashed), orphans."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.artifacts import Blob, missing_blob
from dmv.errors import StorageError
from dmv.maintenance.fsck.report import FsckReport, StoreStatus

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.stores import Stores


# -- artifacts ------------------------------------------------------------------


def _artifact_rows(stores: Stores) -> list[Any]:
    # A release's signature bundle and provenance envelope are kept like its files.
    return [*stores.registry.stored_artifacts(), *stores.registry.signature_blobs()]


def _check_artifacts(
    stores: Stores,
    report: FsckReport,
    *,
    deep: bool,
    repair: bool,
    grace_seconds: float,
    registry_ok: bool,
    referenced: set[str],
) -> None:

    store = stores.artifacts
    status = StoreStatus("artifacts", store.location)
    report.stores.append(status)
    if not registry_ok:
        status.status = "skipped"
        status.summary = "needs a readable registry (nothing was removed)"
        return
    try:
        rows = _artifact_rows(stores)
        seen: set[str] = set()
        for r in rows:
            referenced.add(r.digest)
            if r.digest in seen:
                continue
            seen.add(r.digest)
            owner = (
                f"{r.model} {r.x}.{r.y}.{r.z}-{r.data}.{r.split}"
                if r.x is not None
                else f"{r.model} {r.kind}"
            )
            run = "" if r.number is None else f"{'tr' if r.kind == 'training' else 'ex'}{r.number} "
            what = f"{owner} {run}{r.name}"
            blob = Blob(r.digest, int(r.size))
            path = store.path_of(r.digest)
            problem = (
                store.verify(blob, what=what)
                if deep
                else None
                if store.exists(blob)
                else missing_blob(blob, what)
            )
            if problem is not None:
                report.problem(
                    status, "artifact", what, problem.message, digest=r.digest, path=path
                )
        report.checked["artifacts"] = len(rows)
        _artifact_orphans(store, report, repair, grace_seconds, referenced)
    except StorageError as exc:
        report.problem(status, "artifacts", store.location, exc.message)
        status.status, status.summary = "damaged", exc.message
        return
    bad = sum(1 for p in report.problems if p["store"] == "artifacts")
    how = "re-hashed" if deep else "present with their size; --deep re-hashes"
    status.summary = f"{len(seen)} blob(s) {how}" + (f"; {bad} bad" if bad else "")


def _artifact_orphans(
    store: ArtifactStore,
    report: FsckReport,
    repair: bool,
    grace_seconds: float,
    referenced: set[str],
) -> None:
    now = time.time()
    for digest in store.iter_blobs():
        if digest in referenced:
            continue
        path = store.path_of(digest)
        age = now - (store.stored_at(digest) or now)
        entry = {"kind": "blob", "digest": digest, "path": path, "age_seconds": round(age)}
        report.orphans.append(entry)
        if repair and age >= grace_seconds:
            store.remove(digest)
            report.repaired.append(entry)
    for upload in store.incomplete_uploads():
        age = now - float(upload.get("started") or now)
        entry = {
            "kind": str(upload.get("kind") or "incomplete upload"),
            "path": str(upload["path"]),
            "age_seconds": round(age),
        }
        report.orphans.append(entry)
        if repair and age >= grace_seconds:
            store.abort_upload(upload)
            report.repaired.append(entry)
