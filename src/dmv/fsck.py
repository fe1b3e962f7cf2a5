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

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv.errors import DmvError, IntegrityError, StorageError

if TYPE_CHECKING:
    from dmv.project import Project

__all__ = ["DEFAULT_GRACE_SECONDS", "FsckReport", "StoreStatus", "fsck"]

#: Orphans younger than this may belong to a run still in progress.
DEFAULT_GRACE_SECONDS = 3600.0

#: ok: intact; problems: readable, but something registered is missing or wrong;
#: damaged: the store cannot be read; skipped: not checked (says why).
STATUSES = ("ok", "problems", "damaged", "skipped")


@dataclass
class StoreStatus:
    """One row of the report: a store, where it is, and how it fared."""

    store: str
    location: str
    status: str = "ok"
    summary: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "store": self.store,
            "location": self.location,
            "status": self.status,
            "summary": self.summary,
        }


@dataclass
class FsckReport:
    stores: list[StoreStatus] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    deep: bool = False

    @property
    def ok(self) -> bool:
        """Every store readable and nothing registered missing or corrupt.

        Orphans and reclaimable space are not problems: a crash may leave them.
        """
        return not self.problems and all(s.status in ("ok", "skipped") for s in self.stores)

    @property
    def exit_code(self) -> int:
        """0 when ok; 8 (storage) when a store cannot be read; else 6 (integrity)."""
        if self.ok:
            return 0
        if any(s.status == "damaged" for s in self.stores):
            return StorageError.exit_code
        return IntegrityError.exit_code

    def store(self, name: str) -> StoreStatus:
        return next(s for s in self.stores if s.store == name)

    def problem(self, status: StoreStatus, kind: str, what: str, error: str, **extra: Any) -> None:
        self.problems.append(
            {"store": status.store, "kind": kind, "what": what, "error": error, **extra}
        )
        if status.status == "ok":
            status.status = "problems"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "deep": self.deep,
            "stores": [s.to_dict() for s in self.stores],
            "checked": self.checked,
            "problems": self.problems,
            "orphans": self.orphans,
            "repaired": self.repaired,
            "space": self.space,
        }


