"""Batch prediction inside Spark: the model scores on the executors, no row on the client.

The client plans; the executors read, validate, score and write. Over Spark Connect,
one ``mapInArrow`` job runs :class:`ExecutorScoring` on every partition of the input.
On the executor it loads the version's model from the artifact store by digest, as
the server does (hash checked before anything reads the file; an unsafe format only
when the client was trusted to load it), validates every row against the interface
and scores the good ones. The job writes one staging table under a temporary
``dmv_tmp_pred_…`` name holding, for each input row, its engine hash (so the part's
check is proven on exactly the rows scored), its outputs or its problem. From it the
engine builds the output (and rejects) table under temporary names, fingerprints
them, and only then renames them to their final names. A killed ``dmv predict``
leaves temporary tables only, which ``dmv fsck --repair`` drops.

A ``DmvError`` raised on an executor (a tampered model file, a bad row under
``refuse``, an artifact store the executor cannot read) travels back in the Spark
error's text and is raised again on the client as itself.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dmv import errors
from dmv.artifacts import open_artifacts
from dmv.data._sql import quote_ident
from dmv.data.fingerprint import fingerprint_query
from dmv.data.records import PartInfo
from dmv.data.verified import check_unreserved, check_value, expected_check, stream_mismatch
from dmv.data.warehouse import CHECK_COLUMN, Column
from dmv.errors import DataError, DmvError, InvalidInput, StorageError
from dmv.flavors.stored import load_stored
from dmv.interface import Interface
from dmv.interface.batch import BatchValidator, check_schema
from dmv.interface.fields import FieldType
from dmv.release._scoring import ROW_COLUMN, VERSION_COLUMN, bad_rows, reasons, scored_batch

if TYPE_CHECKING:
    import pyarrow as pa

    from dmv.data.warehouse import Warehouse
    from dmv.flavors import Model
    from dmv.registry import ArtifactInfo, VersionInfo

__all__ = ["ExecutorScoring", "ScoringJob", "SparkScored", "runs_in_engine", "score_in_spark"]

PROBLEM_COLUMN = "dmv_problem"
_PROBLEM_JSON = "dmv_problem_json"
_ROW_ID = "dmv_row_id"
_INPUT = "dmv_in_{}"
_ERROR = re.compile(r"<dmv-error>(.*?)</dmv-error>", re.DOTALL)
Mode = Literal["probe", "score"]


def runs_in_engine(warehouse: Warehouse) -> bool:
    """Whether the warehouse runs Python on its own workers (Spark's ``mapInArrow``)."""
    return callable(getattr(warehouse, "map_arrow", None))


# -- the executor side --------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringJob:
    """What an executor needs to score: pickled with :class:`ExecutorScoring`."""

    artifacts: str
    info: VersionInfo
    run_id: str
    art: ArtifactInfo
    #: the client loaded this model under the trust rule; an unsafe format is trusted
    #: here only when the client was
    trust_pickle: bool
    keys: tuple[str, ...]
    on_bad_rows: str
    #: the input has no key: each output row carries its row id as ``dmv_row``
    with_rows: bool
    input_names: tuple[str, ...]
    #: the scored batches' schema (Arrow IPC), once the probe found it
    out_schema: bytes = b""
    mode: Mode = "score"


#: loaded models by (store, digest, version, trusted): a job that is not trusted never
#: reuses a model a trusted one loaded
_models: dict[tuple[str, str, str, bool], Model] = {}
_models_lock = threading.Lock()


def _model(job: ScoringJob) -> Model:
    """The job's model, loaded once per executor process (its digest checked then)."""
    key = (job.artifacts, job.art.digest, str(job.info.version), job.trust_pickle)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            store = open_artifacts(job.artifacts)
            if store.is_local and not Path(job.artifacts).is_dir():
                raise StorageError(
                    f"a Spark executor cannot read the artifact store {job.artifacts}",
                    hint="the executors load the model themselves: put the artifact store "
                    "where every executor reaches it (a shared path, or an object store)",
                )
            model = load_stored(store, job.info, job.run_id, job.art, trust_pickle=job.trust_pickle)
            if job.info.interface:
                model.use_interface(Interface.from_dict(job.info.interface))
            _models[key] = model
        return model


class ExecutorScoring:
    """``mapInArrow``'s function: Arrow batches of input rows in, staged rows out."""

    def __init__(self, job: ScoringJob) -> None:
        self.job = job

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._run(batches)
        except DmvError as exc:  # travels back in the Spark error's text
            body: dict[str, Any] = {"class": type(exc).__name__, "message": exc.message}
            body.update(hint=exc.hint, details=exc.details)
            raise RuntimeError(f"<dmv-error>{json.dumps(body, default=str)}</dmv-error>") from None

    def _run(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import numpy as np
        import pyarrow as pa

        job = self.job
        model = _model(job)
        iface = Interface.from_dict(job.info.interface or {})
        fields = tuple(f.name for f in iface.inputs)
        validator = BatchValidator(iface.inputs)
        version = str(job.info.version)
        out_schema = pa.ipc.read_schema(pa.py_buffer(job.out_schema)) if job.out_schema else None
        for batch in batches:
            ids = batch.column(_ROW_ID)
            hashes = batch.column(CHECK_COLUMN)
            data = batch.drop_columns([_ROW_ID, CHECK_COLUMN])
            bad, problems = validator.problems(data, 0)
            why = reasons(problems, bad, 0) if problems else []
            by_row = {int(p["row"]): p for p in problems}
            for p in problems:  # the row's id, as the output's dmv_row names it
                p["row"] = ids[int(p["row"])].as_py()
            if problems and job.on_bad_rows == "refuse":
                raise bad_rows(int(bad.sum()), problems)
            good = pa.array(~bad)
            ok = data.filter(good) if problems else data
            if job.mode == "probe":
                if ok.num_rows:
                    first = ok.slice(0, 16)
                    rows = ids.filter(good).slice(0, 16) if job.with_rows else None
                    scored = scored_batch(model, first, fields, job.keys, version, rows)
                    schema = scored.schema.serialize().to_pybytes()
                    yield pa.RecordBatch.from_arrays([pa.array([schema], pa.binary())], ["s"])
                    return
                continue
            assert out_schema is not None
            if ok.num_rows:
                rows = (ids.filter(good) if problems else ids) if job.with_rows else None
                out = scored_batch(model, ok, fields, job.keys, version, rows)
                out = pa.Table.from_batches([out]).cast(out_schema).combine_chunks()
                if job.on_bad_rows == "refuse":  # written as it is; no row was bad
                    yield out.to_batches()[0]
                    continue
                extra = {
                    CHECK_COLUMN: hashes.filter(good) if problems else hashes,
                    PROBLEM_COLUMN: pa.nulls(ok.num_rows, pa.string()),
                    _PROBLEM_JSON: pa.nulls(ok.num_rows, pa.string()),
                }
                yield self._staged(out.to_batches()[0], extra, None, data.schema)
            if problems:
                rejected = data.filter(pa.array(bad))
                n = rejected.num_rows
                texts = [json.dumps(by_row.get(int(i)), default=str) for i in np.flatnonzero(bad)]
                columns: list[pa.Array] = []
                for f in out_schema:
                    if f.name in job.keys:
                        columns.append(rejected.column(f.name).cast(f.type))
                    elif f.name == ROW_COLUMN:
                        columns.append(ids.filter(pa.array(bad)).cast(f.type))
                    else:
                        columns.append(pa.nulls(n, f.type))
                staged = pa.RecordBatch.from_arrays(columns, schema=out_schema)
                extra = {
                    CHECK_COLUMN: hashes.filter(pa.array(bad)),
                    PROBLEM_COLUMN: pa.array(why, pa.string()),
                    _PROBLEM_JSON: pa.array(texts, pa.string()),
                }
                yield self._staged(staged, extra, rejected, data.schema)

    def _staged(
        self,
        out: pa.RecordBatch,
        extra: Mapping[str, pa.Array],
        rejected: pa.RecordBatch | None,
        inputs: pa.Schema,
    ) -> pa.RecordBatch:
        import pyarrow as pa

        arrays = [*out.columns, *extra.values()]
        names = [*out.schema.names, *extra]
        if self.job.on_bad_rows == "reject":  # the rejected rows' own columns
            for i, name in enumerate(self.job.input_names):
                kind = inputs.field(name).type
                arrays.append(
                    rejected.column(name) if rejected is not None else pa.nulls(out.num_rows, kind)
                )
                names.append(_INPUT.format(i))
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _raised(exc: DmvError) -> DmvError:
    """The DmvError an executor raised, when ``exc`` carries one; else ``exc``."""
    cause: BaseException | None = exc
    while cause is not None:
        # the last one: the traceback also quotes the line that raised it
        for found in reversed(_ERROR.findall(str(cause))):
            try:
                body = json.loads(found)
            except ValueError:
                continue
            cls = getattr(errors, str(body.get("class")), None)
            if isinstance(cls, type) and issubclass(cls, DmvError):
                return cls(body["message"], hint=body.get("hint"), **(body.get("details") or {}))
        cause = cause.__cause__
    return exc


# -- the client side ----------------------------------------------------------------------


@dataclass
class SparkScored:
    """What an in-engine scoring measured, for the prediction run's record."""

    rows_in: int
    rows_out: int
    rejected: int
    input_fingerprint: str
    output_fingerprint: str
    rejects_fingerprint: str | None
    problems: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SparkInput:
    """The rows to score as one SELECT, with what proves them afterwards."""

    select: str
    columns: tuple[Column, ...]
    #: a stored part: its record and the engine check its rows must add up to
    part: PartInfo | None = None
    expected: str | None = None
    record: tuple[str, str] | None = None


def part_input(
    warehouse: Warehouse, part: PartInfo, checks: Mapping[str, str] | None
) -> SparkInput:
    """A stored part, its rows hashed by the engine as they are read."""
    expected, record = expected_check(warehouse, part, checks)
    cols = ", ".join(f"dmv_t.{quote_ident(c.name)}" for c in part.columns)
    row_hash = warehouse.engine_row_hash(part.columns, "dmv_t")
    select = (
        f"SELECT {cols}, {row_hash} AS {CHECK_COLUMN}, monotonically_increasing_id() AS {_ROW_ID}"
        f" FROM {quote_ident(part.table)} AS dmv_t"
    )
    return SparkInput(select, part.columns, part, expected, record)


def sql_input(warehouse: Warehouse, sql: str) -> SparkInput:
    """A retrieval: refused unless it is one read-only SELECT, as ``dmv data query``."""
    warehouse.check_retrieval(sql)
    inner = sql.strip().rstrip(";")
    columns = warehouse.query_columns(inner)
    taken = {c.name for c in columns} & {CHECK_COLUMN, _ROW_ID, PROBLEM_COLUMN, _PROBLEM_JSON}
    if taken:
        raise InvalidInput(
            f"the query returns a column named {sorted(taken)[0]}, a name dmv uses",
            hint="rename it in the query",
        )
    cols = ", ".join(f"dmv_q.{quote_ident(c.name)}" for c in columns)
    row_hash = warehouse.engine_row_hash(columns, "dmv_q")
    select = (
        f"SELECT {cols}, {row_hash} AS {CHECK_COLUMN}, monotonically_increasing_id() AS {_ROW_ID}"
        f" FROM (\n{inner}\n) AS dmv_q"
    )
    return SparkInput(select, columns)


def score_in_spark(
    warehouse: Warehouse,
    artifacts: str,
    info: VersionInfo,
    run_id: str,
    art: ArtifactInfo,
    rows: SparkInput,
    *,
    keys: Sequence[str],
    on_bad_rows: str,
    output: str,
    rejects: str,
    temp: str,
    trust_pickle: bool,
    batch_rows: int,
    clock: Callable[[], float],
) -> SparkScored:
    """Score ``rows`` on the executors into the table ``output`` (and ``rejects``).

    Both appear under their final names only once complete and fingerprinted; on
    any failure every table this made is dropped.
    """
    import pyarrow as pa

    run = getattr(warehouse, "map_arrow")  # noqa: B009 (only Spark's adapter has it)
    iface = Interface.from_dict(info.interface or {})
    if rows.part is not None:
        check_unreserved(rows.part)
    for name in (output, rejects):
        if warehouse.table_exists(name):
            raise InvalidInput(
                f"table {name} exists in the warehouse already",
                hint="name another output table with --output",
            )
    schema = warehouse.reader(f"{rows.select} LIMIT 0").schema
    data_schema = pa.schema([f for f in schema if f.name not in (CHECK_COLUMN, _ROW_ID)])
    check_schema(iface.inputs, data_schema)
    missing = [k for k in keys if k not in data_schema.names]
    if missing:
        raise InvalidInput(
            f"the input has no key column {', '.join(missing)}",
            hint="name key columns the input has with --key",
        )
    job = ScoringJob(
        artifacts,
        info,
        run_id,
        art,
        trust_pickle,
        tuple(keys),
        on_bad_rows,
        not keys,
        tuple(data_schema.names),
    )
    timings: dict[str, float] = {}
    start = clock()
    key_fields = [data_schema.field(k) for k in keys]
    out_schema = _declared_schema(iface, key_fields)
    if out_schema is None:
        # the outputs' names and types come from the model's answer to a few rows,
        # scored on an executor (which loads the model: that worker's later tasks reuse it)
        probe = pa.schema([pa.field("s", pa.binary())])
        found = _run(run, rows.select, ExecutorScoring(_with(job, mode="probe")), probe, limit=1)
        if found:
            out_schema = pa.ipc.read_schema(pa.py_buffer(found[0][0]))
        else:  # no good row: an empty output, with its columns
            out_schema = pa.schema([*key_fields, pa.field(VERSION_COLUMN, pa.string())])
    job = _with(job, out_schema=out_schema.serialize().to_pybytes())
    timings["plan"] = clock() - start
    if on_bad_rows == "refuse":
        return _score_direct(
            warehouse, run, rows, job, out_schema, output, temp, batch_rows, clock, timings
        )
    staged = out_schema
    for name, kind in (
        (CHECK_COLUMN, pa.int64()),
        (PROBLEM_COLUMN, pa.string()),
        (_PROBLEM_JSON, pa.string()),
    ):
        staged = staged.append(pa.field(name, kind))
    if on_bad_rows == "reject":
        for i, f in enumerate(data_schema):
            staged = staged.append(pa.field(_INPUT.format(i), f.type))
    stage = f"dmv_tmp_pred_{secrets.token_hex(4)}"
    temp_rejects = f"{temp}_rejects"
    made: list[str] = []
    try:
        start = clock()
        made.append(stage)
        _run(run, rows.select, ExecutorScoring(job), staged, into=stage, batch_rows=batch_rows)
        timings["score"] = clock() - start
        start = clock()
        check = warehouse.engine_hash_sum(CHECK_COLUMN)
        counted = warehouse.rows(
            f"SELECT count(*), {check}, count({PROBLEM_COLUMN}) FROM {quote_ident(stage)}"
        )[0]
        rows_in, rejected = int(counted[0]), int(counted[2])
        input_fp = _proven(warehouse, rows, rows_in, int(counted[1] or 0))
        out_cols = ", ".join(quote_ident(n) for n in out_schema.names)
        made.append(temp)
        warehouse.create_table_as(
            quote_ident(temp),
            f"SELECT {out_cols} FROM {quote_ident(stage)} WHERE {PROBLEM_COLUMN} IS NULL",
        )
        problems: list[dict[str, Any]] = []
        rejects_fp = None
        if rejected:
            back = ", ".join(
                f"{quote_ident(_INPUT.format(i))} AS {quote_ident(n)}"
                for i, n in enumerate(data_schema.names)
            )
            made.append(temp_rejects)
            warehouse.create_table_as(
                quote_ident(temp_rejects),
                f"SELECT {back}, {PROBLEM_COLUMN} FROM {quote_ident(stage)} "
                f"WHERE {PROBLEM_COLUMN} IS NOT NULL",
            )
            first = warehouse.rows(
                f"SELECT {_PROBLEM_JSON} FROM {quote_ident(stage)} "
                f"WHERE {_PROBLEM_JSON} IS NOT NULL LIMIT 20"
            )
            problems = [json.loads(r[0]) for r in first]
        made.remove(stage)
        warehouse.drop_table(stage)
        rows_out = rows_in - rejected
        output_fp = _fingerprint(warehouse, temp)
        if rejected:
            rejects_fp = _fingerprint(warehouse, temp_rejects)
            warehouse.rename_table(temp_rejects, rejects)
            made[made.index(temp_rejects)] = rejects
        warehouse.rename_table(temp, output)
        made[made.index(temp)] = output
        timings["write"] = clock() - start
    except BaseException:
        for name in made:  # the first failure is the one to report
            with contextlib.suppress(Exception):
                warehouse.drop_table(name)
        raise
    return SparkScored(
        rows_in, rows_out, rejected, input_fp, output_fp, rejects_fp, problems, timings
    )


def _proven(warehouse: Warehouse, rows: SparkInput, count: int, total: int) -> str:
    """The input's fingerprint, once the engine hashes of the rows scored add up."""
    got = check_value(count, total)
    if rows.part is not None:
        if got != rows.expected:
            raise stream_mismatch(rows.part, got)
        return str(rows.part.fingerprint)
    return f"{warehouse.check_key()}:{got}"


def _score_direct(
    warehouse: Warehouse,
    run: Callable[..., list[tuple[Any, ...]]],
    rows: SparkInput,
    job: ScoringJob,
    out_schema: pa.Schema,
    output: str,
    temp: str,
    batch_rows: int,
    clock: Callable[[], float],
    timings: dict[str, float],
) -> SparkScored:
    """``refuse``: one job writes the output under ``temp``; the rows' count and hash
    sum are observed in the same job, on the rows the executors were handed."""
    made = [temp]
    try:
        start = clock()
        observe = ["count(1)", warehouse.engine_hash_sum(CHECK_COLUMN)]
        found = _run(
            run, rows.select, ExecutorScoring(job), out_schema,
            into=temp, batch_rows=batch_rows, observe=observe,
        )  # fmt: skip
        count, total = int(found[0][0]), int(found[0][1] or 0)
        timings["score"] = clock() - start
        start = clock()
        input_fp = _proven(warehouse, rows, count, total)
        output_fp = _fingerprint(warehouse, temp)
        warehouse.rename_table(temp, output)
        made = [output]
        timings["write"] = clock() - start
    except BaseException:
        for name in made:  # the first failure is the one to report
            with contextlib.suppress(Exception):
                warehouse.drop_table(name)
        raise
    return SparkScored(count, count, 0, input_fp, output_fp, None, [], timings)


_ARROW_TYPES = {
    FieldType.BOOL: "bool_",
    FieldType.INT32: "int32",
    FieldType.INT64: "int64",
    FieldType.FLOAT32: "float32",
    FieldType.FLOAT64: "float64",
    FieldType.STRING: "string",
}


def _declared_schema(iface: Interface, key_fields: Sequence[pa.Field]) -> pa.Schema | None:
    """The output's schema as the interface declares it, when every output is one plain
    value (a number, a flag or a text); None when only the model's answer tells."""
    import pyarrow as pa

    fields = list(key_fields)
    if not fields:
        fields.append(pa.field(ROW_COLUMN, pa.int64()))
    for f in iface.outputs:
        kind = _ARROW_TYPES.get(f.type)
        if kind is None or f.shape or f.keys or f.name in {k.name for k in fields}:
            return None
        fields.append(pa.field(f.name, getattr(pa, kind)()))
    if not iface.outputs:
        return None
    return pa.schema([*fields, pa.field(VERSION_COLUMN, pa.string())])


def _fingerprint(warehouse: Warehouse, table: str) -> str:
    """A table's md5sum-v1 fingerprint, in the engine: the one ``verify`` measures, without
    the column profile a part gets (one aggregate fewer per column)."""
    return fingerprint_query(warehouse, f"SELECT * FROM {quote_ident(table)}")


def _with(job: ScoringJob, **changes: Any) -> ScoringJob:
    from dataclasses import replace

    return replace(job, **changes)


def _run(run: Callable[..., list[tuple[Any, ...]]], *args: Any, **kwargs: Any) -> Any:
    try:
        return run(*args, **kwargs)
    except DataError as exc:
        raise _raised(exc) from exc
