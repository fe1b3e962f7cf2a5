"""Back a project up to a folder, and restore it from one.

A backup is one consistent picture of the embedded stores, taken while dmv is
in use:

1. the registry first, with SQLite's online backup API (a snapshot of one
   committed state, whatever other processes write meanwhile), then checked
   with ``PRAGMA integrity_check`` — a damaged registry is refused, never copied;
2. the warehouse next, ``COPY FROM DATABASE`` into a fresh DuckDB file (a
   damaged warehouse fails here too). dmv registers last, so a table the
   registry snapshot names is already committed; a table added after the
   snapshot is at worst an orphan that ``dmv fsck`` lists;
3. the artifact manifest: every blob the registry snapshot references, with its
   digest and size; blobs of a local artifact store are copied and verified
   (content-addressed blobs never change, so copying them last is safe). For an
   object store the manifest is written and the blobs stay where they are.

``dmv-backup.json`` records what was copied with the BLAKE3 digest of every
file, so :func:`restore` proves the backup intact before it replaces anything.
A PostgreSQL registry or warehouse is backed up with ``pg_dump``; dmv says so.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv._meta import __version__
from dmv._urls import database_url as redact_url
from dmv._urls import redact, registry_url
from dmv._urls import source_url as strip_credentials
from dmv.artifacts import Blob, hash_file, missing_blob
from dmv.data.engines import embedded_file
from dmv.errors import ConflictError, IntegrityError, InvalidInput, NotFound, StorageError
from dmv.integrity import (
    check_duckdb_file,
    corrupt_registry,
    corrupt_warehouse,
    is_duckdb_corruption,
)
from dmv.interrupts import register, unregister
from dmv.maintenance import tables as tables_backup
from dmv.plugins import scheme_of

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.progress import Progress
    from dmv.stores import Stores

__all__ = ["MANIFEST", "backup", "restore"]

MANIFEST = "dmv-backup.json"
FORMAT = 1
_REGISTRY_FILE = "registry.db"
_WAREHOUSE_FILE = "warehouse.duckdb"


def _pg_refusal(store: str, url: str) -> InvalidInput:
    tool = "pg_dump -Fc" if store else "pg_dump"
    return InvalidInput(
        f"the {store} is a PostgreSQL database ({url}): dmv backs up only its embedded files",
        hint=f"back it up with '{tool} DBNAME > {store}.dump' and restore with pg_restore; "
        "'dmv backup' covers the SQLite registry, the DuckDB warehouse and the artifacts",
    )


def _sqlite_path(stores: Stores) -> str:

    url = registry_url(stores.config.location("registry"))
    if not url.startswith("sqlite"):
        raise _pg_refusal("registry", redact_url(url))
    return url.split("///", 1)[1]


def _duckdb_path(stores: Stores) -> str | None:
    """The DuckDB warehouse file; None for a PostgreSQL or Spark warehouse (see
    :mod:`dmv.maintenance.tables`)."""
    location = str(stores.config.location("warehouse"))
    path = embedded_file(location)
    if path is not None:
        return path
    scheme = scheme_of(location)
    if scheme.startswith("postgres") or scheme == "sc":
        return None
    raise InvalidInput(
        f"the warehouse is not a DuckDB file ({strip_credentials(location)}): "
        "dmv backs up only its embedded files",
        hint="back the warehouse up with its own tools (for Spark, the catalog's "
        "snapshots); 'dmv backup' covers the SQLite registry, the DuckDB warehouse "
        "and the artifacts",
    )


def _hash(path: Path) -> str:

    return hash_file(path).digest


def backup(
    stores: Stores,
    dest: str | os.PathLike[str],
    *,
    warehouse_external: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write a consistent backup of the project into the new or empty folder ``dest``.

    A PostgreSQL or Spark warehouse's dmv-owned tables are written as Parquet,
    fingerprint-checked; ``warehouse_external`` records them, and the command that
    backs them up with the engine's own tool, instead.
    """
    registry_path = _sqlite_path(stores)
    warehouse_path = _duckdb_path(stores)
    target = Path(dest).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConflictError(f"{target} is not an empty folder", hint="back up into a new folder")
    work = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    work.mkdir(parents=True)
    try:
        manifest = _write_backup(
            stores, registry_path, warehouse_path, work, progress, external=warehouse_external
        )
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if target.exists():
            target.rmdir()
        os.replace(work, target)  # the backup appears only once complete
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return {"path": str(target), **_summary(manifest)}


