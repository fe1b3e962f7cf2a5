"""Many processes creating one fresh project and logging runs into one model at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dmv

WORKER = r"""
import json, os, sys, time
import dmv

root, start_at = sys.argv[1], float(sys.argv[2])
index, per_worker = int(sys.argv[3]), int(sys.argv[4])
while time.time() < start_at:
    time.sleep(0.001)
project = dmv.init(root)
made = []
for i in range(per_worker):
    # The same params for all: they are part of the logic fingerprint of 0.0.1.
    with project.run("shared-model", version="0.0.1-0123.abcd", params={"w": 0}) as run:
        run.log_metrics({"i": i, "worker": index})
    made.append(run.id)
    with project.run("shared-model", version=f"0.{index + 1}.{i}-0123.abcd") as own:
        pass
    made.append(f"{own.version.number}:{own.id}")
project.set_alias(f"shared-model@0.{index + 1}.0-0123.abcd", "production")
print(json.dumps(made))
"""


def _race(root: Path, env: dict[str, str], workers: int = 8, per_worker: int = 5) -> list[str]:
    start_at = time.time() + 2.0  # all processes are up before the starting gun
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), str(start_at), str(i), str(per_worker)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        for i in range(workers)
    ]
    made: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        made += json.loads(out)
    return made


def _check(project: dmv.Project, made: list[str], workers: int = 8, per_worker: int = 5) -> None:
    shared = sorted((m for m in made if ":" not in m), key=lambda s: int(s[2:]))
    assert shared == [f"tr{i}" for i in range(workers * per_worker)]  # unique, gap-free
    runs = project.runs("shared-model@0.0.1-0123.abcd")
    assert [r.id for r in runs] == [f"tr{i}" for i in range(workers * per_worker)]
    own = [m for m in made if ":" in m]
    assert len(set(own)) == workers * per_worker and all(m.endswith(":tr0") for m in own)
    numbers = [v.version.number for v in project.versions("shared-model")]
    assert len(numbers) == len(set(numbers)) == workers * per_worker + 1
    moves = project.audit(model="shared-model", action="alias.set", limit=None)
    assert len(moves) == workers
    assert len(project.audit(action="model.create", limit=None)) == 1


@pytest.mark.slow
def test_eight_processes_on_a_fresh_sqlite_project(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    made = _race(root, {})
    project = dmv.open(root)
    _check(project, made)
    assert (root / "dmv.toml").read_text().startswith("# dmv project settings")


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_processes_on_a_fresh_postgres_registry(tmp_path: Path, pg_database: str) -> None:
    root = tmp_path / "fresh"
    made = _race(root, {"DMV_REGISTRY": pg_database})
    project = dmv.open(root, registry=pg_database)
    _check(project, made)
    project.close()


WRITER = r"""
import sys
import dmv

root, registry = sys.argv[1], sys.argv[2]
project = dmv.open(root, **({"registry": registry} if registry else {}))
reg = project.registry
reg.create_version(dmv.Version("cache-model", 0, 0, 3, "0123", "abcd"))
project.set_alias("cache-model@0.0.2-0123.abcd", "production")
with project.run("cache-model", version="0.0.1-0123.abcd") as run:
    pass
project.close()
"""


def _second_process_writes(root: Path, registry: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(root), registry],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_second_processs_write_is_seen_by_the_next_read(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    registry = request.getfixturevalue("pg_database") if backend == "postgres" else ""
    root = tmp_path / "shared"
    project = dmv.init(root, **({"registry": registry} if registry else {}))
    reg = project.registry
    for z in (1, 2):
        reg.create_version(dmv.Version("cache-model", 0, 0, z, "0123", "abcd"))
    project.set_alias("cache-model@0.0.1-0123.abcd", "production")
    # Warm every read this process may serve from memory or a prepared statement.
    for _ in range(2):
        before = project.versions("cache-model")
        assert [i.version.z for i in before] == [1, 2]
        assert project.resolve("cache-model@production").z == 1
        assert project.show("cache-model@0.0.1-0123.abcd").run_count == 0

    _second_process_writes(root, registry)

    after = project.versions("cache-model")
    assert [i.version.z for i in after] == [1, 2, 3]
    assert [i.aliases for i in after] == [(), ("production",), ()]
    assert [i.run_count for i in after] == [1, 0, 0]
    assert project.resolve("cache-model@production").z == 2
    assert project.show("cache-model@0.0.1-0123.abcd").run_count == 1
    assert project.resolve("cache-model@0.0").z == 3
    assert [i.version.z for i in before] == [1, 2]  # what was handed out never changes
    project.close()
