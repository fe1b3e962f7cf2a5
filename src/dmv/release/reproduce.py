"""Verify a version against what it was made from, and reproduce its training.

:func:`verify` re-hashes everything a version stands on: its model files and
artifacts, its stored split, the interface and logic records, the training
code at the recorded commit, and compares the recorded environment with this
one. :func:`reproduce` checks the recorded commit out into a temporary git
worktree, re-runs the recorded entry point there against the same project
(registry, artifacts and warehouse) and checks that it lands on the same
version with metrics within a tolerance; the result is a new training run.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.artifacts import Blob, hash_bytes
from dmv.errors import DmvError, InvalidInput, NotFound
from dmv.flavors import is_unsafe
from dmv.flavors.check import compare, run_check
from dmv.flavors.stored import stored_code
from dmv.interface import Interface
from dmv.logic.fingerprint import LogicInfo, capture_environment
from dmv.logic.git import add_worktree, apply_patch, remove_worktree, repo_top, show_file
from dmv.release.serving_run import selected_run
from dmv.training import RUN_META_ENV
from dmv.training.entry import entry_environment
from dmv.version import Reference, Version

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.progress import Progress
    from dmv.registry import RegistryStore, RunInfo, VersionInfo
    from dmv.stores import Stores

__all__ = [
    "Check",
    "Report",
    "environment_differences",
    "recorded_commit",
    "reproduce",
    "training_commit",
    "verify",
]


@dataclass(frozen=True)
class Check:
    """One thing verified: ``status`` is ok, fail, warn (a difference) or skip."""

    name: str
    status: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail}


@dataclass
class Report:
    version: str
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def add(self, name: str, status: str, detail: str = "") -> None:
        self.checks.append(Check(name, status, detail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            **self.extra,
        }


def recorded_commit(run: RunInfo | None) -> str | None:
    """The git commit ``run`` was trained from (None: not recorded)."""
    return ((run.code or {}).get("commit") if run else None) or None


def training_commit(registry: RegistryStore, info: VersionInfo) -> str:
    """The git commit the version's selected run was trained from (NotFound: none recorded)."""
    commit = recorded_commit(selected_run(registry, info))
    if not commit:
        raise NotFound(
            f"{info.version} recorded no git commit",
            hint="train inside a git repository to link versions to code",
        )
    return str(commit)


def environment_differences(recorded: Mapping[str, Any] | None) -> list[str]:
    """How this environment differs from a recorded one (Python, OS, packages)."""

    if not recorded:
        return ["no environment was recorded"]
    now = capture_environment().to_dict()
    out = []
    for section, key in (("python", "version"), ("os", "platform")):
        old, new = (recorded.get(section) or {}).get(key), (now.get(section) or {}).get(key)
        if old != new:
            out.append(f"{section} {old} → {new}")
    old_pkgs = recorded.get("distributions") or {}
    new_pkgs = now.get("distributions") or {}
    for name in sorted(set(old_pkgs) | set(new_pkgs)):
        if old_pkgs.get(name) != new_pkgs.get(name):
            out.append(f"{name} {old_pkgs.get(name, '-')} → {new_pkgs.get(name, '-')}")
    return out