def _write_backup(
    stores: Stores,
    registry_path: str,
    warehouse_path: str | None,
    work: Path,
    progress: Progress | None = None,
    *,
    external: bool = False,
) -> dict[str, Any]:

    reg_copy = work / _REGISTRY_FILE
    if not os.path.exists(registry_path):
        raise NotFound(
            f"the registry {registry_path} does not exist",
            hint="check the registry setting in dmv.toml; 'dmv fsck' shows where the registry is",
        )
    try:
        src = sqlite3.connect(f"file:{registry_path}?mode=ro", uri=True, timeout=60)
        try:
            dst = sqlite3.connect(reg_copy)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                found = [r[0] for r in dst.execute("PRAGMA integrity_check").fetchall()]
                if found != ["ok"]:
                    raise corrupt_registry(registry_path, "; ".join(map(str, found[:3])))
                named, tables = _referenced(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.DatabaseError as exc:
        raise corrupt_registry(registry_path, exc) from None

    warehouse: dict[str, Any] = {"kind": "duckdb-file", "file": None, "tables": []}
    location = str(stores.config.location("warehouse"))
    if warehouse_path is None and external:
        warehouse = tables_backup.external(location, sorted(tables))
    elif warehouse_path is None:
        entries = tables_backup.export_tables(
            location, tables, work / tables_backup.FOLDER, progress
        )
        warehouse = {
            "kind": "parquet",
            "engine": scheme_of(location),
            "location": strip_credentials(location),
            "file": None,
            "tables": entries,
        }
    elif os.path.exists(warehouse_path):
        copied = _copy_duckdb(warehouse_path, work / _WAREHOUSE_FILE)
        missing = sorted(set(tables) - set(copied))
        if missing:
            raise IntegrityError(
                f"the warehouse {warehouse_path} lacks registered split table(s) "
                f"{', '.join(missing[:5])}; it was not backed up",
                hint="run 'dmv fsck' to see what is damaged",
            )
        warehouse = {
            "kind": "duckdb-file",
            "file": _WAREHOUSE_FILE,
            "bytes": (work / _WAREHOUSE_FILE).stat().st_size,
            "digest": _hash(work / _WAREHOUSE_FILE),
            "tables": copied,
        }

    store = stores.artifacts
    copied_blobs = store.is_local
    # A split's file manifest is named by digest alone: its size is the stored blob's.
    blobs = sorted((d, s if s is not None else _stored_size(store, d)) for d, s in named.items())
    if copied_blobs:
        for count, (digest, size) in enumerate(blobs):
            if progress:
                progress("copying artifacts", count, len(blobs))
            hexpart = digest.split(":", 1)[1]
            store.fetch(
                Blob(digest, size),
                work / "artifacts" / hexpart[:2] / hexpart[2:],
                what=f"backing up {digest[:19]}…",
            )
        if progress:
            progress("copying artifacts", len(blobs), len(blobs))

    from dmv.registry import schema  # lazy: sqlalchemy

    return {
        "format": FORMAT,
        "created_at": time.time(),
        "dmv": __version__,
        "registry": {
            "file": _REGISTRY_FILE,
            "schema": schema.SCHEMA_VERSION,
            "bytes": reg_copy.stat().st_size,
            "digest": _hash(reg_copy),
        },
        "warehouse": warehouse,
        "artifacts": {
            "location": redact(store.location),
            "copied": copied_blobs,
            "blobs": [{"digest": d, "size": s} for d, s in blobs],
        },
    }


def _referenced(conn: sqlite3.Connection) -> tuple[dict[str, int | None], dict[str, str]]:
    """The blobs (digest → size when recorded) and split tables (→ their fingerprint) a
    registry snapshot names."""
    blobs: dict[str, int | None] = {
        str(d): int(s) for d, s in conn.execute("SELECT digest, size FROM artifacts")
    }
    for row in conn.execute(
        "SELECT bundle_digest, bundle_size, envelope_digest, envelope_size FROM signatures"
    ):
        blobs[str(row[0])], blobs[str(row[2])] = int(row[1]), int(row[3])
    tables: dict[str, str] = {}
    for (parts,) in conn.execute("SELECT parts FROM splits"):
        for part in (json.loads(parts) or {}).get("parts", []) if parts else []:
            if part.get("table"):
                tables[str(part["table"])] = str(part.get("fingerprint") or "")
            for item in [part, *(part.get("files") or [])]:
                if isinstance(item, dict) and item.get("digest"):
                    size = item.get("size")
                    blobs.setdefault(str(item["digest"]), None if size is None else int(size))
    return blobs, dict(sorted(tables.items()))


def _stored_size(store: ArtifactStore, digest: str) -> int:

    size = store.size_of(digest)
    if size is None:
        raise missing_blob(Blob(digest, 0), "backup")
    return size


def _copy_duckdb(source: str, copy: Path) -> list[str]:
    """``COPY FROM DATABASE`` into a new file (tables in their row order, views);
    returns the tables and views copied."""
    import duckdb

    try:
        con = duckdb.connect(source, read_only=True)
    except duckdb.Error as exc:
        if is_duckdb_corruption(exc):
            raise corrupt_warehouse(source, exc) from None
        raise StorageError(
            f"cannot open the DuckDB warehouse {source}: {exc}",
            hint="another process holds it open for writing; back up between splits",
        ) from None
    register(con)  # Ctrl-C cancels the copy; the partial backup folder is removed
    try:
        check_duckdb_file(con, source, exact=True)
        name = con.execute("SELECT current_database()").fetchall()[0][0]
        quoted = str(copy).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS dmv_backup (READ_WRITE)")
        con.execute(f'COPY FROM DATABASE "{name}" TO dmv_backup')
        con.execute("DETACH dmv_backup")
        # the part views of shared split storage count as its tables
        tables = [
            str(r[0])
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                "UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = "
                "current_database() AND NOT internal ORDER BY 1"
            ).fetchall()
        ]
    except duckdb.Error as exc:
        if is_duckdb_corruption(exc):
            raise corrupt_warehouse(source, exc) from None
        raise StorageError(
            f"copying the warehouse {source} failed: {exc}",
            hint="check free disk space and that the warehouse file is readable, then run the "
            "backup again",
        ) from None
    finally:
        unregister(con)
        con.close()
    return tables


