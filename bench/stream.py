"""Benchmark of streamed training reads (issue #26 item 3).

Stores a split whose train part has ``--rows`` rows (10M by default) in a DuckDB
warehouse in a temporary folder (and, with ``--postgres``, in PostgreSQL), then reads
the train part in a fresh process each way and prints, side by side:

  (m) the materialised, verified read (``run.dataset(part, format="arrow")``): the
      md5 proof, then the whole part in one Arrow table
  (s) the streamed, verified read (``format="batches"``): Arrow record batches of
      ``--batch-size`` rows, the fingerprint accumulated as they stream
                                             target: client peak memory <= 300 MB

for each: wall time, rows/s and the reading process's peak memory (VmHWM, with
the interpreter and its libraries; the "baseline" line is that process before it
reads anything). On DuckDB the engine runs inside the reading process, so its
memory is counted as the client's; on PostgreSQL the client holds only what it
receives.

Usage: python bench/stream.py [--rows N] [--batch-size N] [--postgres] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dmv.data.engines import open_warehouse
from dmv.data.records import PartInfo, SplitSpec
from dmv.data.split import store_split

GENERATE = """
CREATE TABLE src AS
SELECT i AS id,
       CAST(hash(i * 31) % 500000 AS BIGINT) AS user_id,
       'cat' || CAST(i % 40 AS VARCHAR) AS category,
       CAST(round((i % 100000) * 0.37 + 0.01, 2) AS DOUBLE) AS price,
       CAST((i * 7919) % 1000 AS DOUBLE) / 1000 AS f1,
       CAST((i * 104729) % 997 AS DOUBLE) / 997 AS f2,
       CAST(i % 3 = 0 AS INTEGER) AS label
FROM range({rows}) AS t(i)
"""


def peak_mb() -> float:
    """This process's peak resident memory (MB).

    ``VmHWM`` is per address space, so it starts afresh at ``exec``; ``ru_maxrss``
    would carry the peak of the process that forked this one (here: the setup's).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, url: str, part_json: str, batch_size: int) -> None:
    """One read in this (fresh) process; its figures as JSON on stdout."""
    import pyarrow  # noqa: F401  the libraries a trainer has loaded anyway

    from dmv.data.streamed import StreamedPart
    from dmv.data.verified import read_verified

    part = PartInfo.from_dict(json.loads(part_json))
    wh = open_warehouse(url)
    base = peak_mb()
    start = time.perf_counter()
    if mode == "stream":
        stream = StreamedPart(lambda: contextlib.nullcontext(wh), part, batch_size)
        rows = sum(b.num_rows for b in stream)
        assert stream.verified
    else:
        rows = read_verified(wh, part).table.num_rows
    took = time.perf_counter() - start
    wh.close()
    print(json.dumps({"rows": rows, "seconds": took, "peak_mb": peak_mb(), "base_mb": base}))


def measure(mode: str, url: str, part: PartInfo, batch_size: int) -> dict[str, Any]:
    args = [sys.executable, __file__, "--child", mode, url, json.dumps(part.to_dict())]
    done = subprocess.run(
        [*args, str(batch_size)], capture_output=True, text=True, check=False, timeout=3600
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} read failed:\n{done.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def report(engine: str, url: str, part: PartInfo, batch_size: int) -> bool:
    m = measure("materialise", url, part, batch_size)
    s = measure("stream", url, part, batch_size)
    assert m["rows"] == s["rows"] == part.rows
    print(f"\n{engine}: train part of {part.rows:,} rows, {len(part.columns)} columns")
    print(f"  {'read':<34} {'seconds':>8} {'rows/s':>12} {'peak MB':>9} {'baseline MB':>12}")
    for label, r in (("materialised (format='arrow')", m), ("streamed (format='batches')", s)):
        rate = r["rows"] / r["seconds"]
        print(
            f"  {label:<34} {r['seconds']:8.2f} {rate:12,.0f} {r['peak_mb']:9.0f} "
            f"{r['base_mb']:12.0f}"
        )
    ok = s["peak_mb"] <= 300
    print(
        f"  streamed / materialised: memory {s['peak_mb'] / m['peak_mb']:.2f}x, "
        f"time {s['seconds'] / m['seconds']:.2f}x; streamed peak <= 300 MB: "
        f"{'PASS' if ok else 'MISS'}"
    )
    return ok


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the train part")
    parser.add_argument("--batch-size", type=int, default=65_536)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-duckdb", action="store_true", help="only PostgreSQL")
    args = parser.parse_args()
    total = int(args.rows / 0.8) + 1  # train is 80% of the split
    ratios = {"train": 0.8, "valid": 0.1, "test": 0.1}
    spec = SplitSpec("key", "id", ratios)
    ok = True
    if not args.skip_duckdb:
        with tempfile.TemporaryDirectory(prefix="dmv-bench-stream-") as tmp:
            url = str(Path(tmp) / "warehouse.duckdb")
            with open_warehouse(url) as wh:
                wh.execute(GENERATE.format(rows=total))
                part = store_split(wh, "SELECT * FROM src", spec, "bench__d__s").part("train")
            ok &= report("DuckDB (in-process engine)", url, part, args.batch_size)
    if args.postgres:
        prefix = f"bench_{secrets.token_hex(4)}"
        with open_warehouse(args.pg_url) as pg, tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "src.duckdb"
            with open_warehouse(str(src)) as duck:
                duck.execute(GENERATE.format(rows=total))
                pg.create_from_arrow(f"{prefix}_src", duck.reader("SELECT * FROM src"))
            try:
                result = store_split(pg, f"SELECT * FROM {prefix}_src", spec, f"{prefix}__d__s")
                ok &= report(
                    "PostgreSQL (server-side cursor)",
                    args.pg_url,
                    result.part("train"),
                    args.batch_size,
                )
            finally:
                for name in pg.list_tables():
                    if name.startswith(prefix):
                        pg.drop_table(name)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
