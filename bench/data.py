"""Benchmark of the data engine (issue #3 item 9, issue #7 item 1).

Generates a table (id, ts, user_id, category, price, label) in a DuckDB warehouse in
a temporary folder, then measures side by side in one process:

  (a) DuckDB's own ``COPY (SELECT …) TO 'x.parquet'`` of the rows      (the yardstick)
  (b) ``store_split --by key:user_id``: the rows stored once, the parts as views,
      full fingerprints and profiles                        target: within 2.5x of (a)
      (and as a table per part); verify_parts and the leakage check    target: 1x (a)
  (s) bytes on disk of later splits of the same retrieval, against the full copy a
      table per part costs, as DuckDB's used blocks, the warehouse file's size and every
      byte in its folder side by side: the identical split 0, another salt <= 5%, a
      chain of 5 re-splits <= 25%, a source grown by 1% <= 10%, 1% of rows changed
      <= 15%; reading a part from shared storage <= 1.2x a table
      (--only-storage: COPY, the first split and (s) alone)
  (c) retrieving the same rows from a SQLite file into the warehouse
                                 target: < 10.7 s for 10M rows (15x dvc import-db's 161 s)
  (d) peak memory of this process (ru_maxrss)                       target: < 1.5 GB
  (e) reading a 10M-row part for training: plain read vs verified read (the rows
      and their engine check in one scan, once the part was proven)   target: <= 20%
  with --postgres: the same split pushed down into PostgreSQL (127.0.0.1:5432, db test)
  with --spark: the same split pushed down into Spark through Spark Connect (a local[2]
      server started from the pyspark package unless --spark-url names one), and the
      trainer's read of a part over Connect: rows/s and this process's peak memory
      (measured first, before DuckDB's figures raise the process's peak)

Usage: python bench/data.py [--rows N] [--postgres] [--pg-url URL] [--only-read] [--only-storage]
                            [--spark] [--spark-url sc://host:port]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dmv.data.engines import open_warehouse
from dmv.data.export import read_part
from dmv.data.fingerprint import measure_table, verify_parts
from dmv.data.leakage import check_leakage
from dmv.data.records import SplitSpec
from dmv.data.sources import Retrieval, Source, retrieve
from dmv.data.split import AlreadyStored, store_split
from dmv.data.verified import read_verified, to_format

DVC_IMPORT_DB_10M = 161.0  # seconds, measured for `dvc import-db` of 10M rows to CSV


def timed(label: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    took = time.perf_counter() - start
    print(f"  {label:<58} {took:8.2f} s", flush=True)
    return took, value


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


GENERATE = """
CREATE TABLE src AS
SELECT i AS id,
       TIMESTAMP '2024-01-01' + to_seconds(i * 3) AS ts,
       CAST(hash(i * 31) % 500000 AS BIGINT) AS user_id,
       'cat' || CAST(i % 40 AS VARCHAR) AS category,
       CAST(round((i % 100000) * 0.37 + 0.01, 2) AS DOUBLE) AS price,
       CAST(i % 3 = 0 AS INTEGER) AS label
