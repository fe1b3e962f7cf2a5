"""The registry side of data versioning: retrievals (DATA) and stored splits (SPLIT).

A retrieval's definition (SQL, parameters, source identity without credentials)
and a split's spec, tables, fingerprints, profiles and leakage report are kept
in the model repository; the rows stay in the warehouse. A split's tables are
built and committed in the warehouse first and registered second; if the
registration fails the tables are dropped again, and if the process dies in
between, ``dmv fsck`` finds the unregistered tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dmv.data.records import QueryInfo, SplitInfo
from dmv.data.shared import drop_split_tables
from dmv.errors import ConflictError, DataError, ImmutableError, InvalidInput, NotFound
from dmv.version import Version, check_data_id, check_name, table_prefix

if TYPE_CHECKING:
    from dmv.context import Stores
    from dmv.data.export import ExportResult
    from dmv.data.warehouse import Progress, Warehouse

__all__ = [
    "QueryInfo",
    "SplitInfo",
    "export_part",
    "get_query",
    "get_split",
    "list_queries",
    "list_splits",
    "materialise",
    "register_query",
    "warehouse",
]


@contextmanager
def warehouse(
    stores: Stores, *, read_only: bool = False, sandbox: bool = False
) -> Iterator[Warehouse]:
    """The project's warehouse, open for one operation (DuckDB allows one writer).

    ``sandbox``: the connection runs retrieval SQL, so a DuckDB warehouse may read
    its own tables and nothing else (no files, URLs or extensions). A PostgreSQL
    warehouse runs the split in dmv's own transaction, which must stay writable.
    """
    from dmv.data.warehouse import open_warehouse

    wh = open_warehouse(stores.config.location("warehouse"), read_only=read_only)
    try:
        if sandbox:
            wh.retrieval_sandbox()
        yield wh
    finally:
        wh.close()


def _query_info(model: str, row: Any) -> QueryInfo:
    return QueryInfo(model, row.data, row.kind, row.definition, row.columns or [], row.created_at)


def register_query(
    stores: Stores,
    model: str,
    *,
    sql: str | None = None,
    source: str | None = None,
    params: Mapping[str, Any] | None = None,
    data_id: str | None = None,
) -> QueryInfo:
    """Register a retrieval; the same definition always gets the same DATA id."""
    from dmv.data.sources import Retrieval, Source

    check_name(model)
    if data_id is not None:
        check_data_id(data_id, "DATA")
    with warehouse(stores, sandbox=True) as wh:
        timeout = stores.config["source_timeout"]
        retrieval = Retrieval(Source.from_url(source, wh, timeout=timeout), sql, dict(params or {}))
        columns = retrieval.source.describe(sql, retrieval.params)
        definition = retrieval.definition()
    return _record_query(stores, model, "sql", definition, [c.to_dict() for c in columns], data_id)


def register_files(
    stores: Stores,
    model: str,
    files: str,
    *,
    labels: str | None = None,
    data_id: str | None = None,
) -> QueryInfo:
    """Register a set of files (path, folder or glob; local or fsspec URL) as a retrieval."""
    from dmv.data.files import scan_files
    from dmv.data.sources import strip_credentials

    check_name(model)
    if data_id is not None:
        check_data_id(data_id, "DATA")
    manifest = scan_files(files)  # checks the files exist now
    definition: dict[str, Any] = {
        "kind": "files",
        "source": strip_credentials(manifest.root),
        "pattern": strip_credentials(files),
        "labels": strip_credentials(labels) if labels else None,
    }
    columns = [{"name": "path", "type": "VARCHAR"}, {"name": "size", "type": "BIGINT"}]
    return _record_query(stores, model, "files", definition, columns, data_id)


def _record_query(
    stores: Stores,
    model: str,
    kind: str,
    definition: dict[str, Any],
    columns: list[dict[str, str]],
    data_id: str | None,
) -> QueryInfo:
    """Store a retrieval definition under its DATA id, reusing the id of an identical one."""
    from dmv.data.ids import data_id_for, definition_digest

    def choose(rows: Any) -> Any:
        digest = definition_digest(definition)
        existing = {r.data: definition_digest(r.definition) for r in rows}
        same = next((r for r in rows if existing[r.data] == digest), None)
        if same is not None and data_id in (None, same.data):
            return same
        return data_id_for(definition, stores.config["id_style"], existing, data_id)

    row = stores.registry.add_query(model, kind, definition, columns, choose)
    return _query_info(model, row)


def get_query(stores: Stores, model: str, data: str) -> QueryInfo:
    return _query_info(model, stores.registry.get_query(model, data))


def list_queries(stores: Stores, model: str) -> list[QueryInfo]:
    return [_query_info(model, r) for r in stores.registry.list_queries(model)]


def _split_info(model: str, row: Any) -> SplitInfo:
    return SplitInfo(model, row.data, row.split, row.spec, row.parts, row.leakage, row.created_at)


def get_split(stores: Stores, model: str, data: str, split: str) -> SplitInfo:
    return _split_info(model, stores.registry.get_split(model, data, split))


def list_splits(stores: Stores, model: str, data: str | None = None) -> list[SplitInfo]:
    return [_split_info(model, r) for r in stores.registry.list_splits(check_name(model), data)]


class _Stored(Exception):
    """The split being made exists already (same content, same spec): reuse it."""

    def __init__(self, split: str) -> None:
        self.split = split


def materialise(
    stores: Stores,
    model: str,
    data: str,
    *,
    by: str = "row",
    ratios: Mapping[str, float] | None = None,
    salt: str = "",
    split_id: str | None = None,
    strict: bool = False,
    allow_empty: bool = False,
    min_share: float | None = None,
    progress: Progress | None = None,
) -> SplitInfo:
    """Run the retrieval now and store its rows split into parts; returns the split.

    Empty parts and parts below ``min_share`` of their ratio (default: the
    ``split_min_share`` setting) are refused unless ``allow_empty``.
    """

    from dmv.data.ids import split_id_for
    from dmv.data.sources import Retrieval, Source
    from dmv.data.split import DEFAULT_RATIOS, SplitSpec, parse_by, store_split

    query = get_query(stores, model, data)
    kind, column = parse_by(by)
    spec = SplitSpec(kind, column, dict(ratios or DEFAULT_RATIOS), salt)
    if split_id is not None:
        check_data_id(split_id, "SPLIT")
    known = {s.split: s for s in list_splits(stores, model, data)}
    share = stores.config["split_min_share"] if min_share is None else float(min_share)
    if query.kind == "files":
        guard = (strict, allow_empty, share)
        return _store_files(stores, query, spec, split_id, known, progress, guard)
    owners = {
        s.split: _split_digest(s.result.get("content_fingerprint", ""), s.spec)
        for s in known.values()
    }
    chosen: dict[str, str] = {}

    def prefix(content: str) -> str:
        from dmv.data.ids import definition_digest, split_definition

        digest = definition_digest(split_definition(content, spec.to_dict()))
        if split_id is None:
            for sid, owner in owners.items():
                if owner == digest:
                    raise _Stored(sid)
        sid = split_id_for(content, spec.to_dict(), stores.config["id_style"], owners, split_id)
        if sid in known:
            if owners[sid] == digest:
                raise _Stored(sid)
            raise ConflictError(f"SPLIT id {sid!r} already names another split of {data}")
        chosen["split"] = sid
        return f"{table_prefix(model)}__{data}__{sid}"

    with warehouse(stores, sandbox=True) as wh:
        definition = query.definition
        source = Source.from_url(
            None if definition["source"] == "warehouse" else definition["source"],
            wh,
            timeout=stores.config["source_timeout"],
        )
        retrieval = Retrieval(source, definition["sql"], definition.get("params") or {})
        try:
            # A fresh split cannot put one row in two parts: skip that (costly) check.
            result = store_split(
                wh,
                retrieval,
                spec,
                prefix,
                progress=progress,
                check=True,
                strict=strict,
                check_rows=False,
                allow_empty=allow_empty,
                min_share=share,
            )
        except _Stored as stored:
            return known[stored.split]
        sid = chosen["split"]
        leakage = result.leakage.to_dict() if result.leakage else None
        try:
            info = _register_split(
                stores, model, data, sid, spec.to_dict(), result.to_dict(), leakage
            )
        except BaseException:
            # Registration failed: the tables must not outlive it.
            drop_split_tables(wh, [part.table for part in result.parts])
            raise
    return info


def _register_split(
    stores: Stores,
    model: str,
    data: str,
    split: str,
    spec: dict[str, Any],
    body: dict[str, Any],
    leakage: dict[str, Any] | None,
) -> SplitInfo:
    row = stores.registry.add_split(model, data, split, spec, body, leakage)
    return _split_info(model, row)


def _store_files(
    stores: Stores,
    query: QueryInfo,
    spec: Any,
    split_id: str | None,
    known: Mapping[str, SplitInfo],
    progress: Progress | None,
    guard: tuple[bool, bool, float] = (False, False, 0.5),
) -> SplitInfo:
    """Split a file set and store each part's files and manifest in the artifact store."""
    from dmv.data.files import read_labels, scan_files, split_files, store_file_parts
    from dmv.data.ids import split_id_for
    from dmv.data.split import shortfalls

    d = query.definition
    manifest = scan_files(d["pattern"], progress=progress)
    labels = None
    if spec.by in ("key", "group"):
        if not d.get("labels"):
            raise DataError(
                f"a {spec.by} split of files needs a label file",
                hint="register the files with --labels labels.csv (columns path and the key)",
            )
        labels = read_labels(d["labels"], key_column=spec.column or "key")
    parts = split_files(manifest, spec, labels)
    strict, allow_empty, min_share = guard
    if strict and allow_empty:
        raise InvalidInput("--strict refuses empty parts; it cannot go with --allow-empty")
    warnings = shortfalls(spec, {n: len(m.files) for n, m in parts.items()}, min_share)
    if warnings and not allow_empty:
        raise DataError(
            "the split would mislead: " + "; ".join(warnings) + "; nothing was stored",
            hint="change --ratios or add files, or store it anyway with --allow-empty",
            warnings=warnings,
        )
    content = manifest.fingerprint
    owners = {
        s.split: _split_digest(s.result.get("content_fingerprint", ""), s.spec)
        for s in known.values()
    }
    digest = _split_digest(content, spec.to_dict())
    for sid, owner in owners.items():
        if owner == digest and split_id in (None, sid):
            return known[sid]
    sid = split_id_for(content, spec.to_dict(), stores.config["id_style"], owners, split_id)
    prefix = f"datasets/{query.model}/{query.data}/{sid}"
    store = stores.artifacts
    stored = store_file_parts(
        parts, lambda _name, data: store.put_bytes(data).digest, prefix, progress=progress
    )
    body = {
        "kind": "files",
        "spec": spec.to_dict(),
        "content_fingerprint": content,
        "table_prefix": prefix,
        "warnings": warnings,
        "parts": [
            {
                "name": name,
                "rows": len(part.manifest.files),
                "fingerprint": part.manifest.fingerprint,
                "digest": part.manifest_digest,
                "manifest_name": part.manifest_name,
                "files": [
                    {"path": f.path, "size": f.size, "digest": part.stored[f.path]}
                    for f in part.manifest.files
                ],
            }
            for name, part in stored.items()
        ],
    }
    return _register_split(stores, query.model, query.data, sid, spec.to_dict(), body, None)


