"""Batch prediction by version: score a stored part, a retrieval or a file into a table.

One pass over the input, batch by batch, in bounded memory:

1. **read**: a stored part streams with its engine check accumulated as it goes
   (:class:`~dmv.data.streamed.CheckedStream`); a retrieval runs in the same
   read-only sandbox as ``dmv data query``; a Parquet/CSV file is read through a
   sandboxed in-memory DuckDB. PostgreSQL streams through a server-side cursor.
2. **validate**: every row against the version's interface, column by column
   (:mod:`dmv.interface.batch`); a bad row stops the run (``refuse``) or goes to
   the rejects output with its problem (``reject``) — never silently dropped.
3. **score**: the version's served model (loaded as the server loads it: hash
   checked, unsafe formats only with trust) on each batch of good rows; the
   output batch holds the input's key columns, the interface's outputs and the
   version.
4. **write**: to a spool first, then under a temporary name, renamed to the final
   one only when complete (a warehouse table written from the spool — COPY on
   PostgreSQL — or a Parquet file); a part that changed while it streamed fails
   before anything is written.
5. **record**: the prediction run, with both fingerprints and the timings. A run
   killed before this step leaves no row and nothing under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dmv.data import catalog
from dmv.data._sql import MAX_IDENTIFIER, check_identifier
from dmv.data.fingerprint import FINGERPRINT_ALGO, algorithm_of, measure_table
from dmv.data.records import PartInfo, SplitInfo
from dmv.data.sources import Source
from dmv.data.streamed import CheckedStream
from dmv.errors import InvalidInput, NotFound, StorageError
from dmv.flavors import is_unsafe
from dmv.interface import Interface
from dmv.interface.batch import BatchValidator, check_schema
from dmv.registry.predictions import PredictionRecord
from dmv.release._scoring import VERSION_COLUMN, bad_rows, reasons, scored_batch
from dmv.release._spark_predict import part_input, runs_in_engine, score_in_spark, sql_input
from dmv.release.reproduce import Report
from dmv.release.serving_run import model_artifact

if TYPE_CHECKING:
    import pyarrow as pa

    from dmv.data.catalog import ProjectStores
    from dmv.data.warehouse import Warehouse
    from dmv.flavors import Model
    from dmv.progress import Progress
    from dmv.registry import VersionInfo

__all__ = [
    "BATCH_ROWS",
    "PredictInput",
    "PredictOutput",
    "output_table_name",
    "parse_input",
    "predict_batches",
    "verify_prediction",
]

#: Rows scored per batch: big enough that the model's own call dominates.
BATCH_ROWS = 100_000
PROBLEM_COLUMN = "dmv_problem"
OnBadRows = Literal["refuse", "reject"]
_FILE = re.compile(r"\.(parquet|csv|tsv|csv\.gz|parquet\.gz)$", re.IGNORECASE)
_PART = re.compile(r"^([0-9a-z]{1,32})\.([0-9a-z]{1,32}):([a-z][a-z0-9_]*)$")


@dataclass(frozen=True)
class PredictInput:
    """What to score: a stored part, a retrieval (SQL over a source) or a file."""

    kind: Literal["part", "sql", "file"]
    #: ``DATA.SPLIT:part``, the SQL, or the file's path
    text: str
    source: str | None = None

    def describe(self, source: Source | None = None) -> str:
        """What the registry records (a source's URL without credentials)."""
        if self.kind == "sql":
            where = source.identity() if source is not None else (self.source or "warehouse")
            return f"{where}: {' '.join(self.text.split())}"
        return self.text


@dataclass(frozen=True)
class PredictOutput:
    """Where the scores go: a warehouse table or a Parquet file."""

    kind: Literal["table", "parquet"]
    name: str

    @property
    def rejects(self) -> str:
        if self.kind == "parquet":
            return re.sub(r"\.parquet$", "", self.name) + ".rejects.parquet"
        return f"{self.name}__rejects"


def parse_input(input: str | None, sql: str | None, source: str | None) -> PredictInput:
    """``--input DATA.SPLIT:PART`` or ``--input FILE``, or ``--sql … [--source URL]``."""
    if (input is None) == (sql is None):
        raise InvalidInput(
            "give the rows to score: --input DATA.SPLIT:PART, --input FILE or --sql QUERY",
            hint="e.g. dmv predict price-model@production --input 0123.efgh:test",
        )
    if sql is not None:
        return PredictInput("sql", sql, source)
    if source is not None:
        raise InvalidInput("--source goes with --sql", hint="give the query with --sql")
    assert input is not None
    if _PART.match(input):
        return PredictInput("part", input)
    if _FILE.search(input):
        path = Path(input)
        if not path.is_file():
            raise NotFound(f"no file {input}", hint="give the path of a Parquet or CSV file")
        return PredictInput("file", str(path.resolve()))
    raise InvalidInput(
        f"--input {input!r} is neither DATA.SPLIT:PART nor a .parquet/.csv file",
        hint="e.g. --input 0123.efgh:test, or --input rows.parquet",
    )


def output_table_name(info: VersionInfo, pred_id: str) -> str:
    """``<model>__<X>_<Y>_<Z>__<DATA>__<SPLIT>__pred__<id>``: the version in the name."""
    v = info.version
    name = f"{v.name.replace('-', '_')}__{v.x}_{v.y}_{v.z}__{v.data}__{v.split}__pred__{pred_id}"
    if len(name) + len("__rejects") > MAX_IDENTIFIER:
        raise InvalidInput(
            f"the default output table name {name[:40]}… is longer than the warehouse allows",
            hint="name the output table yourself: --output TABLE (or --output FILE.parquet)",
        )
    return name


def parse_output(output: str | None, info: VersionInfo, pred_id: str) -> PredictOutput:
    if output is None:
        return PredictOutput("table", output_table_name(info, pred_id))
    if output.lower().endswith(".parquet"):
        return PredictOutput("parquet", str(Path(output).resolve()))
    check_identifier(output, "output table name")
    if len(output) + len("__rejects") > MAX_IDENTIFIER:
        raise InvalidInput(
            f"output table name {output!r} leaves no room for its rejects table",
            hint=f"use at most {MAX_IDENTIFIER - len('__rejects')} characters",
        )
    return PredictOutput("table", output)


# -- reading ------------------------------------------------------------------------------


@dataclass
class _Opened:
    batches: Iterator[pa.RecordBatch]
    schema: pa.Schema
    fingerprint: Callable[[], str]
    finish: Callable[[], None] = lambda: None
    keys: tuple[str, ...] = ()
    described: str = ""
    table: str | None = None


def _split_key(spec: Mapping[str, Any]) -> tuple[str, ...]:
    by, column = str(spec.get("by") or ""), str(spec.get("column") or "")
    return (column,) if by in ("key", "group") and column else ()


class _Hashing:
    """A sha256 of the Arrow IPC bytes of every batch that passes (SQL input)."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def add(self, batch: pa.RecordBatch) -> None:
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as w:
            w.write_batch(batch)
        self.h.update(sink.getvalue())

    def value(self) -> str:
        return f"arrow-ipc-sha256:{self.h.hexdigest()}"


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _find_part(
    stores: ProjectStores, model: str, spec: PredictInput
) -> tuple[SplitInfo, dict[str, Any]]:
    """The split and the part entry ``DATA.SPLIT:PART`` names."""
    ref, _, part = spec.text.partition(":")
    info = catalog.find_split(stores, model, ref)
    if info.result.get("kind") == "files":
        raise InvalidInput(
            f"split {ref} stores files, not rows",
            hint="score a split of table rows, a query or a Parquet/CSV file",
        )
    info.table(part)  # NotFound naming the parts
    return info, next(p for p in info.result.get("parts", []) if p["name"] == part)


@contextlib.contextmanager
def _open_input(stores: ProjectStores, model: str, spec: PredictInput) -> Iterator[_Opened]:
    if spec.kind == "part":
        info, entry = _find_part(stores, model, spec)
        part = entry["name"]
        with catalog.warehouse(stores) as wh:
            stream = CheckedStream(wh, PartInfo.from_dict(entry), entry.get("checks"))
            record = stream.record

            def finish() -> None:
                stream.finish()
                if record is not None:
                    with contextlib.suppress(StorageError):
                        stores.registry.add_part_check(model, info.data, info.split, part, *record)

            yield _Opened(
                iter(stream),
                stream.schema,
                lambda: str(entry["fingerprint"]),
                finish,
                _split_key(info.spec),
                spec.text,
                str(entry["table"]),
            )
        return
    timeout = stores.config["source_timeout"]
    if spec.kind == "file":
        source = Source.from_url(spec.text)
        with source.reader(None) as reader:
            yield _Opened(iter(reader), reader.schema, lambda: _file_sha256(spec.text))
        return
    in_warehouse = spec.source in (None, "", "warehouse")
    with contextlib.ExitStack() as stack:
        sandboxed: Warehouse | None = None
        if in_warehouse:
            sandboxed = stack.enter_context(catalog.warehouse(stores, sandbox=True))
        source = Source.from_url(spec.source, sandboxed, timeout=timeout)
        reader = stack.enter_context(source.reader(spec.text))
        hashing = _Hashing()

        def hashed() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                hashing.add(batch)
                yield batch

        yield _Opened(hashed(), reader.schema, hashing.value, described=spec.describe(source))


# -- scoring ------------------------------------------------------------------------------


@dataclass
class _Counts:
    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(
        default_factory=lambda: {"read": 0.0, "validate": 0.0, "score": 0.0, "write": 0.0}
    )


def _score(
    opened: _Opened,
    model: Model,
    iface: Interface,
    version: str,
    keys: tuple[str, ...],
    on_bad_rows: OnBadRows,
    out_path: Path,
    rejects_path: Path,
    counts: _Counts,
    progress: Progress | None,
    batch_rows: int,
) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = tuple(f.name for f in iface.inputs)
    check_schema(iface.inputs, opened.schema)
    missing = [k for k in keys if k not in opened.schema.names]
    if missing:
        raise InvalidInput(
            f"the input has no key column {', '.join(missing)}",
            hint="name key columns the input has with --key",
        )
    validator = BatchValidator(iface.inputs)
    writer: pq.ParquetWriter | None = None
    rejects: pq.ParquetWriter | None = None
    clock = time.perf_counter()
    try:
        for whole in opened.batches:
            for start in range(0, whole.num_rows, batch_rows):
                batch = whole.slice(start, batch_rows)
                now = time.perf_counter()
                counts.timings["read"] += now - clock
                offset = counts.rows_in
                counts.rows_in += batch.num_rows
                bad, problems = validator.problems(batch, offset)
                clock = time.perf_counter()
                counts.timings["validate"] += clock - now
                if problems:
                    if on_bad_rows == "refuse":
                        raise bad_rows(int(bad.sum()), problems)
                    counts.problems.extend(problems[: max(0, 20 - len(counts.problems))])
                    counts.rejected += int(bad.sum())
                    reason = reasons(problems, bad, offset)
                    rej = batch.filter(pa.array(bad)).append_column(
                        PROBLEM_COLUMN, pa.array(reason, pa.string())
                    )
                    if rejects is None:
                        rejects = pq.ParquetWriter(str(rejects_path), rej.schema)
                    rejects.write_batch(rej)
                    batch = batch.filter(pa.array(~bad))
                if batch.num_rows:
                    rows = None
                    if not keys:
                        everyone = np.arange(offset, offset + batch.num_rows)
                        ordinal = np.flatnonzero(~bad) + offset if problems else everyone
                        rows = pa.array(ordinal, pa.int64())
                    out = scored_batch(model, batch, fields, keys, version, rows)
                    if writer is None:
                        writer = pq.ParquetWriter(str(out_path), out.schema)
                    writer.write_batch(out)
                    counts.rows_out += out.num_rows
                now = time.perf_counter()
                counts.timings["score"] += now - clock
                clock = now
                if progress is not None:
                    progress("predict", counts.rows_in, None)
        if writer is None:  # no row scored: an empty output, with its columns
            empty = pa.schema(
                [*(opened.schema.field(k) for k in keys), pa.field(VERSION_COLUMN, pa.string())]
            )
            writer = pq.ParquetWriter(str(out_path), empty)
    finally:
        if writer is not None:
            writer.close()
        if rejects is not None:
            rejects.close()


# -- writing ------------------------------------------------------------------------------


def _parquet_reader(path: Path) -> pa.RecordBatchReader:
    import pyarrow.parquet as pq

    f = pq.ParquetFile(str(path))
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(f.schema_arrow, f.iter_batches(batch_size=BATCH_ROWS))


def _write_table(stores: ProjectStores, spool: Path, name: str, temp: str) -> str:
    """Load ``spool`` as ``temp``, rename it to ``name``; its md5sum fingerprint."""
    with catalog.warehouse(stores) as wh:
        if wh.table_exists(name):
            raise InvalidInput(
                f"table {name} exists in the warehouse already",
                hint="name another output table with --output",
            )
        try:
            wh.create_from_arrow(temp, _parquet_reader(spool))
            fingerprint = measure_table(wh, temp).fingerprint
            wh.rename_table(temp, name)
        except BaseException:
            with contextlib.suppress(Exception):
                wh.drop_table(temp)
            raise
    return fingerprint


def _drop(stores: ProjectStores, *tables: str) -> None:
    with contextlib.suppress(Exception), catalog.warehouse(stores) as wh:
        for table in tables:
            wh.drop_table(table)


def predict_batches(
    stores: ProjectStores,
    info: VersionInfo,
    run_id: str,
    model: Model,
    source: PredictInput,
    *,
    output: str | None = None,
    on_bad_rows: OnBadRows = "refuse",
    keys: Sequence[str] = (),
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> PredictionRecord:
    """Score ``source`` with ``model`` (the version ``info`` serves, run ``run_id``).

    Writes the output (and the rejects, when rows were rejected) under its final
    name only once complete, then records the prediction run and returns it.
    """
    if on_bad_rows not in ("refuse", "reject"):
        raise InvalidInput(
            f"--on-bad-rows {on_bad_rows!r}", hint="use refuse (the default) or reject"
        )
    if not info.interface:
        raise InvalidInput(
            f"{info.version} declares no interface to validate the rows against",
            hint="a batch prediction validates every row: log the model with an interface",
        )
    iface = Interface.from_dict(info.interface)
    model.use_interface(iface)
    pred_id = secrets.token_hex(4)
    target = parse_output(output, info, pred_id)
    for key in keys:
        check_identifier(key, "key column")
    started = time.time()
    if (
        target.kind == "table"
        and source.kind != "file"
        and source.source in (None, "", "warehouse")
    ):
        with catalog.warehouse(stores) as wh:
            if runs_in_engine(wh):  # Spark: the executors score, no row on the client
                return _predict_in_engine(
                    stores, wh, info, run_id, source, target, pred_id, keys, on_bad_rows,
                    batch_rows, started,
                )  # fmt: skip
    counts = _Counts()
    spool_dir = Path(tempfile.mkdtemp(prefix="dmv-predict-"))
    final_tmp: list[Path] = []
    try:
        if target.kind == "parquet":
            parent = Path(target.name).parent
            if not parent.is_dir():
                raise NotFound(f"no folder {parent}", hint="create the output folder first")
            if Path(target.name).exists():
                raise InvalidInput(
                    f"{target.name} exists already", hint="name a new file with --output"
                )
            # the spool lives beside the final file, so the rename is atomic
            spool = parent / f".{Path(target.name).name}.dmv-{pred_id}.tmp"
            rejects_spool = parent / f".{Path(target.rejects).name}.dmv-{pred_id}.tmp"
            final_tmp += [spool, rejects_spool]
        else:
            spool = spool_dir / "out.parquet"
            rejects_spool = spool_dir / "rejects.parquet"
        with _open_input(stores, info.version.name, source) as opened:
            chosen = tuple(keys) or opened.keys
            _score(
                opened,
                model,
                iface,
                str(info.version),
                chosen,
                on_bad_rows,
                spool,
                rejects_spool,
                counts,
                progress,
                batch_rows,
            )
            opened.finish()  # a part that changed while it streamed fails here
            input_fp = opened.fingerprint()
            described = opened.described or source.describe()
            part_table = opened.table
        clock = time.perf_counter()
        rejects_name = target.rejects if counts.rejected else None
        details: dict[str, Any] = {
            "keys": list(chosen),
            "on_bad_rows": on_bad_rows,
            "problems": counts.problems,
        }
        if part_table is not None:
            details["table"] = part_table
        if target.kind == "parquet":
            if rejects_name is not None:
                os.replace(rejects_spool, rejects_name)
                details["rejects_fingerprint"] = _file_sha256(rejects_name)
            os.replace(spool, target.name)
            output_fp = _file_sha256(target.name)
        else:
            tmp = f"dmv_tmp_pred_{pred_id}"
            if rejects_name is not None:
                details["rejects_fingerprint"] = _write_table(
                    stores, rejects_spool, rejects_name, f"{tmp}_rejects"
                )
            try:
                output_fp = _write_table(stores, spool, target.name, tmp)
            except BaseException:
                if rejects_name is not None:
                    _drop(stores, rejects_name)
                raise
        counts.timings["write"] = time.perf_counter() - clock
        details["timings"] = {k: round(v, 3) for k, v in counts.timings.items()}
        record = PredictionRecord(
            pred_id,
            info.version,
            run_id,
            source.kind,
            described,
            input_fp,
            target.kind,
            target.name,
            output_fp,
            counts.rows_in,
            counts.rows_out,
            counts.rejected,
            started,
            time.time(),
            rejects=rejects_name,
            details=details,
        )
        try:
            return stores.registry.add_prediction(record)
        except BaseException:  # not recorded: nothing stays under the final names
            if target.kind == "table":
                _drop(stores, target.name, *([rejects_name] if rejects_name else []))
            else:
                for name in (target.name, rejects_name):
                    if name:
                        with contextlib.suppress(OSError):
                            os.unlink(name)
            raise
    finally:
        for path in [*final_tmp, *spool_dir.iterdir()]:
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            spool_dir.rmdir()


def _predict_in_engine(
    stores: ProjectStores,
    wh: Warehouse,
    info: VersionInfo,
    run_id: str,
    source: PredictInput,
    target: PredictOutput,
    pred_id: str,
    keys: Sequence[str],
    on_bad_rows: OnBadRows,
    batch_rows: int,
    started: float,
) -> PredictionRecord:
    """Score on the warehouse's own workers (Spark): the rows never leave the cluster."""
    _, art = model_artifact(stores.registry, info, run_id)
    details: dict[str, Any] = {"on_bad_rows": on_bad_rows, "engine": wh.dialect}
    split: SplitInfo | None = None
    if source.kind == "part":
        split, entry = _find_part(stores, info.version.name, source)
        rows = part_input(wh, PartInfo.from_dict(entry), entry.get("checks"))
        chosen = tuple(keys) or _split_key(split.spec)
        details["table"] = str(entry["table"])
        described = source.text
    else:
        rows = sql_input(wh, source.text)
        chosen = tuple(keys)
        described = source.describe()
    scored = score_in_spark(
        wh,
        stores.config.location("artifacts"),
        info,
        run_id,
        art,
        rows,
        keys=chosen,
        on_bad_rows=on_bad_rows,
        output=target.name,
        rejects=target.rejects,
        temp=f"dmv_tmp_pred_{pred_id}",
        # the caller loaded this model under the trust rule before: an unsafe format
        # reached here only trusted, and the executors load it as the caller did
        trust_pickle=is_unsafe(art.meta or {}),
        batch_rows=batch_rows,
        clock=time.perf_counter,
    )
    if rows.record is not None and rows.part is not None and split is not None:
        with contextlib.suppress(StorageError):  # the check measured on the way, for later reads
            stores.registry.add_part_check(
                info.version.name, split.data, split.split, rows.part.name, *rows.record
            )
    rejects_name = target.rejects if scored.rejected else None
    details.update(keys=list(chosen), problems=scored.problems)
    if scored.rejects_fingerprint is not None:
        details["rejects_fingerprint"] = scored.rejects_fingerprint
    details["timings"] = {k: round(v, 3) for k, v in scored.timings.items()}
    record = PredictionRecord(
        pred_id,
        info.version,
        run_id,
        source.kind,
        described,
        scored.input_fingerprint,
        target.kind,
        target.name,
        scored.output_fingerprint,
        scored.rows_in,
        scored.rows_out,
        scored.rejected,
        started,
        time.time(),
        rejects=rejects_name,
        details=details,
    )
    try:
        return stores.registry.add_prediction(record)
    except BaseException:  # not recorded: nothing stays under the final names
        for table in (target.name, rejects_name):
            if table:
                with contextlib.suppress(Exception):
                    wh.drop_table(table)
        raise


def verify_prediction(stores: ProjectStores, record: PredictionRecord) -> Report:
    """Re-check a prediction run's output (and rejects): present, same rows, same fingerprint."""
    report = Report(f"prediction {record.id} of {record.version}")
    rejects_fp = record.details.get("rejects_fingerprint")
    if record.output_kind == "parquet":
        for what, path, fp in (
            ("output", record.output, record.output_fingerprint),
            ("rejects", record.rejects, rejects_fp),
        ):
            if not path:
                continue
            if not Path(path).is_file():
                report.add(f"{what} file", "fail", f"{path} is missing")
                continue
            got = _file_sha256(path)
            status = "ok" if got == fp else "fail"
            report.add(f"{what} file", status, path if status == "ok" else f"{fp} → {got}")
        return report
    with catalog.warehouse(stores, read_only=True) as wh:
        for what, table, fp in (
            ("output", record.output, record.output_fingerprint),
            ("rejects", record.rejects, rejects_fp),
        ):
            if not table:
                continue
            if not wh.table_exists(table):
                report.add(f"{what} table", "fail", f"{table} is not in the warehouse")
                continue
            # as it was recorded: a run recorded before md5sum-v2 is measured with v1
            got = measure_table(wh, table, algo=algorithm_of(fp or FINGERPRINT_ALGO)).fingerprint
            status = "ok" if got == fp else "fail"
            report.add(f"{what} table", status, table if status == "ok" else f"{fp} → {got}")
    return report