def _contains(manifest: dict[str, Any]) -> list[str]:
    """What a backup holds, said in words (the command's output and its JSON)."""
    wh, arts = manifest["warehouse"], manifest["artifacts"]
    kind = wh.get("kind", "duckdb-file")
    n = len(wh["tables"])
    said = ["the registry (SQLite)"]
    if kind == "parquet":
        said.append(
            f"{n} dmv-owned warehouse table(s) of the {wh.get('engine')} warehouse as Parquet, "
            "fingerprint-checked (the retrievals' source tables are not included)"
        )
    elif kind == "external":
        said.append(
            f"not the {wh.get('engine')} warehouse: its {n} dmv-owned table(s) are named, "
            + (f"back them up with: {wh['command']}" if wh.get("command") else wh.get("note", ""))
        )
    elif wh.get("file"):
        said.append(f"the DuckDB warehouse file ({n} table(s) and view(s))")
    said.append(
        f"{len(arts['blobs'])} artifact(s)"
        + ("" if arts["copied"] else " as a manifest (the blobs stay in the object store)")
    )
    return said


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    arts = manifest["artifacts"]
    return {
        "created_at": manifest["created_at"],
        "warehouse": manifest["warehouse"].get("kind", "duckdb-file"),
        "warehouse_command": manifest["warehouse"].get("command"),
        "contains": _contains(manifest),
        "registry_bytes": manifest["registry"]["bytes"],
        "warehouse_bytes": manifest["warehouse"].get("bytes", 0),
        "warehouse_tables": len(manifest["warehouse"]["tables"]),
        "artifacts": len(arts["blobs"]),
        "artifacts_copied": arts["copied"],
    }


# -- restore --------------------------------------------------------------------