def read_part(stores: Stores, info: SplitInfo, part: str, format: str = "pandas") -> Any:
    """A part of a stored table split, read only once proven intact (see dmv.data.verified).

    The engine check a first read computes is recorded on the split, so that later
    reads skip the md5 pass.
    """
    from dmv.data.fingerprint import PartInfo
    from dmv.data.verified import read_verified, to_format

    entry = next((p for p in info.result.get("parts", []) if p["name"] == part), None)
    if entry is None:
        info.table(part)  # raises NotFound naming the parts
    assert entry is not None
    with warehouse(stores) as wh:
        read = read_verified(wh, PartInfo.from_dict(entry), entry.get("checks"))
    if read.record is not None:
        _record_check(stores, info, part, *read.record)
    return to_format(read.table, format)


def export_part(stores: Stores, info: SplitInfo, part: str, out: str) -> ExportResult:
    """Write a part of a stored table split to Parquet, once proven intact."""
    from dmv.data.export import export_part as write_parquet
    from dmv.data.fingerprint import PartInfo
    from dmv.data.verified import prove

    table = info.table(part)  # raises NotFound naming the parts
    entry = next(p for p in info.result.get("parts", []) if p["name"] == part)
    with warehouse(stores) as wh:
        prove(wh, PartInfo.from_dict(entry))
        return write_parquet(wh, table, out)