def verify(
    stores: Stores,
    data: ProjectData,
    ref: str,
    *,
    trust_pickle: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Check every hash and fingerprint a version stands on, and its behaviour.

    The behavioural check loads the serving run's model in a fresh process and
    predicts the sample recorded when it was logged; a model stored in a format
    that can run code (pickle) is loaded only with ``trust_pickle``.
    """

    info = stores.registry.resolve(Reference.parse(ref))
    report = Report(info.version.ref)
    runs = [r for r in stores.registry.list_runs(info.version) if r.status == "finished"]
    selected = selected_run(stores.registry, info)
    if not runs:
        report.add("runs", "warn", "no training run recorded")
    total, done = sum(len(run.artifacts) for run in runs), 0
    for run in runs:
        for art in run.artifacts:
            if progress:
                progress("verifying artifacts", done, total)
            done += 1
            what = f"{info.version} {run.id} {art.name}"
            problem = stores.artifacts.verify(Blob(art.digest, art.size), what=what)
            report.add(
                f"artifact {run.id}/{art.name}",
                "fail" if problem else "ok",
                problem.message if problem else f"{art.size} bytes, {art.digest[:19]}…",
            )
    if progress and total:
        progress("verifying artifacts", total, total)
    if selected is not None:
        if progress:
            progress("checking behaviour", 0, 1)
        _verify_behaviour(stores, info, selected, report, trust_pickle)
        if progress:
            progress("checking behaviour", 1, 1)
    if progress:
        progress("checking the split", 0, 1)
    for name, status, detail in data.split_checks(info.version):
        report.add(name, status, detail)

    if progress:
        progress("checking the split", 1, 1)
    if info.interface:
        fp = Interface.from_dict(info.interface).fingerprint
        ok = fp == info.interface_fp
        report.add(
            "interface",
            "ok" if ok else "fail",
            "fingerprint matches its record"
            if ok
            else f"record gives {fp[:19]}…, version says {str(info.interface_fp)[:19]}…",
        )
    else:
        report.add("interface", "skip", "no interface recorded")

    if info.logic:
        logic = LogicInfo.from_dict(info.logic)
        ok = logic.fingerprint == info.logic_fp
        report.add(
            "logic",
            "ok" if ok else "fail",
            "fingerprint matches its record" if ok else "record and fingerprint differ",
        )
        _verify_code(stores, info, selected, logic, report)
    else:
        report.add("logic", "skip", "no logic recorded")

    diffs = environment_differences(selected.environment if selected else None)
    report.add(
        "environment",
        "warn" if diffs else "ok",
        "; ".join(diffs[:10]) + (f" (+{len(diffs) - 10} more)" if len(diffs) > 10 else "")
        if diffs
        else "same Python, OS and packages",
    )
    if not report.ok:
        # Deploy systems hear of it (webhook event verify_failed), and the audit log too.
        failed = [c.to_dict() for c in report.checks if c.status == "fail"]
        stores.registry.record_event(
            info.version.name, "version.verify_failed", info.version.number, {"failed": failed}
        )
    return report


def _verify_behaviour(
    stores: Stores, info: VersionInfo, run: RunInfo, report: Report, trust_pickle: bool
) -> None:
    """Load the model as a server would, in a fresh process, and predict the stored sample."""

    art = next((a for a in run.artifacts if a.kind == "model"), None)
    if art is None:
        report.add("behaviour", "skip", f"{run.id} logged no model")
        return
    meta = dict(art.meta or {})
    name = f"behaviour {run.id}/{art.name}"
    if is_unsafe(meta) and not trust_pickle:
        # Never loaded: a pickle can run anything, and verify must not be the way in.
        report.add(
            name,
            "fail",
            f"stored as {meta.get('format', 'pickle')} (unsafe-format), not loaded: "
            "rerun with --trust-pickle if you trust everyone who can write to this registry",
        )
        return
    what = f"{info.version} {run.id} {art.name}"
    try:
        data = stores.artifacts.get_bytes(Blob(art.digest, art.size), what=what)
        code = stored_code(stores.artifacts, meta, what)
    except DmvError as exc:
        report.add(name, "fail", exc.message)
        return
    sample = meta.get("sample") or {}
    rows = sample.get("inputs")
    answer = run_check(data, meta, code, rows, interface=info.interface, trust_pickle=trust_pickle)
    seconds = answer.get("seconds")
    if not answer.get("ok"):
        report.add(name, "fail", f"does not load in a fresh process: {answer.get('error')}")
        return
    if rows is None:
        report.add(name, "ok", f"loads in a fresh process ({seconds} s); no sample was recorded")
        return
    diff = compare(sample.get("outputs"), answer.get("outputs"))
    if diff:
        report.add(name, "fail", f"the stored model answers its sample differently: {diff}")
    else:
        report.add(
            name, "ok", f"reproduces its {len(rows)} recorded sample predictions ({seconds} s)"
        )


def _verify_code(
    stores: Stores, info: VersionInfo, run: RunInfo | None, logic: Any, report: Report
) -> None:

    commit = recorded_commit(run)
    if not logic.files:
        report.add("code", "skip", "no training code declared")
        return
    if not commit:
        report.add("code", "skip", "no git commit recorded")
        return
    try:
        top = repo_top(stores.root)
    except Exception as exc:
        report.add("code", "skip", f"not a git repository here: {exc}")
        return
    prefix = os.path.relpath(stores.root, top)
    bad = []
    for path, digest in logic.files.items():
        repo_path = path if prefix == "." else f"{prefix}/{path}"
        content = show_file(top, commit, repo_path)
        if content is None:
            bad.append(f"{path} missing at {commit[:12]}")
        elif hash_bytes(content) != digest and not info.dirty:
            bad.append(f"{path} differs at {commit[:12]}")
    if bad:
        report.add("code", "fail", "; ".join(bad))
    else:
        note = " (dirty: plus the stored patch)" if info.dirty else ""
        report.add("code", "ok", f"{len(logic.files)} file(s) match commit {commit[:12]}{note}")


def reproduce(
    stores: Stores,
    data: ProjectData,
    ref: str,
    *,
    tolerance: float = 1e-6,
    from_source: bool = False,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> Report:
    """Re-run a version's training from its recorded commit; see the module docs."""

    def step(n: int) -> None:  # worktree, training, comparison: three steps
        if progress:
            progress("reproducing", n, 3)

    info = stores.registry.resolve(Reference.parse(ref))
    version = info.version
    run = selected_run(stores.registry, info)
    if run is None:
        raise NotFound(
            f"{version} has no finished training run to reproduce",
            hint=f"train it first, then 'dmv runs {version}' lists the runs",
        )
    code = run.code or {}
    report = Report(version.ref, extra={"original_run": run.id})
    commit, entry = code.get("commit"), run.entry_point
    # trained through 'dmv train': the same declared entry, with the same data and params
    trained_by = (run.meta or {}).get("trained_by")
    if isinstance(trained_by, dict) and isinstance(trained_by.get("command"), str):
        entry = trained_by["command"]
        code = {**code, "cwd": "."}
        report.extra["trained_by"] = trained_by["entry"]
    if not commit:
        raise InvalidInput(
            f"{version} {run.id} recorded no git commit: it cannot be reproduced",
            hint="train inside a git repository so runs record their commit",
        )
    if not entry:
        raise InvalidInput(
            f"{version} {run.id} recorded no entry point",
            hint="pass the command to run, or train with 'python SCRIPT' so the entry point is "
            "recorded",
        )
    diffs = environment_differences(run.environment)
    report.add("environment", "warn" if diffs else "ok", "; ".join(diffs[:10]) or "same")
    if from_source:
        _compare_source(data, version, report)

    top = repo_top(stores.root)
    rel_root = os.path.relpath(stores.root, top)
    step(0)
    with tempfile.TemporaryDirectory(prefix="dmv-reproduce-") as tmp:
        tree = Path(tmp) / "tree"
        add_worktree(top, str(commit), tree)
        try:
            root = tree / rel_root
            if info.dirty:
                patch = next((a for a in run.artifacts if a.kind == "patch"), None)
                if patch is None:
                    report.add("patch", "fail", "dirty version without a stored patch")
                    return report
                apply_patch(tree, stores.artifacts.get_bytes(Blob(patch.digest, patch.size)))
                report.add("patch", "ok", "applied the stored uncommitted changes")
            if not (root / "dmv.toml").exists():
                root.mkdir(parents=True, exist_ok=True)
                (root / "dmv.toml").write_text("[dmv]\n", encoding="utf-8")
            started = time.time()
            tag = f"{(run.version or version).number}/{run.id}"
            step(1)
            done = _run_entry(stores, root / code.get("cwd", "."), entry, tag, timeout, trained_by)
            report.extra["exit_code"] = done.returncode
            if done.returncode != 0:
                tail = (done.stderr or done.stdout or "").strip().splitlines()[-5:]
                report.add("training", "fail", f"exit code {done.returncode}: " + " | ".join(tail))
                return report
        finally:
            remove_worktree(top, tree)
    step(2)
    new_runs = [
        r
        for r in stores.registry.list_model_runs(version.name, kind="training")
        if (r.meta or {}).get("reproduction_of") == f"{(run.version or version).number}/{run.id}"
        and r.started_at >= started - 1
    ]
    if not new_runs:
        report.add("training", "fail", "the entry point ran but logged no run")
        return report
    new = new_runs[-1]
    report.extra["run"] = new.id
    same = new.version == (run.version or version)
    report.add(
        "version",
        "ok" if same else "fail",
        f"derived {new.version.number if new.version else '-'}"
        + ("" if same else f", expected {(run.version or version).number}"),
    )
    report.add("training", "ok", f"recorded as {new.id}")
    _compare_metrics(run, new, tolerance, report)
    step(3)
    return report


def _compare_source(data: ProjectData, version: Version, report: Report) -> None:
    try:
        found = data.source_matches(version.name, version.data, version.split)
    except NotFound:
        report.add("source", "skip", f"{version.data}.{version.split} is not a stored split")
        return
    if found["same"]:
        report.add("source", "ok", "the source still gives the stored rows")
    else:
        report.add(
            "source",
            "warn",
            "the source has changed since the split was stored "
            f"({str(found['stored'])[:19]}… → {str(found['source'])[:19]}…); "
            "training uses the stored split",
        )


def _run_entry(
    stores: Stores,
    cwd: Path,
    entry: str,
    tag: str,
    timeout: float | None,
    trained_by: Any = None,
) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(entry)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    # The worktree is another folder: point it at this project's stores.
    if isinstance(trained_by, dict):
        meta = {"reproduction_of": tag, "trained_by": {**trained_by, "token": None}}
        env = entry_environment(
            stores, str(trained_by.get("data")), dict(trained_by.get("params") or {}), meta
        )
    else:
        env = {
            **os.environ,
            "DMV_REGISTRY": stores.config.location("registry"),
            "DMV_ARTIFACTS": stores.config.location("artifacts"),
            "DMV_WAREHOUSE": stores.config.location("warehouse"),
            RUN_META_ENV: json.dumps({"reproduction_of": tag}),
        }
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _compare_metrics(old: RunInfo, new: RunInfo, tolerance: float, report: Report) -> None:
    bad, compared = [], 0
    for split, values in old.metrics.items():
        for name, value in values.items():
            other = new.metrics.get(split, {}).get(name)
            if other is None:
                bad.append(f"{split}.{name} missing")
                continue
            compared += 1
            if not math.isclose(value, other, rel_tol=tolerance, abs_tol=tolerance):
                bad.append(f"{split}.{name} {value:.6g} → {other:.6g}")
    if bad:
        report.add("metrics", "fail", f"outside tolerance {tolerance:g}: " + "; ".join(bad))
    else:
        report.add("metrics", "ok", f"{compared} metric(s) within {tolerance:g}")
