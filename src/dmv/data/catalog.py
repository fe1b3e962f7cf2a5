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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dmv.artifacts import Blob
from dmv.data.credentials import strip_credentials
from dmv.data.engines import open_warehouse
from dmv.data.export import ExportResult
from dmv.data.export import export_part as write_parquet
from dmv.data.files import read_labels, scan_files, split_files, store_file_parts
from dmv.data.fingerprint import algorithm_of, fingerprint_retrieval, verify_parts
from dmv.data.ids import (
    canonical_json,
    data_id_for,
    definition_digest,
    split_definition,
    split_id_for,
)
from dmv.data.records import DEFAULT_RATIOS, PartInfo, QueryInfo, SplitInfo, SplitSpec
from dmv.data.shared import drop_split_tables
from dmv.data.sources import Retrieval, Source
from dmv.data.split import AlreadyStored, parse_by, shortfalls, store_split
from dmv.data.streamed import StreamedPart
from dmv.data.verified import prove, read_verified, to_format
from dmv.errors import (
    ConflictError,
    DataError,
    ImmutableError,
    IntegrityError,
    InvalidInput,
    NotFound,
    StorageError,
)
from dmv.version import Version, check_data_id, check_name, parse_data_split, table_prefix

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.config import Config
    from dmv.data.warehouse import Progress, Warehouse
    from dmv.registry import RegistryStore

__all__ = [
    "ProjectStores",
    "QueryInfo",
    "SplitInfo",
    "drop_tables",
    "export_part",
    "find_split",
    "get_query",
    "get_split",
    "list_queries",
    "list_splits",
    "materialise",
    "read_dataset",
    "register_query",
    "warehouse",
]


class ProjectStores(Protocol):
    """What the data layer reads of a project: its root, settings, registry and artifacts."""

    @property
    def root(self) -> Path: ...

    @property
    def config(self) -> Config: ...

    @property
    def registry(self) -> RegistryStore: ...

    @property
    def artifacts(self) -> ArtifactStore: ...


@contextmanager
def warehouse(
    stores: ProjectStores, *, read_only: bool = False, sandbox: bool = False
) -> Iterator[Warehouse]:
    """The project's warehouse, open for one operation (DuckDB allows one writer).

    ``sandbox``: the connection runs retrieval SQL, so a DuckDB warehouse may read
    its own tables and nothing else (no files, URLs or extensions). A PostgreSQL
    warehouse runs the split in dmv's own transaction, which must stay writable.
    """
    wh = open_warehouse(stores.config.location("warehouse"), read_only=read_only)
    try:
        if sandbox:
            wh.retrieval_sandbox(timeout=stores.config["source_timeout"] or None)
        yield wh
    finally:
        wh.close()


def _query_info(model: str, row: Any) -> QueryInfo:
    return QueryInfo(model, row.data, row.kind, row.definition, row.columns or [], row.created_at)


def register_query(
    stores: ProjectStores,
    model: str,
    *,
    sql: str | None = None,
    source: str | None = None,
    params: Mapping[str, Any] | None = None,
    data_id: str | None = None,
) -> QueryInfo:
    """Register a retrieval; the same definition always gets the same DATA id."""
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
    stores: ProjectStores,
    model: str,
    files: str,
    *,
    labels: str | None = None,
    data_id: str | None = None,
) -> QueryInfo:
    """Register a set of files (path, folder or glob; local or fsspec URL) as a retrieval."""
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
    stores: ProjectStores,
    model: str,
    kind: str,
    definition: dict[str, Any],
    columns: list[dict[str, str]],
    data_id: str | None,
) -> QueryInfo:
    """Store a retrieval definition under its DATA id, reusing the id of an identical one."""

    def choose(rows: Any) -> Any:
        digest = definition_digest(definition)
        existing = {r.data: definition_digest(r.definition) for r in rows}
        same = next((r for r in rows if existing[r.data] == digest), None)
        if same is not None and data_id in (None, same.data):
            return same
        return data_id_for(definition, stores.config["id_style"], existing, data_id)

    row = stores.registry.add_query(model, kind, definition, columns, choose)
    return _query_info(model, row)


def get_query(stores: ProjectStores, model: str, data: str) -> QueryInfo:
    return _query_info(model, stores.registry.get_query(model, data))


def list_queries(stores: ProjectStores, model: str) -> list[QueryInfo]:
    return [_query_info(model, r) for r in stores.registry.list_queries(model)]