def _record_check(stores: Stores, info: SplitInfo, part: str, key: str, value: str) -> None:
    """Keep a part's engine check on its split record (only ever added, never changed)."""
    from dmv.errors import StorageError

    # a read-only registry: the part stays proven, by its md5, on every read
    with contextlib.suppress(StorageError):
        stores.registry.add_part_check(info.model, info.data, info.split, part, key, value)


def read_files(stores: Stores, info: SplitInfo, part: str) -> Any:
    """A file part as a DataFrame (path, size, digest, local_path), fetched and verified."""
    import pandas as pd

    from dmv.artifacts import Blob

    entry = next((p for p in info.result.get("parts", []) if p["name"] == part), None)
    if entry is None:
        info.table(part)  # raises NotFound naming the parts
    assert entry is not None
    base = stores.root / ".dmv" / "datasets" / info.model / info.data / info.split / part
    rows = []
    for f in entry.get("files", []):
        target = base / f["path"]
        # a local copy is used only if its bytes are still the stored ones
        if not target.is_file() or _file_digest(target) != f["digest"]:
            stores.artifacts.fetch(
                Blob(f["digest"], int(f["size"])), target, what=f"{info.ref} {part} {f['path']}"
            )
        rows.append({**f, "local_path": str(target)})
    return pd.DataFrame(rows, columns=["path", "size", "digest", "local_path"])


