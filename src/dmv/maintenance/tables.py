"""A server warehouse's dmv-owned tables in a backup: as Parquet, or named as external.

A PostgreSQL or Spark warehouse is not a file dmv can copy. What dmv owns in it —
the tables of the stored splits the registry names — is written as one Parquet
file per table, each checked on the way out and on the way in:

* out: the file's rows are fingerprinted (md5sum, the same canonical rows on every
  engine) and must equal the fingerprint the registry recorded for the table;
* in: before anything is replaced, every file must match its BLAKE3 digest and its
  fingerprint again; each table is then loaded under a temporary name, measured in
  the target warehouse, and renamed to its own name only when it matches.

Or, where the user chooses (``warehouse_external``), nothing is copied: the backup
names the tables and the exact command that backs them up with the engine's own
tool (``pg_dump``), and a restore reports which of them the target lacks.

The retrievals' source tables are the user's, not dmv's: they are never included.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dmv._urls import source_url as strip_credentials
from dmv.artifacts import hash_file
from dmv.data._sql import check_identifier, quote_ident, quote_literal
from dmv.data.engines import external_backup_command, open_warehouse
from dmv.data.fingerprint import ALGORITHMS, FINGERPRINT_ALGO, fingerprint_query, measure_table
from dmv.errors import ConflictError, IntegrityError
from dmv.plugins import scheme_of
from dmv.progress import Progress

__all__ = [
    "FOLDER",
    "check_files",
    "export_tables",
    "external",
    "load_tables",
    "missing_tables",
]

#: the backup's folder of Parquet files
FOLDER = "warehouse"
_FILE_RE = re.compile(r"[A-Za-z0-9_]+\.parquet")


def _algorithm(like: str) -> str:
    """The algorithm of a recorded fingerprint (a missing one: the current algorithm)."""
    algo = like.split(":", 1)[0]
    return algo if algo in ALGORITHMS else FINGERPRINT_ALGO


def _parquet_fingerprint(path: Path, like: str) -> str:
    """The md5sum fingerprint of a Parquet file's rows, in an in-memory DuckDB.

    Computed with the algorithm of ``like``, the fingerprint it is compared with.
    """
    with open_warehouse(":memory:") as wh:
        sql = f"SELECT * FROM read_parquet({quote_literal(str(path))})"
        return fingerprint_query(wh, sql, algo=_algorithm(like))


def export_tables(
    location: str, tables: Mapping[str, str], folder: Path, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Write each table (name → recorded fingerprint) to ``folder/<name>.parquet``.

    Raises :class:`IntegrityError` when a table's rows do not match its fingerprint:
    a backup never holds rows the registry does not vouch for.
    """
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    with open_warehouse(location) as wh:
        for count, (table, recorded) in enumerate(sorted(tables.items())):
            if progress:
                progress("exporting warehouse tables", count, len(tables))
            path = folder / f"{check_identifier(table)}.parquet"
            rows = wh.export_parquet(quote_ident(table), path, None)
            found = _parquet_fingerprint(path, recorded)
            if found != recorded:
                raise IntegrityError(
                    f"warehouse table {table} does not match its recorded fingerprint "
                    f"({found} != {recorded}); it was not backed up",
                    hint="run 'dmv fsck --deep' to see which split is damaged",
                )
            entries.append(
                {
                    "table": table,
                    "file": f"{FOLDER}/{path.name}",
                    "rows": rows,
                    "bytes": path.stat().st_size,
                    "digest": hash_file(path).digest,
                    "fingerprint": recorded,
                }
            )
    if progress:
        progress("exporting warehouse tables", len(tables), len(tables))
    return entries


def external(location: str, tables: Sequence[str]) -> dict[str, Any]:
    """What a backup records of a warehouse it leaves to the engine's own tools."""
    url = strip_credentials(location)
    engine = "postgresql" if scheme_of(location).startswith("postgres") else scheme_of(location)
    command = external_backup_command(location, url, list(tables))
    return {
        "kind": "external",
        "engine": engine,
        "location": url,
        "tables": sorted(tables),
        "command": command,
        "note": "back these tables up with the engine's own tool"
        + ("" if command else " (for Spark: the table format's snapshots, e.g. Delta or Iceberg)"),
    }