def _read_manifest(src: Path) -> dict[str, Any]:
    path = src / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(
            f"{src} is not a dmv backup (no {MANIFEST})", hint="pass a folder 'dmv backup' wrote"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(
            f"{path} is damaged: {exc}", hint="restore from another backup"
        ) from None
    if manifest.get("format") != FORMAT:
        raise InvalidInput(
            f"{path} has backup format {manifest.get('format')!r}, not {FORMAT}",
            hint="restore it with the dmv version that wrote it",
        )
    return manifest


def _check_file(src: Path, entry: dict[str, Any]) -> Path:
    name = str(entry["file"])
    if "/" in name or "\\" in name or name.startswith("."):
        raise IntegrityError(
            f"the backup names an unexpected file {name!r}",
            hint="the backup was altered: restore from another backup",
        )
    path = src / name
    if not path.is_file():
        raise IntegrityError(f"the backup lacks {path}", hint="the backup is incomplete")
    if path.stat().st_size != entry["bytes"] or _hash(path) != entry["digest"]:
        raise IntegrityError(
            f"{path} does not match the digest the backup recorded (damaged backup)",
            hint="restore from another backup",
        )
    return path


def _occupied(stores: Stores, registry_path: str, warehouse_path: str | None) -> list[str]:
    """What the project holds now (restore refuses to replace it unless forced)."""
    found = []
    if os.path.exists(registry_path) and os.path.getsize(registry_path) > 0:
        try:
            con = sqlite3.connect(f"file:{registry_path}?mode=ro", uri=True)
            try:
                n = con.execute("SELECT count(*) FROM models").fetchone()[0]
            finally:
                con.close()
            if n:
                found.append(f"a registry with {n} model(s)")
        except sqlite3.Error:
            found.append("a registry file dmv cannot read")
    if warehouse_path and os.path.exists(warehouse_path) and os.path.getsize(warehouse_path) > 0:
        found.append("a warehouse file")
    if stores.artifacts.is_local and next(iter(stores.artifacts.iter_blobs()), None):
        found.append("artifacts")
    return found


def _replace(copy_from: Path, target: str, suffixes: tuple[str, ...]) -> None:
    """Put a copy of ``copy_from`` at ``target`` atomically; drop the old journal files."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{target}.{uuid.uuid4().hex[:8]}.restoring"
    shutil.copyfile(copy_from, tmp)
    for suffix in suffixes:
        Path(target + suffix).unlink(missing_ok=True)
    os.replace(tmp, target)


def restore(
    stores: Stores,
    src: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replace the project's stores with the backup in ``src``; see the module docs.

    Refuses a project that holds anything unless ``force``. Stop other dmv
    processes (a server, training) first: their open files are replaced.
    """
    registry_path = _sqlite_path(stores)
    warehouse_path = _duckdb_path(stores)
    location = str(stores.config.location("warehouse"))
    source = Path(src).resolve()
    manifest = _read_manifest(source)
    registry_copy = _check_file(source, manifest["registry"])
    kind = manifest["warehouse"].get("kind", "duckdb-file")
    if kind not in ("duckdb-file", "parquet", "external"):
        raise InvalidInput(
            f"the backup's warehouse is of an unknown kind {kind!r}",
            hint="restore it with the dmv version that wrote it",
        )
    warehouse_copy = None
    if kind == "duckdb-file" and manifest["warehouse"].get("file"):
        if warehouse_path is None:
            raise InvalidInput(
                "the backup holds a DuckDB warehouse file; this project's warehouse is "
                f"{strip_credentials(location)}",
                hint="restore it into a project whose warehouse is a DuckDB file",
            )
        warehouse_copy = _check_file(source, manifest["warehouse"])
    if kind == "parquet":  # every file proven before anything is replaced
        tables_backup.check_files(source, manifest["warehouse"]["tables"])
    arts = manifest["artifacts"]
    blobs = [(str(b["digest"]), int(b["size"])) for b in arts["blobs"]]
    store = stores.artifacts
    if arts["copied"]:
        for digest, _size in blobs:
            hexpart = digest.split(":", 1)[1]
            path = source / "artifacts" / hexpart[:2] / hexpart[2:]
            if not path.is_file() or hash_file(path).digest != digest:
                raise IntegrityError(
                    f"the backup's artifact {path} is missing or damaged",
                    hint="restore from another backup",
                )
    occupied = _occupied(stores, registry_path, warehouse_path)
    if occupied and not force:
        raise ConflictError(
            f"the project at {stores.root} is not empty: it holds {', '.join(occupied)}",
            hint="'dmv restore DIR --force' replaces them (back them up first if they matter)",
        )
    restored_tables: list[str] = []
    if kind == "parquet":  # first: a table that fails to load leaves the registry as it was
        restored_tables = tables_backup.load_tables(
            location, source, manifest["warehouse"]["tables"], force=force, progress=progress
        )
    stores.reopen()  # the registry opens again on the restored file
    restoring = blobs if arts["copied"] else []
    for count, (digest, _size) in enumerate(restoring):
        if progress:
            progress("restoring artifacts", count, len(restoring))
        hexpart = digest.split(":", 1)[1]
        stored = store.put_file(source / "artifacts" / hexpart[:2] / hexpart[2:])
        if stored.digest != digest:  # pragma: no cover - checked above
            raise IntegrityError(
                f"artifact {digest[:19]}… changed while it was restored",
                hint="nothing may write the artifact store during a restore: run it again",
            )
    if progress and restoring:
        progress("restoring artifacts", len(restoring), len(restoring))
    _replace(registry_copy, registry_path, ("-wal", "-shm", "-journal"))
    ignore = stores.root / ".dmv" / ".gitignore"
    if ignore.parent.is_dir() and not ignore.exists():  # as 'dmv init' leaves it
        ignore.write_text("*\n", encoding="utf-8")
    if warehouse_copy is not None and warehouse_path is not None:
        _replace(warehouse_copy, warehouse_path, (".wal",))
    elif kind == "duckdb-file" and warehouse_path is not None:
        for suffix in ("", ".wal"):
            Path(warehouse_path + suffix).unlink(missing_ok=True)
    missing = [] if arts["copied"] else _missing_blobs(store, blobs)
    lacking = []
    if kind == "external":
        lacking = tables_backup.missing_tables(location, list(manifest["warehouse"]["tables"]))
    return {
        "path": str(source),
        "replaced": occupied,
        "missing_artifacts": missing,
        "restored_tables": restored_tables,
        "missing_tables": lacking,
        **_summary(manifest),
    }


def _missing_blobs(store: ArtifactStore, blobs: list[tuple[str, int]]) -> list[str]:

    return [d for d, s in blobs if not store.exists(Blob(d, s))]