def fsck(
    project: Project,
    *,
    repair: bool = False,
    deep: bool = False,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> FsckReport:
    """Check every store; list (and with ``repair`` remove) orphans. See the module docs."""
    report = FsckReport(deep=deep)
    registry_ok = _check_registry(project, report, deep=deep)
    referenced = _check_warehouse(
        project, report, repair=repair, grace_seconds=grace_seconds, registry_ok=registry_ok
    )
    _check_artifacts(
        project,
        report,
        deep=deep,
        repair=repair,
        grace_seconds=grace_seconds,
        registry_ok=registry_ok,
        referenced=referenced,
    )
    _check_splits(project, report, deep=deep, registry_ok=registry_ok)
    return report


# -- registry -------------------------------------------------------------------


def _check_registry(project: Project, report: FsckReport, *, deep: bool) -> bool:
    """True when the registry can be read (the other checks need it)."""
    from dmv.registry.engine import normalise_url, redact_url

    url = normalise_url(project.config.location("registry"))
    path = url.split("///", 1)[1] if url.startswith("sqlite") else None
    status = StoreStatus("registry", path or redact_url(url))
    report.stores.append(status)
    notes: list[str] = []
    if path is not None:
        if not os.path.exists(path):
            status.status, status.summary = "damaged", "the registry file does not exist"
            report.problem(status, "registry", path, status.summary)
            status.status = "damaged"
            return False
        damage, dangling = _sqlite_checks(path, deep=deep)
        if damage is not None:
            status.status, status.summary = "damaged", damage
            report.problem(status, "registry", path, damage)
            status.status = "damaged"
            return False
        if dangling:
            report.problem(status, "foreign key", path, dangling)
        notes.append("integrity_check ok" if deep else "quick_check ok")
        notes.append(dangling or "foreign keys ok")
    try:
        registry = project.registry  # checks the schema stamp, as every command does
        counts = _registry_counts(registry.engine)
    except DmvError as exc:
        status.summary = exc.message
        report.problem(status, "registry", status.location, exc.message)
        status.status = "damaged"
        return False
    from dmv.registry import schema

    notes.insert(0, f"schema {schema.SCHEMA_VERSION}")
    if path is None:
        notes.append("page checks are the server's (pg_amcheck); foreign keys it enforces")
    notes.append(", ".join(f"{n} {k}" for k, n in counts.items()))
    status.summary = "; ".join(notes)
    return True


def _sqlite_checks(path: str, *, deep: bool) -> tuple[str | None, str | None]:
    """(what damages the file, which rows break a foreign key); None when fine."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as exc:
        return f"cannot open: {exc}", None
    try:
        pragma = "integrity_check" if deep else "quick_check"
        found = [str(r[0]) for r in con.execute(f"PRAGMA {pragma}").fetchall()]
        if found != ["ok"]:
            more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
            return f"{pragma}: " + "; ".join(found[:3]) + more, None
        bad = con.execute("PRAGMA foreign_key_check").fetchall()
        if bad:
            tables = sorted({str(r[0]) for r in bad})
            return None, (
                f"{len(bad)} row(s) point at rows that do not exist ({', '.join(tables)})"
            )
    except sqlite3.DatabaseError as exc:
        return str(exc), None
    finally:
        con.close()
    return None, None


def _registry_counts(engine: Any) -> dict[str, int]:
    import sqlalchemy as sa

    from dmv.registry import schema as t

    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar())
            for table in (t.models, t.versions, t.runs)
        }


# -- artifacts ------------------------------------------------------------------


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


def _check_artifacts(
    project: Project,
    report: FsckReport,
    *,
    deep: bool,
    repair: bool,
    grace_seconds: float,
    registry_ok: bool,
    referenced: set[str],
) -> None:
    from dmv.artifacts import Blob

    store = project.artifacts
    status = StoreStatus("artifacts", store.location)
    report.stores.append(status)
    if not registry_ok:
        status.status = "skipped"
        status.summary = "needs a readable registry (nothing was removed)"
        return
    try:
        rows = _artifact_rows(project)
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
                else store._missing(blob, path, what)
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


# -- warehouse ------------------------------------------------------------------


def _check_warehouse(
    project: Project,
    report: FsckReport,
    *,
    repair: bool,
    grace_seconds: float,
    registry_ok: bool,
) -> set[str]:
    """Check the warehouse; returns the artifact digests stored splits reference."""
    from dmv.data.sources import strip_credentials

    location = project.config.location("warehouse")
    status = StoreStatus("warehouse", strip_credentials(location))
    report.stores.append(status)
    referenced: set[str] = set()
    if registry_ok:
        from dmv.data.checks import fsck_tables

        scratch = FsckReport()
        referenced = fsck_tables(project, scratch, repair=repair, grace_seconds=grace_seconds)
        report.orphans += scratch.orphans
        report.repaired += scratch.repaired
        report.checked.update(scratch.checked)
        for p in scratch.problems:
            report.problem(status, p["kind"], p["what"], p["error"])
            if p["kind"] == "warehouse":
                status.status = "damaged"
    if status.status != "damaged":
        try:
            _warehouse_space(location, report, repair=repair)
        except DmvError as exc:
            report.problem(status, "warehouse", status.location, exc.message)
            status.status = "damaged"
    tables = report.checked.get("split tables")
    parts = [f"{tables} registered split table(s) present" if tables is not None else "opens"]
    space = report.space
    if space.get("reclaimable_bytes"):
        verb = "reclaimed" if repair else "reclaimable with --repair"
        amount = space["reclaimed_bytes"] if repair else space["reclaimable_bytes"]
        parts.append(f"{_mb(amount)} {verb}")
    if space.get("reusable_bytes"):
        parts.append(f"{_mb(space['reusable_bytes'])} free inside the file (reused by new splits)")
    orphan_tables = sum(1 for o in report.orphans if o["kind"] == "split table")
    if orphan_tables:
        parts.append(f"{orphan_tables} orphan table(s)")
    if not registry_ok:
        parts.append("split tables not checked: needs a readable registry")
    if status.status == "damaged":
        status.summary = next(
            (p["error"] for p in report.problems if p["store"] == "warehouse"), "damaged"
        )
    else:
        status.summary = "; ".join(parts)
    return referenced


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _warehouse_space(location: str, report: FsckReport, *, repair: bool) -> None:
    """Measure (and with ``repair`` reclaim) the file space no table uses.

    A split killed part-way has already written its blocks to the end of the
    file; DuckDB rolls the tables back on the next open but keeps the file's
    length until a checkpoint that has something to write. A checkpoint after a
    no-op change (a probe table created and dropped) gives the tail back.
    """
    from dmv.data.warehouse import open_warehouse

    with open_warehouse(location) as wh:
        if not wh.reclaims_file_space:
            report.space = {"engine": wh.dialect, "note": "space is the database's own (VACUUM)"}
            return
        path = wh.url
        if path == ":memory:" or not os.path.exists(path):
            return
        con: Any = wh.con  # type: ignore[attr-defined]
        from dmv.integrity import check_duckdb_file

        check_duckdb_file(con, path, exact=True)
        before = _duckdb_space(con, path)
        report.space = dict(before)
        if repair and before["reclaimable_bytes"] > 0:
            con.execute("CREATE TABLE __dmv_fsck_probe (x INTEGER)")
            con.execute("DROP TABLE __dmv_fsck_probe")
            con.execute("CHECKPOINT")
            after = _duckdb_space(con, path)
            report.space = {
                **after,
                "file_bytes_before": before["file_bytes"],
                "reclaimed_bytes": before["file_bytes"] - after["file_bytes"],
            }
            report.repaired.append(
                {
                    "kind": "warehouse space",
                    "path": path,
                    "bytes": before["file_bytes"] - after["file_bytes"],
                }
            )


def _duckdb_space(con: Any, path: str) -> dict[str, int]:
    from dmv.integrity import _DUCKDB_HEADER_BYTES

    ((total, block, free),) = con.execute(
        "SELECT total_blocks, block_size, free_blocks FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchall()
    size = os.path.getsize(path)
    described = _DUCKDB_HEADER_BYTES + int(total) * int(block) if total else size
    in_file_free = max(0, int(free) * int(block) - max(0, described - size))
    return {
        "file_bytes": size,
        "used_bytes": _DUCKDB_HEADER_BYTES + (int(total) - int(free)) * int(block),
        "reclaimable_bytes": max(0, size - described),
        "reusable_bytes": in_file_free,
    }


# -- splits ---------------------------------------------------------------------


def _check_splits(project: Project, report: FsckReport, *, deep: bool, registry_ok: bool) -> None:
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
        for model in project.models():
            for info in project.data_splits(model.name):
                count += 1
                what = f"{model.name} {info.ref}"
                found = project.data_verify(model.name, info.ref)
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