def _file_digest(path: Any) -> str:
    from blake3 import blake3

    h = blake3()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "blake3:" + str(h.hexdigest())


def _split_digest(content: str, spec: Mapping[str, Any]) -> str:
    from dmv.data.ids import definition_digest, split_definition

    return definition_digest(split_definition(content, dict(spec)))


def versions_using(stores: Stores, model: str, data: str, split: str) -> list[Version]:
    """The versions trained on ``data.split``."""
    return [
        v.version
        for v in stores.registry.list_versions(model)
        if (v.version.data, v.version.split) == (data, split)
    ]


def drop(stores: Stores, model: str, data: str, split: str) -> None:
    """Delete a stored split no version uses; splits behind versions are immutable."""
    info = get_split(stores, model, data, split)
    users = versions_using(stores, model, data, split)
    if users:
        released = [v for v in users if v.released]
        if released:
            raise ImmutableError(
                f"split {data}.{split} is what {released[0]} was trained on: it cannot change",
                hint="released versions and their splits never change",
            )
        raise ConflictError(
            f"split {data}.{split} is used by {', '.join(v.number for v in users)}",
            hint="delete those prereleases first (dmv delete REF)",
        )
    stores.registry.drop_split(model, data, split)
    with warehouse(stores) as wh:
        drop_split_tables(wh, [str(p["table"]) for p in info.parts if p.get("table")])


def require_stored(stores: Stores, model: str, data: str, split: str) -> SplitInfo:
    """The stored split a derived version trains on; a clear error when there is none."""
    try:
        return get_split(stores, model, data, split)
    except NotFound:
        raise DataError(
            f"{model} has no stored split {data}.{split}: a derived version trains on one",
            hint=f"store it first: dmv data split {model} {data}; or pass version= "
            "for a model whose data lives elsewhere",
        ) from None
