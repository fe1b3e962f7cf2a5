"""Check the project's stores against each other, and clean up what a crash left behind.

dmv writes blobs and warehouse tables first and registers them last, in one
registry transaction. A process killed in between leaves unreferenced blobs,
temporary files or split tables, never a version that points at something
missing. :func:`fsck` proves that (every registered artifact present and
intact, every registered split table present) and lists what is orphaned;
with ``repair`` it removes orphans older than a grace period, so that runs
still in progress elsewhere keep theirs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dmv.project import Project

__all__ = ["FsckReport", "fsck"]

#: Orphans younger than this may belong to a run still in progress.
DEFAULT_GRACE_SECONDS = 3600.0


@dataclass
class FsckReport:
    problems: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No registered thing is missing or corrupt (orphans are not problems)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "problems": self.problems,
            "orphans": self.orphans,
            "repaired": self.repaired,
        }


def _artifact_rows(project: Project) -> list[Any]:
    import sqlalchemy as sa

    from dmv.registry import schema as t

    query = (
        sa.select(
            t.artifacts.c.name,
            t.artifacts.c.digest,
            t.artifacts.c.size,
            t.runs.c.number,
            t.runs.c.kind,
            t.models.c.name.label("model"),
            t.versions.c.x,
            t.versions.c.y,
            t.versions.c.z,
            t.versions.c.data,
            t.versions.c.split,
        )
        .join(t.runs, t.runs.c.id == t.artifacts.c.run_id)
        .join(t.models, t.models.c.id == t.runs.c.model_id)
        .outerjoin(t.versions, t.versions.c.id == t.runs.c.version_id)
    )
    with project.registry.engine.connect() as conn:
        return list(conn.execute(query).all())


def fsck(
    project: Project,
    *,
    repair: bool = False,
    full: bool = True,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> FsckReport:
    """Check every registered artifact and split; list (and with ``repair`` remove) orphans.

    ``full`` re-hashes every blob; without it only presence and size are checked.
    """
    from dmv.artifacts import Blob

    report = FsckReport()
    store = project.artifacts
    rows = _artifact_rows(project)
    referenced: set[str] = set()
    seen: set[str] = set()
    for r in rows:
        referenced.add(r.digest)
        owner = (
            f"{r.model} {r.x}.{r.y}.{r.z}-{r.data}.{r.split}"
            if r.x is not None
            else f"{r.model} {r.kind}"
        )
        what = f"{owner} {'tr' if r.kind == 'training' else 'ex'}{r.number} {r.name}"
        if r.digest in seen and not full:
            continue
        seen.add(r.digest)
        blob = Blob(r.digest, int(r.size))
        problem = (
            store.verify(blob, what=what)
            if full
            else (
                None if store.exists(blob) else store._missing(blob, store.path_of(r.digest), what)
            )
        )
        if problem is not None:
            report.problems.append(
                {"kind": "artifact", "what": what, "digest": r.digest, "error": problem.message}
            )
    report.checked["artifacts"] = len(rows)

    from dmv.data.checks import fsck_tables

    referenced |= fsck_tables(project, report, repair=repair, grace_seconds=grace_seconds)

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
    return report


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
