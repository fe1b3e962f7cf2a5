"""A shared registry under load: sixteen processes on PostgreSQL, eight on SQLite.

Each process (tests/_workers/load_worker.py) loops for ``DMV_LOAD_SECONDS``
(default 20) over a random mix of writes into one model: runs into shared and
into its own versions, versions registered without a run (some by every worker
at once), alias moves, releases of its own prereleases and races to release the
shared ones, the odd major release. Each reports what it made; the registry must
hold exactly that: no error, no version lost or doubled, run numbers unique and
gap-free, one audit entry per write, every release well-formed. Throughput is
printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

import dmv
from dmv.registry import AuditEntry

WORKER = Path(__file__).parent / "_workers" / "load_worker.py"
MODEL = "load-model"
SECONDS = float(os.environ.get("DMV_LOAD_SECONDS", "20"))
SEED = os.environ.get("DMV_LOAD_SEED", "20240611")


def _load(root: Path, workers: int, env: dict[str, str]) -> tuple[list[dict[str, Any]], float]:
    """Start ``workers`` processes, release them at once, and collect their reports."""
    rendezvous = root.parent / "rendezvous"
    rendezvous.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(root), str(i), str(rendezvous), SEED],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + 180
        while len(list(rendezvous.glob("ready-*"))) < workers:
            dead = [p for p in procs if p.poll() is not None]
            assert not dead, dead[0].communicate()[1]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        start = time.time() + 0.2
        go = rendezvous / "go.tmp"
        go.write_text(json.dumps([start, start + SECONDS]))
        go.rename(rendezvous / "go")  # atomic: no worker reads it half-written
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=SECONDS + 120)
            assert proc.returncode == 0, err
            reports.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return reports, SECONDS


def _throughput(label: str, reports: list[dict[str, Any]], seconds: float) -> Counter[str]:
    ops: Counter[str] = Counter()
    latency: dict[str, list[float]] = defaultdict(list)
    for r in reports:
        ops.update(r["ops"])
        for op, values in r["latency"].items():
            latency[op] += values
    total = sum(ops.values())
    rate = total / seconds
    lost = sum(len(r["refused"]) for r in reports)
    print(f"\n{label}: {total} operations in {seconds:.0f} s = {rate:.0f} ops/s (seed {SEED})")
    print(f"  {lost} releases refused: another worker released that prerelease first")
    for op in sorted(ops):
        ms = sorted(v * 1000 for v in latency[op])
        p95 = ms[int(len(ms) * 0.95)]
        print(
            f"  {op:<16}{ops[op]:>7}{ops[op] / seconds:>8.1f}/s"
            f"   p50 {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms"
        )
    return ops


def _stored_runs(project: dmv.Project) -> dict[str, list[tuple[str, str]]]:
    """Every training run in the registry: version number → [(run id, status)], tr0 first."""
    import sqlalchemy as sa

    from dmv.registry import schema as t

    v, r = t.versions.c, t.runs.c
    query = (
        sa.select(v.x, v.y, v.z, v.data, v.split, r.number, r.status)
        .join(t.versions, v.id == r.version_id)
        .order_by(v.id, r.number)
    )
    runs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    with project.registry.engine.connect() as conn:
        for row in conn.execute(query):
            runs[f"{row.x}.{row.y}.{row.z}-{row.data}.{row.split}"].append(
                (f"tr{row.number}", row.status)
            )
    return runs


def _check(project: dmv.Project, reports: list[dict[str, Any]]) -> None:
    # Each error's first line ("<operation>: <exception>"), at most three per worker.
    failures = {r["index"]: [e.splitlines()[0] for e in r["errors"][:3]] for r in reports}
    failures = {index: errors for index, errors in failures.items() if errors}
    assert not failures, json.dumps(failures, indent=1)

    versions = project.versions(MODEL)
    numbers = [v.version.number for v in versions]
    assert len(numbers) == len(set(numbers)), "a version is registered twice"

    # Versions: exactly those the workers made (none lost, none extra).
    run_ids: dict[str, list[str]] = defaultdict(list)
    for r in reports:
        for number, run_id in r["runs"]:
            run_ids[number].append(run_id)
    created = {n for r in reports for n in r["created"]}
    released = [tuple(pair) for r in reports for pair in r["releases"]]
    assert len(released) == len({n for n, _ in released}), "one release reported twice"
    assert set(numbers) == set(run_ids) | created | {n for n, _ in released}

    # Runs: every version's run numbers are unique and gap-free, and they are
    # exactly the ones the workers were handed. (One query: project.runs() per
    # version would read every run's environment, tens of thousands of times.)
    stored = _stored_runs(project)
    by_number = {v.version.number: v for v in versions}
    for number, ids in run_ids.items():
        expected = [f"tr{i}" for i in range(len(ids))]
        assert sorted(ids, key=lambda s: int(s[2:])) == expected, number
        assert stored[number] == [(f"tr{i}", "finished") for i in range(len(ids))], number
        assert by_number[number].run_count == len(ids)
    assert set(stored) == set(run_ids), "runs nobody logged"
    for number in created - set(run_ids):
        assert by_number[number].run_count == 0, number

    # Releases: each names an existing prerelease with its Y.Z-D.S, serves one of
    # its runs, and no prerelease is released twice.
    for number, source in released:
        info = by_number[number]
        assert info.state == "released" and info.released_from == source, number
        origin = by_number[source]
        assert origin.state == "prerelease" and source.split(".", 1)[1] == number.split(".", 1)[1]
        assert (info.serving_run, "finished") in stored[source], number
    sources = [source for _, source in released]
    assert len(sources) == len(set(sources)), "a prerelease released twice"
    # A release refused to a race loser names a release that really exists.
    for message in (m for r in reports for m in r["refused"]):
        found = re.fullmatch(rf"{MODEL} (\S+) is released already as {MODEL} (\S+)", message)
        assert found is not None, message
        assert by_number[found[2]].released_from == found[1], message
    assert sum(1 for v in versions if v.version.x >= 1) == len(released)
    assert project.model(MODEL).generation == max((v.version.x for v in versions), default=0)

    # The audit log: one entry per write, and it agrees with the data.
    def audited(action: str) -> list[AuditEntry]:
        return project.audit(model=MODEL, action=action, limit=None)

    moves = sum(sum(r["moves"].values()) for r in reports)
    alias_log = audited("alias.set")
    assert len(alias_log) == moves
    for alias in project.aliases(MODEL):
        newest = next(e for e in alias_log if e.target == alias.alias)  # the log is newest first
        assert newest.details is not None and newest.details["to"] == alias.version.number
    assert len(audited("run.finished")) == sum(len(ids) for ids in run_ids.values())
    assert len(audited("version.create")) == sum(1 for v in versions if v.version.x == 0)
    assert len(audited("version.release")) == len(released)
    assert len(audited("model.create")) == 1


@pytest.mark.slow
@pytest.mark.postgres
def test_sixteen_processes_on_one_postgres_registry(tmp_path: Path, pg_database: str) -> None:
    root = tmp_path / "shared"
    dmv.init(root, registry=pg_database).close()
    reports, seconds = _load(root, 16, {"DMV_REGISTRY": pg_database})
    ops = _throughput("PostgreSQL, 16 processes", reports, seconds)
    project = dmv.open(root, registry=pg_database)
    t0 = time.perf_counter()
    _check(project, reports)
    print(f"  checked against the registry in {time.perf_counter() - t0:.1f} s")
    assert ops["run-shared"] and ops["release-shared"] and ops["alias"]
    project.close()


@pytest.mark.slow
def test_eight_processes_on_one_sqlite_registry(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    dmv.init(root).close()
    reports, seconds = _load(root, 8, {})
    ops = _throughput("SQLite, 8 processes", reports, seconds)
    project = dmv.open(root)
    t0 = time.perf_counter()
    _check(project, reports)
    print(f"  checked against the registry in {time.perf_counter() - t0:.1f} s")
    assert ops["run-shared"] and ops["release-shared"] and ops["alias"]
    project.close()