def _split_info(model: str, row: Any) -> SplitInfo:
    return SplitInfo(model, row.data, row.split, row.spec, row.parts, row.leakage, row.created_at)


def get_split(stores: ProjectStores, model: str, data: str, split: str) -> SplitInfo:
    return _split_info(model, stores.registry.get_split(model, data, split))


def find_split(
    stores: ProjectStores, model: str, data: str | None, split: str | None = None
) -> SplitInfo:
    """A stored split named by DATA and SPLIT, or by ``DATA.SPLIT`` in ``data`` alone."""
    d, s = parse_data_split(data) if split is None and data else (data, split)
    if d is None or s is None:
        raise InvalidInput(
            "name the split as DATA.SPLIT",
            hint="e.g. 0123.abcd; 'dmv data list MODEL' lists the stored splits",
        )
    return get_split(stores, model, d, s)


def list_splits(stores: ProjectStores, model: str, data: str | None = None) -> list[SplitInfo]:
    return [_split_info(model, r) for r in stores.registry.list_splits(check_name(model), data)]


def materialise(
    stores: ProjectStores,
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
        digest = definition_digest(split_definition(content, spec.to_dict()))
        if split_id is None:
            for sid, owner in owners.items():
                if owner == digest:
                    raise AlreadyStored(sid)
        sid = split_id_for(content, spec.to_dict(), stores.config["id_style"], owners, split_id)
        if sid in known:
            if owners[sid] == digest:
                raise AlreadyStored(sid)
            raise ConflictError(
                f"SPLIT id {sid!r} already names another split of {data}",
                hint="choose another --id for this split, or leave --id out to derive one",
            )
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
        same_spec = [
            s
            for s in known.values()
            if canonical_json(s.spec) == canonical_json(spec.to_dict())
            and split_id in (None, s.split)
            and s.result.get("kind") != "files"
        ]
        found = _already_stored(wh, retrieval, spec, same_spec, progress)
        if found is not None:
            return found
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
        except AlreadyStored as stored:
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


def _already_stored(
    wh: Warehouse,
    retrieval: Retrieval,
    spec: SplitSpec,
    same_spec: list[SplitInfo],
    progress: Progress | None,
) -> SplitInfo | None:
    """The stored split of the same DATA, spec and rows, found before anything is written.

    Only when a split of the same spec is stored already is the retrieval read once
    more, to fingerprint its rows (no table is built): the same rows under the same
    spec are the same SPLIT. Its parts are then proven intact by their recorded
    checks; parts that are missing or damaged are rebuilt under their own names, the
    one case where an identical split writes. None: not stored, split as usual.
    """
    if not same_spec:
        return None
    recorded = [str(s.result.get("content_fingerprint", "")) for s in same_spec]
    match = None
    # one pass per algorithm the same-spec splits were recorded with (v1 splits stay v1)
    for algo in sorted({algorithm_of(fp) for fp in recorded if fp}, reverse=True):
        content = fingerprint_retrieval(wh, retrieval, progress=progress, algo=algo)
        match = next((s for s, fp in zip(same_spec, recorded, strict=True) if fp == content), None)
        if match is not None:
            break
    if match is None:
        return None
    stored = match.split_result()
    if verify_parts(wh, stored).ok:
        return replace(match, already_stored=True)
    drop_split_tables(wh, [p.table for p in stored.parts])
    rebuilt = store_split(
        wh, retrieval, spec, stored.table_prefix, progress=progress, allow_empty=True,
        storage="shared" if stored.storage.get("kind") == "shared" else "tables",
        algo=algorithm_of(stored.content_fingerprint),
    )  # fmt: skip
    if [p.fingerprint for p in rebuilt.parts] != [p.fingerprint for p in stored.parts]:
        drop_split_tables(wh, [p.table for p in rebuilt.parts])
        raise IntegrityError(
            f"split {match.ref} could not be rebuilt: its retrieval's rows split differently",
            hint=f"drop it (dmv data drop {match.model} {match.ref}) and split again",
        )
    return replace(match, already_stored=True, rebuilt=True)


def _register_split(
    stores: ProjectStores,
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
    stores: ProjectStores,
    query: QueryInfo,
    spec: Any,
    split_id: str | None,
    known: Mapping[str, SplitInfo],
    progress: Progress | None,
    guard: tuple[bool, bool, float] = (False, False, 0.5),
) -> SplitInfo:
    """Split a file set and store each part's files and manifest in the artifact store."""
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
        raise InvalidInput(
            "--strict refuses empty parts; it cannot go with --allow-empty",
            hint="pass one of --strict and --allow-empty",
        )
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


def read_part(stores: ProjectStores, info: SplitInfo, part: str, format: str = "pandas") -> Any:
    """A part of a stored table split, read only once proven intact (see dmv.data.verified).

    The engine check a first read computes is recorded on the split, so that later
    reads skip the md5 pass.
    """
    entry = next((p for p in info.result.get("parts", []) if p["name"] == part), None)
    if entry is None:
        info.table(part)  # raises NotFound naming the parts
    assert entry is not None
    with warehouse(stores) as wh:
        read = read_verified(wh, PartInfo.from_dict(entry), entry.get("checks"))
    if read.record is not None:
        _record_check(stores, info, part, *read.record)
    return to_format(read.table, format)


def export_part(stores: ProjectStores, info: SplitInfo, part: str, out: str) -> ExportResult:
    """Write a part of a stored table split to Parquet, once proven intact."""
    table = info.table(part)  # raises NotFound naming the parts
    entry = next(p for p in info.result.get("parts", []) if p["name"] == part)
    with warehouse(stores) as wh:
        prove(wh, PartInfo.from_dict(entry))
        return write_parquet(wh, table, out)


def _record_check(stores: ProjectStores, info: SplitInfo, part: str, key: str, value: str) -> None:
    """Keep a part's engine check on its split record (only ever added, never changed)."""
    # a read-only registry: the part stays proven, by its md5, on every read
    with contextlib.suppress(StorageError):
        stores.registry.add_part_check(info.model, info.data, info.split, part, key, value)


def stream_part(
    stores: ProjectStores, info: SplitInfo, part: str, batch_size: int | None = None
) -> StreamedPart:
    """A part of a stored table split as a stream of Arrow record batches, proven as it
    streams (see :mod:`dmv.data.streamed`)."""
    if info.result.get("kind") == "files":
        raise InvalidInput(
            f"{info.ref} is a split of files: it has no rows to stream",
            hint="read it with run.dataset(part), which lists the files",
        )
    entry = next((p for p in info.result.get("parts", []) if p["name"] == part), None)
    if entry is None:
        info.table(part)  # raises NotFound naming the parts
    assert entry is not None
    return StreamedPart(lambda: warehouse(stores), PartInfo.from_dict(entry), batch_size)


def read_dataset(stores: ProjectStores, info: SplitInfo, part: str, format: str = "pandas") -> Any:
    """One part of a stored split: a table part proven intact (see :func:`read_part`),
    a file part fetched and verified (see :func:`read_files`)."""
    if info.result.get("kind") == "files":
        return read_files(stores, info, part)
    return read_part(stores, info, part, format)


def read_files(stores: ProjectStores, info: SplitInfo, part: str) -> Any:
    """A file part as a DataFrame (path, size, digest, local_path), fetched and verified."""
    import pandas as pd

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

    return definition_digest(split_definition(content, dict(spec)))


def versions_using(stores: ProjectStores, model: str, data: str, split: str) -> list[Version]:
    """The versions trained on ``data.split``."""
    return [
        v.version
        for v in stores.registry.list_versions(model)
        if (v.version.data, v.version.split) == (data, split)
    ]


def check_droppable(stores: ProjectStores, model: str, data: str, split: str) -> SplitInfo:
    """The stored split if :func:`drop` may delete it; else the refusal drop would give."""
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
    return info


def drop(stores: ProjectStores, model: str, data: str, split: str) -> None:
    """Delete a stored split no version uses; splits behind versions are immutable."""
    info = check_droppable(stores, model, data, split)
    stores.registry.drop_split(model, data, split)
    with warehouse(stores) as wh:
        drop_split_tables(wh, [str(p["table"]) for p in info.parts if p.get("table")])


def drop_tables(stores: ProjectStores, tables: list[str]) -> None:
    """Drop split tables (and give back their shared storage) in the project's warehouse."""
    if tables:
        with warehouse(stores) as wh:
            drop_split_tables(wh, tables)


def require_stored(stores: ProjectStores, model: str, data: str, split: str) -> SplitInfo:
    """The stored split a derived version trains on; a clear error when there is none."""
    try:
        return get_split(stores, model, data, split)
    except NotFound:
        raise DataError(
            f"{model} has no stored split {data}.{split}: a derived version trains on one",
            hint=f"store it first: dmv data split {model} {data}; or pass version= "
            "for a model whose data lives elsewhere",
        ) from None