FROM range({rows}) AS t(i)
"""


def make_sqlite(wh: Any, path: Path) -> None:
    """Write the same rows into a SQLite file (ADBC bulk ingest when installed)."""
    reader = wh.reader(
        "SELECT id, CAST(ts AS VARCHAR) AS ts, user_id, category, price, label FROM src"
    )
    try:
        import adbc_driver_sqlite.dbapi as adbc

        with adbc.connect(str(path)) as con, con.cursor() as cur:
            cur.adbc_ingest("src", reader, mode="create")
            con.commit()
    except ImportError:
        import sqlite3

        lite = sqlite3.connect(path)
        lite.execute(
            "CREATE TABLE src (id INTEGER, ts TEXT, user_id INTEGER, category TEXT, "
            "price REAL, label INTEGER)"
        )
        for batch in reader:
            rows = zip(*batch.to_pydict().values(), strict=True)
            lite.executemany("INSERT INTO src VALUES (?,?,?,?,?,?)", rows)
        lite.commit()
        lite.close()


def bare_split(wh: Any, spec: SplitSpec) -> None:
    """The split alone, as one would hand-write it: what dmv adds on top is the fingerprints."""
    from dmv.data._sql import bucket_case, hash_from_raw, hash_raw, key_text, thresholds

    d = wh.sql
    part = bucket_case(hash_from_raw(d, "pk"), thresholds(list(spec.ratios.values())))
    key = hash_raw(d, f"':' || {key_text(d, 'user_id', 'BIGINT')}")
    with wh.transaction():
        for i, name in enumerate(spec.parts):
            wh.execute(
                f"CREATE TABLE bare_{name} AS SELECT * EXCLUDE (pk) FROM "
                f"(SELECT *, {key} AS pk FROM src) WHERE {part} = {i}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--postgres", action="store_true", help="also push the split into PostgreSQL"
    )
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--memory-limit", default="", help="DuckDB memory_limit, e.g. 1GB")
    parser.add_argument("--only-read", action="store_true", help="only (e), the read overhead")
    parser.add_argument("--spark", action="store_true", help="also split in Spark (Connect)")
    parser.add_argument("--spark-url", default="", help="a running Spark Connect server")
    parser.add_argument(
        "--only-storage",
        action="store_true",
        help="only (s): the bytes on disk of later splits (first split and COPY included)",
    )
    args = parser.parse_args()
    rows = args.rows
    print(f"dmv data benchmark: {rows:,} rows")
    spec = SplitSpec("key", "user_id")
    spark_figures = bench_spark(args.spark_url, rows, spec) if args.spark else None
    with tempfile.TemporaryDirectory(prefix="dmv-bench-") as tmp:
        folder = Path(tmp)
        wh = open_warehouse(folder / "warehouse.duckdb", memory_limit=args.memory_limit)
        timed(
            "generate the table in the DuckDB warehouse",
            lambda: wh.execute(GENERATE.format(rows=rows)),
        )
        wh.execute("CHECKPOINT")

        read = bench_read(wh)
        if args.only_read:
            wh.close()
            print_read(read)
            return 0

        print("(a) DuckDB COPY to Parquet")
        copies = [
            timed(
                f"COPY (SELECT * FROM src) TO parquet, run {i}",
                lambda: wh.execute(
                    f"COPY (SELECT * FROM src) TO '{folder / 'copy.parquet'}' (FORMAT parquet)"
                ),
            )[0]
            for i in (1, 2)
        ]
        copy = min(copies)

        print("(b0) for scale: a bare md5-v1 split, 3 CTAS, no fingerprints or profiles")
        bare_s, _ = timed(
            "3 x CREATE TABLE AS SELECT … WHERE bucket = i", lambda: bare_split(wh, spec)
        )

        print("(b) dmv split --by key:user_id (rows stored once, fingerprints, profiles)")
        steps: list[str] = []
        before = disk(wh)
        split_s, result = timed(
            "store_split (shared storage, the default)",
            lambda: store_split(
                wh,
                "SELECT * FROM src",
                spec,
                "bench__d__s",
                progress=lambda s, d, t: steps.append(s),
            ),
        )
        shared_bytes = grew(before, disk(wh))
        print("      parts: " + ", ".join(f"{p.name}={p.rows:,}" for p in result.parts))
        before = disk(wh)
        tables_s, copied = timed(
            "store_split --storage tables (a full copy per part)",
            lambda: store_split(wh, "SELECT * FROM src", spec, "bench__d__t", storage="tables"),
        )
        copy_bytes = grew(before, disk(wh))
        assert [p.fingerprint for p in copied.parts] == [p.fingerprint for p in result.parts]
        if args.only_storage:
            print("(s) storage of later splits of the same retrieval")
            storage = bench_storage(wh, spec, rows)
            wh.close()
            print()
            print(f"results (split {split_s:.2f} s, COPY {copy:.2f} s = {split_s / copy:.2f}x)")
            print_storage(shared_bytes, copy_bytes, storage)
            return 0
        verify_s, report = timed(
            "verify_parts (engine checks recorded with the split)", lambda: verify_parts(wh, result)
        )
        assert report.ok
        full_s, report = timed(
            "verify_parts --full (md5 of every row)", lambda: verify_parts(wh, result, full=True)
        )
        assert report.ok
        leak_s, leak = timed(
            "check_leakage (shared keys, identical rows)", lambda: check_leakage(wh, result)
        )
        assert leak.ok, leak.to_dict()
        reads = bench_part_reads(wh, result, copied)

        print("(c) retrieve from a SQLite source file into the warehouse")
        sqlite_path = folder / "source.db"
        timed(
            "write the SQLite source file (setup, not measured)",
            lambda: make_sqlite(wh, sqlite_path),
        )
        source = Source.from_url(f"sqlite:///{sqlite_path}", wh)
        retrieve_s, count = timed(
            "retrieve SELECT * FROM src → warehouse table",
            lambda: retrieve(Retrieval(source, "SELECT * FROM src"), wh, "from_sqlite"),
        )
        assert count == rows

        print("(s) storage of later splits of the same retrieval (warehouse bytes)")
        storage = bench_storage(wh, spec, rows)
        wh.close()

        pg_split = pg_load = None
        if args.postgres:
            pg_load, pg_split = bench_postgres(args.pg_url, folder, rows, spec)

    scale = rows / 10_000_000
    target_retrieve = DVC_IMPORT_DB_10M * scale / 15
    peak = peak_mb()
    print()
    print("results")
    print(f"  (a) DuckDB COPY to Parquet            {copy:8.2f} s")
    ratio = split_s / copy
    print(
        f"  (b) dmv split incl. fingerprints       {split_s:8.2f} s   = {ratio:5.2f}x (a) "
        "target 2.5x"
    )
    print(
        f"      the same, a table per part         {tables_s:8.2f} s   = "
        f"{tables_s / copy:5.2f}x (a)"
    )
    print(f"      bare split without fingerprints    {bare_s:8.2f} s   = {bare_s / copy:5.2f}x (a)")
    print(
        f"      verify_parts                       {verify_s:8.2f} s   = "
        f"{verify_s / copy:5.2f}x (a) "
        f"target 1x   (--full, md5 of every row: {full_s:.2f} s = {full_s / copy:.2f}x)"
    )
    print(
        f"      leakage check                      {leak_s:8.2f} s   = {leak_s / copy:5.2f}x (a) "
        "target 1x"
    )
    print_storage(shared_bytes, copy_bytes, storage)
    for name, (plain, shared) in reads.items():
        print(
            f"      read {name} part as arrow: table {plain:5.2f} s, shared {shared:5.2f} s "
            f"= {shared / plain:4.2f}x   target <= 1.2x"
        )
    print(
        f"  (c) SQLite → warehouse                 {retrieve_s:8.2f} s   = "
        f"{DVC_IMPORT_DB_10M * scale / retrieve_s:5.1f}x faster than dvc import-db "
        f"({DVC_IMPORT_DB_10M * scale:.0f} s scaled)   target < {target_retrieve:.1f} s"
    )
    print(
        f"  (d) peak memory (ru_maxrss)            {peak:8.0f} MB                 target < 1536 MB"
    )
    print_read(read)
    if pg_split is not None and pg_load is not None:
        ratio = pg_split / copy
        print(f"  PostgreSQL pushdown split              {pg_split:8.2f} s   = {ratio:5.2f}x (a)")
        print(f"      (loading the rows into PostgreSQL first took {pg_load:.1f} s)")
    if spark_figures is not None:
        sp_split, sp_read, sp_rows, sp_peak, sp_base = spark_figures
        print(
            f"  Spark Connect pushdown split (local[2]) {sp_split:7.2f} s   = "
            f"{sp_split / copy:5.2f}x (a)"
        )
        print(
            f"      read a part over Connect: {sp_rows:,} rows in {sp_read:.2f} s = "
            f"{sp_rows / sp_read:,.0f} rows/s; peak client memory {sp_peak:.0f} MB "
            f"({sp_base:.0f} MB before the read)"
        )
    return 0


def used_bytes(wh: Any) -> int:
    """Bytes of the warehouse file's blocks in use, after a checkpoint."""
    wh.execute("CHECKPOINT")
    used, size = wh.rows("SELECT used_blocks, block_size FROM pragma_database_size()")[0]
    return int(used) * int(size)


