"""A Spark split killed at random points leaves nothing registered broken; fsck cleans up.

Spark has no multi-table transaction: a split builds ``__dmv_…`` tables, renames
them into place and registers last. Each trial starts a split in a child process
and kills it (SIGKILL) after a random delay within the split's measured duration;
afterwards every registered split verifies, and ``fsck --repair`` removes every
table the killed split left, so the warehouse holds exactly the registered parts.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

import dmv
import spark_conftest
from dmv.data.engines import open_warehouse

spark_url = spark_conftest.spark_url
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

MODEL = "price-model"
TRIALS = int(os.environ.get("DMV_SPARK_CRASH_TRIALS", "6"))
SEED = int(os.environ.get("DMV_CRASH_SEED", "1313"))
CHILD = """
import sys
import dmv
project = dmv.open(sys.argv[1])
project.data_split("price-model", "0123", by="key:id", salt=sys.argv[2])
print("done", flush=True)
"""


def _child(root: Path, salt: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), salt],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_killed_spark_splits_leave_nothing_registered_broken(
    tmp_path: Path, spark_url: str
) -> None:
    url = spark_conftest.spark_database_url(spark_url)
    project = dmv.init(tmp_path / "p", warehouse=url)
    rows = pa.table({"id": list(range(2000)), "v": [i % 17 for i in range(2000)]})
    with open_warehouse(url) as wh:
        wh.create_from_arrow(
            "src", pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())
        )
    project.data_query(MODEL, sql="SELECT * FROM src", id="0123")
    # The first split warms the server up; the second says how long a split takes.
    duration = 0.0
    for salt in ("warm-up", "calibrate"):
        start = time.monotonic()
        calibrate = _child(project.root, salt)
        _, err = calibrate.communicate(timeout=300)
        assert calibrate.returncode == 0, err
        duration = time.monotonic() - start
    rng = random.Random(SEED)
    killed = 0
    for trial in range(3 * TRIALS):  # a split that finished first was not a kill: try again
        if killed == TRIALS:
            break
        start = time.monotonic()
        child = _child(project.root, f"t{trial}")
        time.sleep(rng.uniform(0.1, 0.9) * duration)
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            killed += 1
        else:  # it ran faster than the calibration: aim earlier from now on
            duration = min(duration, time.monotonic() - start)
        child.communicate(timeout=60)
        for split in project.data_splits(MODEL, "0123"):
            assert project.data_verify(MODEL, split.ref)["ok"], split.ref
        project.fsck(repair=True, grace_seconds=0)
        after = project.fsck()
        assert after.ok and after.orphans == [], after.to_dict()
        registered = {p["table"] for s in project.data_splits(MODEL) for p in s.parts}
        with open_warehouse(url) as wh:
            tables = set(wh.list_tables())
        assert tables == registered | {"src"}, tables ^ (registered | {"src"})
    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} kills landed mid-split"
