"""fsck of the artifact store: every registered blob present (``deep``: re-hashed), orphans."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import StorageError
from dmv.fsck.report import FsckReport, StoreStatus

if TYPE_CHECKING:
    from dmv.context import Stores


# -- artifacts ------------------------------------------------------------------


def _artifact_rows(stores: Stores) -> list[Any]:
    return list(stores.registry.stored_artifacts())


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
    from dmv.artifacts import Blob, missing_blob

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
            what = f"{owner} {'tr' if r.kind == 'training' else 'ex'}{r.number} {r.name}"
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
    store: Any, report: FsckReport, repair: bool, grace_seconds: float, referenced: set[str]
) -> None:
    now = time.time()
    fs = store.fs
    for digest in store.iter_blobs():
        if digest in referenced:
            continue
        path = store.path_of(digest)
        age = now - _mtime(fs, path, now)
        entry = {"kind": "blob", "digest": digest, "path": path, "age_seconds": round(age)}
        report.orphans.append(entry)
        if repair and age >= grace_seconds:
            store.remove(digest)
            report.repaired.append(entry)
    for upload in store.incomplete_uploads():
        age = now - float(upload.get("started", now))
        entry = {
            "kind": "incomplete upload",
            "path": str(upload["path"]),
            "age_seconds": round(age),
        }
        report.orphans.append(entry)
        if repair and age >= grace_seconds:
            store.abort_upload(upload)
            report.repaired.append(entry)
    tmp_dir = f"{store._root}/tmp"
    try:
        leftovers = fs.ls(tmp_dir, detail=False)
    except FileNotFoundError:
        leftovers = []
    for path in leftovers:
        age = now - _mtime(fs, str(path), now)
        entry = {"kind": "partial upload", "path": str(path), "age_seconds": round(age)}
        report.orphans.append(entry)
        if repair and age >= grace_seconds:
            fs.rm(str(path))
            report.repaired.append(entry)


def _mtime(fs: Any, path: str, default: float) -> float:
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return default
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if value is None:
        return default
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)
