"""Crash safety: a hundred SIGKILLs at random points of dmv's writes, then ``dmv fsck``.

docs/guarantees.md promises that a process killed at any point leaves either
nothing registered or everything registered, and at most unregistered leftovers
that ``dmv fsck`` lists and ``--repair`` removes. The harness
(tests/_workers/crash_worker.py, a fork server) runs one operation per child
process: logging a run with a real model file, uploading a large artifact,
storing a split, releasing. It first times each kind un-killed, then kills
children with SIGKILL a random delay (uniform within the kind's measured
duration) after they start. After every kill: the warehouse is writable again,
fsck finds nothing registered missing or partial, no half-built table exists,
the trial's operation is all there or not at all (all there if it finished), and
repair leaves no orphan. At the end every registered split still matches its
fingerprints, every version's runs are whole, and the project still works.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import dmv
from _workers.crash_worker import MODEL, UPLOAD_BYTES, upload_bytes, version_of
from conftest import leftovers, seed_warehouse
from dmv.artifacts import hash_bytes
from dmv.data.engines import open_warehouse
from dmv.errors import NotFound

WORKER = Path(__file__).parent / "_workers" / "crash_worker.py"
KINDS = ("run", "upload", "split", "release")
KILLS = int(os.environ.get("DMV_CRASH_KILLS", "100"))
# The seed fixes the plan and the delays; where a kill lands also depends on the
# machine's timing. With seed 2 the 2-core CI box sees every kind of orphan, the
# rarest being split tables (killed between the warehouse commit and the
# registration), but only "some orphans" is asserted, so a faster box can't flake.
SEED = int(os.environ.get("DMV_CRASH_SEED", "2"))
CALIBRATION = 3  # un-killed runs of each kind, to measure how long it takes
ROWS = 442  # scikit-learn's diabetes data, which seed_warehouse loads


class Harness:
    """The fork server, one command and one answer at a time."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # No BLAS thread pools in a process that forks.
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        )
        assert "ready" in self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the fork server died (exit code {self.proc.poll()})"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def __call__(self, kind: str, trial: int, delay: float | None) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"kind": kind, "trial": trial, "delay": delay}) + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        assert answer["outcome"] != "failed", answer["error"]
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _registered(project: dmv.Project, kind: str, trial: int) -> bool:
    """Whether the trial's operation is registered; asserts it is whole if it is."""
    if kind in ("run", "upload"):
        ref = f"{MODEL}@{version_of(kind, trial)}"
        try:
            runs = project.runs(ref)
        except NotFound:
            return False
        assert [(r.id, r.status) for r in runs] == [("tr0", "finished")], ref
        assert len(runs[0].artifacts) == 1, f"{ref} tr0 is registered without its file"
        (artifact,) = runs[0].artifacts
        if kind == "run":
            assert artifact.kind == "model"
            assert project.load_model(ref).trial_ == trial  # verified, then unpickled
        else:
            assert (artifact.name, artifact.size) == ("weights.bin", UPLOAD_BYTES)
            assert artifact.digest == hash_bytes(upload_bytes(trial))
        return True
    if kind == "split":
        mine = [s for s in project.data_splits(MODEL, "0123") if s.spec["salt"] == f"t{trial}"]
        assert len(mine) <= 1
        for split in mine:
            assert sum(p["rows"] for p in split.parts) == ROWS
            report = project.data_verify(MODEL, split.ref)
            assert report["ok"], report["mismatches"]
        return bool(mine)
    source = version_of("release", trial)
    releases = [v for v in project.versions(MODEL) if v.released_from == source]
    assert len(releases) <= 1, f"{source} released twice"
    for v in releases:
        assert (v.state, v.serving_run, v.version.x) == ("released", "tr0", 1)
    return bool(releases)