def disk(wh: Any) -> tuple[int, int, int]:
    """``(used-block bytes, warehouse file bytes, every byte under its folder)``.

    The folder stands for ``.dmv/``: the file, its WAL and DuckDB's spill directory.
    """
    used = used_bytes(wh)
    path = Path(wh.url)
    folder = sum(p.stat().st_size for p in path.parent.rglob("*") if p.is_file())
    return used, path.stat().st_size, folder


def grew(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[int, int, int]:
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def print_storage(
    first: tuple[int, int, int], copy: tuple[int, int, int], storage: dict[str, Any]
) -> None:
    """Each later split's added bytes as a share of a full copy: used blocks, file, folder."""
    print(
        f"  (s) bytes added, as % of a full copy   {'used blocks':>22} {'file':>22} "
        f"{'folder (.dmv)':>22}"
    )

    def row(label: str, added: tuple[int, int, int], target: str) -> None:
        cells = " ".join(
            f"{b / 1e6:9.1f} MB = {b / max(c, 1) * 100:5.1f}%"
            for b, c in zip(added, copy, strict=True)
        )
        print(f"      {label:<32} {cells}   {target}")

    row("a table per part (the full copy)", copy, "")
    row("first split, shared storage", first, "")
    targets = {"identical": 0, "resplit": 5, "chain": 25, "grown": 10, "changed": 15}
    labels = {
        "identical": "the identical split again",
        "resplit": "same rows, another salt",
        "chain": "5 re-splits, in total",
        "grown": "source grew by 1% (appended)",
        "changed": "1% of rows changed in place",
    }
    for key, added in storage.items():
        row(labels[key], added, f"target <= {targets[key]}%")


def bench_part_reads(wh: Any, shared: Any, tables: Any, runs: int = 3) -> dict[str, Any]:
    """Best of ``runs`` reads of each part as Arrow: a shared view against its table copy."""
    best: dict[str, Any] = {}
    for name in ("train", "test"):
        a, b = shared.part(name).table, tables.part(name).table
        took = {"plain": 1e9, "shared": 1e9}
        for _ in range(runs):
            for way, table in (("plain", b), ("shared", a)):
                t0 = time.perf_counter()
                wh.reader(f'SELECT * FROM "{table}"').read_all()
                took[way] = min(took[way], time.perf_counter() - t0)
        print(f"  read {name}: table {took['plain']:.2f} s, shared view {took['shared']:.2f} s")
        best[name] = (took["plain"], took["shared"])
    return best


def bench_storage(wh: Any, spec: SplitSpec, rows: int) -> dict[str, tuple[int, int, int]]:
    """Bytes each later split adds (used blocks, file, folder): re-splits, grown, changed.

    The folder holds only the warehouse (as ``.dmv/`` does with the registry beside
    it); source edits are made, and checkpointed, before each ``before``.
    """
    out: dict[str, tuple[int, int, int]] = {}
    before = disk(wh)
    timed(
        "the identical split again (returns the same split)",
        lambda: _identical(wh, spec),
    )
    out["identical"] = grew(before, disk(wh))
    before = disk(wh)
    other = SplitSpec(spec.by, spec.column, salt="another")
    timed(
        "split again with another salt",
        lambda: store_split(wh, "SELECT * FROM src", other, "bench__d__r"),
    )
    out["resplit"] = grew(before, disk(wh))
    chain = disk(wh)
    for i in range(4):  # with the one above: a chain of 5 re-splits
        salt = SplitSpec(spec.by, spec.column, salt=f"chain{i}")
        timed(
            f"split again with salt chain{i}",
            lambda salt=salt, i=i: store_split(wh, "SELECT * FROM src", salt, f"bench__c{i}__r"),
        )
    after = disk(wh)
    out["chain"] = tuple(a + b for a, b in zip(grew(chain, after), out["resplit"], strict=True))  # type: ignore[assignment]
    grow = rows // 100
    wh.execute(
        GENERATE.format(rows=rows + grow).replace("CREATE TABLE src AS", "INSERT INTO src")
        + f" WHERE i >= {rows}"
    )
    before = disk(wh)
    timed(
        "split after the source grew by 1%",
        lambda: store_split(wh, "SELECT * FROM src", spec, "bench__e__s"),
    )
    out["grown"] = grew(before, disk(wh))
    wh.execute("UPDATE src SET price = price + 1 WHERE id % 100 = 7")
    before = disk(wh)
    timed(
        "split after 1% of rows changed",
        lambda: store_split(wh, "SELECT * FROM src", spec, "bench__f__s"),
    )
    out["changed"] = grew(before, disk(wh))
    return out


def _identical(wh: Any, spec: SplitSpec) -> None:
    def stored(content: str) -> str:
        raise AlreadyStored("s")  # what dmv data split does when the content is stored

    with contextlib.suppress(AlreadyStored):
        store_split(wh, "SELECT * FROM src", spec, stored)


def bench_read(wh: Any, runs: int = 5) -> dict[str, float]:
    """Best of ``runs`` interleaved reads of the whole table as one part, each way."""
    print("(e) read a part for training: plain vs verified")
    _, part = timed(
        "record the part (md5sum-v2 of every row, setup)", lambda: measure_table(wh, "src")
    )
    record = timed(
        "first verified read (md5 pass + read with check)",
        lambda: read_verified(wh, part).record,  # the rows are not kept: one read at a time
    )[1]
    assert record is not None
    checks = dict([record])
    best: dict[str, float] = {}
    ways: dict[str, Callable[[], Any]] = {
        "plain pandas": lambda: read_part(wh, "src", "pandas"),
        "verified pandas": lambda: to_format(read_verified(wh, part, checks).table, "pandas"),
        "plain arrow": lambda: read_part(wh, "src", "arrow"),
        "verified arrow": lambda: read_verified(wh, part, checks).table,
    }
    for i in range(runs):
        for name, fn in ways.items():
            # the value read is dropped at once: the peak is one read's, as in training
            took = timed(f"{name}, run {i + 1}", fn)[0]
            best[name] = min(best.get(name, took), took)
    return best


def print_read(best: dict[str, float]) -> None:
    for fmt in ("pandas", "arrow"):
        plain, verified = best[f"plain {fmt}"], best[f"verified {fmt}"]
        print(
            f"  (e) read as {fmt:<6}: plain {plain:6.2f} s, verified {verified:6.2f} s"
            f"   = +{(verified / plain - 1) * 100:4.0f}%   target <= +20%"
        )


def bench_postgres(url: str, folder: Path, rows: int, spec: SplitSpec) -> tuple[float, float]:
    print("(pg) the same split pushed down into PostgreSQL")
    schema = f"dmv_bench_{secrets.token_hex(3)}"
    try:
        pg = open_warehouse(url, schema=schema)
    except Exception as exc:
        print(f"  PostgreSQL unreachable, skipped: {exc}")
        return float("nan"), float("nan")
    try:
        parquet = Source.from_url(folder / "copy.parquet", pg)
        load_s, _ = timed(
            "load the rows into PostgreSQL (COPY, setup)",
            lambda: retrieve(Retrieval(parquet), pg, "src"),
        )
        pg.execute("ANALYZE src")
        split_s, result = timed(
            "store_split in PostgreSQL (pushdown)",
            lambda: store_split(pg, "SELECT * FROM src", spec, "bench__d__s"),
        )
        print("      parts: " + ", ".join(f"{p.name}={p.rows:,}" for p in result.parts))
        return load_s, split_s
    finally:
        pg.execute(f'DROP SCHEMA "{schema}" CASCADE')
        pg.close()


GENERATE_SPARK = """
CREATE TABLE src AS
SELECT id,
       timestamp_seconds(1704067200 + id * 3) AS ts,
       CAST(pmod(xxhash64(id * 31), 500000) AS BIGINT) AS user_id,
       'cat' || CAST(id % 40 AS STRING) AS category,
       CAST(round((id % 100000) * 0.37 + 0.01, 2) AS DOUBLE) AS price,
       CAST(id % 3 = 0 AS INT) AS label
FROM range({rows})
"""


def bench_spark(url: str, rows: int, spec: SplitSpec) -> tuple[float, float, int, float, float]:
    """(split s, read s, rows read, peak MB after the read, peak MB before it)."""
    print("(spark) the same split pushed down into Spark through Spark Connect")
    started = False
    if not url:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import spark_conftest  # the test suite's launcher of a local server

        def start() -> str:
            return spark_conftest.start_server(driver_memory="4g", shuffle_partitions=16)

        url, started = timed("start a local[2] Spark Connect server (setup)", start)[1], True
    database = f"dmv_bench_{secrets.token_hex(3)}"
    wh = open_warehouse(f"{url}/;database={database}")
    try:
        timed(
            "generate the table in Spark (setup)",
            lambda: wh.execute(GENERATE_SPARK.format(rows=rows)),
        )
        split_s, result = timed(
            "store_split in Spark (pushdown)",
            lambda: store_split(wh, "SELECT * FROM src", spec, "bench__d__s"),
        )
        print("      parts: " + ", ".join(f"{p.name}={p.rows:,}" for p in result.parts))
        train = result.part("train").table
        before = peak_mb()

        def stream() -> int:
            count = 0
            for batch in wh.reader(f'SELECT * FROM "{train}"'):
                count += batch.num_rows
            return count

        read_s, count = timed("stream the train part over Connect (Arrow batches)", stream)
        return split_s, read_s, count, peak_mb(), before
    finally:
        try:
            wh.execute(f'DROP NAMESPACE IF EXISTS "{database}" CASCADE')
            wh.close()
        finally:
            if started:
                spark_conftest.stop_server()


if __name__ == "__main__":
    sys.exit(main())