def check_files(source: Path, entries: Sequence[Mapping[str, Any]]) -> None:
    """Prove every Parquet file of a backup intact: digest and fingerprint. Writes nothing."""
    for entry in entries:
        name = str(entry["file"]).removeprefix(f"{FOLDER}/")
        if not _FILE_RE.fullmatch(name) or name != f"{entry['table']}.parquet":
            raise IntegrityError(
                f"the backup names an unexpected file {entry['file']!r}",
                hint="the backup was altered: restore from another backup",
            )
        path = source / FOLDER / name
        if not path.is_file() or hash_file(path).digest != entry["digest"]:
            raise IntegrityError(
                f"the backup's warehouse table {path} is missing or damaged",
                hint="restore from another backup",
            )
        if _parquet_fingerprint(path, str(entry["fingerprint"])) != entry["fingerprint"]:
            raise IntegrityError(
                f"the rows of {path} do not match the fingerprint the backup recorded",
                hint="restore from another backup",
            )


def present(location: str, tables: Sequence[str]) -> list[str]:
    """Which of ``tables`` the warehouse holds already."""
    with open_warehouse(location) as wh:
        return [t for t in tables if wh.table_exists(t)]


def missing_tables(location: str, tables: Sequence[str]) -> list[str]:
    """Which of ``tables`` the warehouse lacks (after restoring an external one)."""
    held = set(present(location, tables))
    return [t for t in tables if t not in held]


def load_tables(
    location: str,
    source: Path,
    entries: Sequence[Mapping[str, Any]],
    *,
    force: bool,
    progress: Progress | None = None,
) -> list[str]:
    """Load checked Parquet files into the warehouse; each table only once it matches.

    Every table is loaded under a temporary name and measured there first; the
    tables are renamed into place only when all of them match (``force`` replaces
    tables of the same names). On any failure the loaded tables are dropped and
    the warehouse's own tables are left as they were.
    """
    import pyarrow as pa  # lazy: pyarrow
    import pyarrow.parquet as pq

    names = [str(e["table"]) for e in entries]
    held = present(location, names)
    if held and not force:
        raise ConflictError(
            f"the warehouse holds table(s) {', '.join(held[:5])} already",
            hint="'dmv restore DIR --force' replaces them (back them up first if they matter)",
        )
    token = secrets.token_hex(4)
    loaded: list[str] = []
    with open_warehouse(location) as wh:
        try:
            for count, entry in enumerate(entries):
                if progress:
                    progress("restoring warehouse tables", count, len(entries))
                name = str(entry["table"])
                staged = f"dmv_restore_{token}_{count}"
                path = source / FOLDER / f"{check_identifier(name)}.parquet"
                batches = pq.ParquetFile(path).iter_batches()
                reader = pa.RecordBatchReader.from_batches(pq.read_schema(path), batches)
                wh.create_from_arrow(staged, reader)
                loaded.append(staged)
                like = _algorithm(str(entry["fingerprint"]))
                found = measure_table(wh, staged, algo=like).fingerprint
                if found != entry["fingerprint"]:
                    raise IntegrityError(
                        f"table {name} loaded into the warehouse does not match its "
                        f"fingerprint ({found} != {entry['fingerprint']}); nothing was replaced",
                        hint="the warehouse changed the rows' types: restore into a warehouse "
                        "of the engine the backup was taken from",
                    )
            with wh.transaction():  # all tables swapped in at once where the engine can
                for count, name in enumerate(names):
                    if name in held:
                        wh.drop_table(name)
                    wh.rename_table(loaded[count], name)
            loaded = []
        finally:
            for staged in loaded:
                wh.drop_table(staged)
    if progress:
        progress("restoring warehouse tables", len(entries), len(entries))
    return names