def _after_a_crash(
    project: dmv.Project, kind: str, trial: int, outcome: str
) -> tuple[bool, list[str]]:
    """Every check one trial must pass; whether it registered, and the orphans it left."""
    warehouse = project.config.location("warehouse")
    # The killed writer's DuckDB lock is gone: this process can open it for writing.
    with open_warehouse(warehouse) as wh:
        building = leftovers(wh)  # a split's shared storage is named by its layout
    assert building == [], "a half-built split table survived the crash"
    report = project.fsck()
    assert report.ok, report.problems
    registered = _registered(project, kind, trial)
    assert registered or outcome != "finished", f"{kind} {trial} finished but is not registered"
    repair = project.fsck(repair=True, grace_seconds=0)
    assert repair.ok and len(repair.repaired) == len(report.orphans), repair.to_dict()
    after = project.fsck()
    assert after.ok and after.orphans == [], after.to_dict()
    return registered, [o["kind"] for o in report.orphans]


def _whole(project: dmv.Project) -> None:
    """Every version's runs, every release and every split, after all the kills."""
    versions = project.versions(MODEL)
    runs = 0
    for v in versions:
        if v.version.x == 0:
            ids = [r.id for r in project.runs(v.version)]
            assert ids == [f"tr{i}" for i in range(len(ids))] and ids, v.version
            runs += len(ids)
        else:
            source = project.show(f"{MODEL}@{v.released_from}")
            assert v.serving_run in {r.id for r in project.runs(source.version)}
    splits = project.data_splits(MODEL)
    for split in splits:
        assert project.data_verify(MODEL, split.ref)["ok"], split.ref
    # Each write and its audit entry were one transaction.
    audit = Counter(e.action for e in project.audit(model=MODEL, limit=None))
    assert audit["run.finished"] == runs
    assert audit["data.split"] == len(splits)
    assert audit["version.release"] == sum(1 for v in versions if v.version.x >= 1)
    report = project.fsck(deep=True)
    assert report.ok and report.orphans == [], report.to_dict()


@pytest.mark.slow
@pytest.mark.timeout(900)  # a hundred real processes killed and checked: minutes on two cores
def test_a_hundred_kills_leave_nothing_registered_broken(
    project: dmv.Project, small_model: object
) -> None:
    rng = random.Random(SEED)
    print(f"\ncrash harness: {KILLS} kills, seed {SEED} (DMV_CRASH_SEED)")
    plan = [KINDS[i % len(KINDS)] for i in range(KILLS)]
    rng.shuffle(plan)
    seed_warehouse(project, MODEL)
    calibration = range(1000, 1000 + CALIBRATION)
    for trial in [*calibration, *(i for i, kind in enumerate(plan) if kind == "release")]:
        with project.run(MODEL, version=version_of("release", trial)) as run:
            run.log_model(small_model)

    harness = Harness(project.root)
    try:
        typical = {}
        for kind in KINDS:
            seconds = [harness(kind, trial, None)["seconds"] for trial in calibration]
            assert all(_registered(project, kind, trial) for trial in calibration)
            typical[kind] = statistics.median(seconds)
        print(
            "typical durations: " + ", ".join(f"{k} {s * 1000:.1f} ms" for k, s in typical.items())
        )

        outcomes: Counter[tuple[str, str]] = Counter()
        orphans: Counter[str] = Counter()
        for trial, kind in enumerate(plan):
            answer = harness(kind, trial, rng.uniform(0, typical[kind]))
            registered, left = _after_a_crash(project, kind, trial, answer["outcome"])
            outcomes[kind, answer["outcome"] + (" registered" if registered else "")] += 1
            orphans.update(left)
    finally:
        harness.close()
    for kind in KINDS:
        print(
            f"  {kind:<8} " + ", ".join(f"{o} {n}" for (k, o), n in outcomes.items() if k == kind)
        )
    print(f"  orphans found and repaired: {dict(orphans) or 'none'}")

    # Not vacuous: kills landed before the operation ended, and some mid-write.
    killed_before_registration = sum(n for (_, o), n in outcomes.items() if o == "killed")
    assert killed_before_registration >= KILLS // 5, outcomes
    assert sum(orphans.values()) > 0, "no kill landed between a write and its registration"

    _whole(project)
    # The project still works: a new run and a new split.
    with project.run(MODEL, version="0.9.0-0123.abcd") as run:
        run.log_model(small_model)
    split = project.data_split(MODEL, "0123", by="key:patient_id", salt="after")
    assert project.data_verify(MODEL, split.ref)["ok"]
    assert project.load_model(f"{MODEL}@0.9.0-0123.abcd") is not None
    _whole(project)
