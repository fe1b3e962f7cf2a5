"""dmv's model repository against MLflow's, measured side by side in one run.

    .venv/bin/python bench/registry.py            # table
    .venv/bin/python bench/registry.py --json     # the same figures as JSON
    .venv/bin/python bench/registry.py --n 50     # fewer repetitions, quicker

dmv runs in this interpreter on a fresh ``dmv.init(tmp)`` project (SQLite
registry, local artifact folder). MLflow runs in its own benchmark venv,
``bench/.envs/mlflow`` (created here with ``pip install mlflow scikit-learn``
when missing, never in the project venv), as a subprocess
(``bench/_mlflow_worker.py``) on a fresh ``sqlite:///…/mlflow.db`` tracking and
registry store with a local artifact folder; it reports JSON on stdout.

Every figure is the median of N timed repetitions after a warm-up that is not
timed. The speed-up of a row is MLflow's median / dmv's median; a row passes
when it reaches the issue's target.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ENV = HERE / ".envs" / "mlflow"
WORKER = HERE / "_mlflow_worker.py"
MODEL = "bench-model"
RUN_MODEL = "bench-run"
DATA = "0123.abcd"

# (key, label, target speed-up, MLflow's median as quoted in issue 2, in ms)
OPERATIONS: list[tuple[str, str, float, float]] = [
    ("create_version", "create a version", 25.0, 11.7),
    ("get_version", "get by exact version", 25.0, 6.7),
    ("get_alias", "get by alias", 25.0, 4.7),
    ("list_versions", "list 1,000 versions of a model", 25.0, 291.0),
    ("list_versions_uncached", "list 1,000 versions, no cache (every record read)", 25.0, 291.0),
    ("move_alias", "move an alias", 50.0, 72.0),
    ("log_run", "log + register a run (10 params, 5 metrics, sklearn model)", 20.0, 10_500.0),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the MLflow benchmark environment ----------------------------------------


def env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_mlflow_env(env: Path, spec: str) -> Path:
    """The interpreter of the benchmark venv, created (with MLflow) when missing."""
    python = env_python(env)
    if python.exists():
        check = subprocess.run(
            [str(python), "-c", "import mlflow, sklearn"], capture_output=True, text=True
        )
        if check.returncode == 0:
            return python
    log(f"creating the MLflow benchmark environment {env} (pip install {spec} scikit-learn)")
    log("this takes a few minutes, once; later runs reuse it")
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    t0 = time.perf_counter()
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, spec, "scikit-learn"], capture_output=True, text=True)
    if done.returncode != 0:
        log(done.stdout[-3000:] + done.stderr[-3000:])
        sys.exit(f"error: pip install {spec} scikit-learn failed in {env}")
    log(f"installed in {time.perf_counter() - t0:.0f} s")
    return python


def run_mlflow(python: Path, plan: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    # MLflow's usage telemetry would only add network noise to the timings.
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("DO_NOT_TRACK", "true")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_REGISTRY_URI", None)
    done = subprocess.run(
        [str(python), str(WORKER), json.dumps(plan)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        log(done.stderr[-5000:])
        sys.exit(f"error: the MLflow worker failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- dmv's half, in this interpreter -------------------------------------------


class Timer:
    """Times repetitions of one operation; optionally under cProfile."""

    def __init__(self, profile: bool) -> None:
        self.profiles: dict[str, pstats.Stats] = {}
        self.profile = profile

    def measure(self, key: str, fn: Callable[[int], Any], reps: int, warmup: int) -> dict[str, Any]:
        for i in range(warmup):
            fn(i)
        times = []
        prof = cProfile.Profile() if self.profile else None
        for i in range(warmup, warmup + reps):
            if prof is not None:
                prof.enable()
            t0 = time.perf_counter()
            fn(i)
            elapsed = time.perf_counter() - t0
            if prof is not None:
                prof.disable()
            times.append(elapsed * 1000.0)
        if prof is not None:
            self.profiles[key] = pstats.Stats(prof)
        return {
            "median_ms": statistics.median(times),
            "min_ms": min(times),
            "max_ms": max(times),
            "reps": len(times),
        }


def run_dmv(plan: dict[str, Any], timer: Timer) -> dict[str, Any]:
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import dmv

    n, n_list, n_run = plan["n"], plan["n_list"], plan["n_run"]
    warmup, total = plan["warmup"], plan["versions"]
    keys: list[int] = plan["keys"]
    results: dict[str, Any] = {}

    with tempfile.TemporaryDirectory(prefix="dmv-bench-", ignore_cleanup_errors=True) as tmp:
        t0 = time.perf_counter()
        project = dmv.init(tmp)
        results["store_init_ms"] = (time.perf_counter() - t0) * 1000.0
        project.create_model(MODEL, purpose="benchmark")

        def version(k: int) -> dmv.Version:
            return dmv.Version(MODEL, 0, 0, k, "0123", "abcd")

        # 1. create a version (versions 0.0.1 … in order, like MLflow's 1, 2, …)
        results["create_version"] = timer.measure(
            "create_version",
            lambda i: project.registry.create_version(version(i + 1)),
            n,
            warmup,
        )
        for k in range(warmup + n + 1, total + 1):  # fill up to `total`, unmeasured
            project.registry.create_version(version(k))
        project.set_alias(f"{MODEL}@0.0.1-{DATA}", "production")

        # 2. get by exact version
        results["get_version"] = timer.measure(
            "get_version",
            lambda i: project.show(f"{MODEL}@0.0.{keys[i % len(keys)]}-{DATA}"),
            n,
            warmup,
        )

        # 3. get by alias
        results["get_alias"] = timer.measure(
            "get_alias", lambda i: project.show(f"{MODEL}@production"), n, warmup
        )

        # 4. list 1,000 versions of a model
        def list_all(i: int) -> None:
            found = project.versions(MODEL)
            if len(found) != total:
                raise RuntimeError(f"project.versions returned {len(found)}, not {total}")

        results["list_versions"] = timer.measure("list_versions", list_all, n_list, warmup)

        # 4b. the same listing read from the database every time, every record touched
        def list_uncached(i: int) -> None:
            found = project.registry.list_versions_uncached(MODEL)
            if sum(1 for info in found if info.version.name == MODEL) != total:
                raise RuntimeError(f"list_versions_uncached returned {len(found)}, not {total}")

        results["list_versions_uncached"] = timer.measure(
            "list_versions_uncached", list_uncached, n_list, warmup
        )

        # 5. move an alias (alternating between two versions)
        results["move_alias"] = timer.measure(
            "move_alias",
            lambda i: project.set_alias(f"{MODEL}@0.0.{1 + i % 2}-{DATA}", "production"),
            n,
            warmup,
        )

        # 6. log a run (10 params, 5 metrics, a small scikit-learn model) and register it
        x, y = load_iris(return_X_y=True)
        model = LogisticRegression(max_iter=500).fit(x, y)
        params = {f"param_{j}": j for j in range(10)}
        metrics = {f"metric_{j}": 0.5 + j / 10 for j in range(5)}

        def log_run(i: int) -> None:
            with project.run(RUN_MODEL, version=f"0.0.{i + 1}-{DATA}", params=params) as run:
                run.log_metrics(metrics, split="test")
                run.log_model(model)

        results["log_run"] = timer.measure("log_run", log_run, n_run, warmup)
        project.close()

    results["meta"] = {
        "dmv": dmv.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "registry": "sqlite (dmv.init default)",
    }
    return results


# -- report --------------------------------------------------------------------


#: MLflow has no listing cache: both dmv listing rows compare with its one listing.
MLFLOW_KEY = {"list_versions_uncached": "list_versions"}


def build_rows(mine: dict[str, Any], theirs: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, label, target, reference in OPERATIONS:
        their = theirs[MLFLOW_KEY.get(key, key)]
        d, m = mine[key]["median_ms"], their["median_ms"]
        ratio = m / d if d > 0 else float("inf")
        rows.append(
            {
                "operation": key,
                "label": label,
                "dmv_ms": d,
                "mlflow_ms": m,
                "ratio": ratio,
                "target": target,
                "pass": ratio >= target,
                "dmv_reps": mine[key]["reps"],
                "mlflow_reps": their["reps"],
                "dmv_min_ms": mine[key]["min_ms"],
                "mlflow_min_ms": their["min_ms"],
                "mlflow_reference_ms": reference,
            }
        )
    return rows


def fmt_ms(ms: float) -> str:
    if ms >= 1000:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.3f}"


def fmt_reference(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


def print_table(report: dict[str, Any]) -> None:
    head = ["operation", "dmv median (ms)", "MLflow median (ms)", "ratio", "target", "result"]
    body = [
        [
            r["label"],
            fmt_ms(r["dmv_ms"]),
            fmt_ms(r["mlflow_ms"]),
            f"{r['ratio']:.1f}x",
            f">= {r['target']:g}x",
            "PASS" if r["pass"] else "MISS",
        ]
        for r in report["rows"]
    ]
    widths = [max(len(row[c]) for row in [head, *body]) for c in range(len(head))]
    line = "+".join("-" * (w + 2) for w in widths)

    def show(cells: list[str]) -> None:
        out = [
            f" {c.ljust(w)} " if i == 0 else f" {c.rjust(w)} "
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        print("|".join(out).rstrip())

    v = report["versions"]
    print(
        f"dmv {v['dmv']} (Python {v['python']}, scikit-learn {v['dmv_sklearn']}) vs "
        f"MLflow {v['mlflow']} (Python {v['mlflow_python']}, scikit-learn {v['mlflow_sklearn']})"
    )
    print(f"{platform.platform()}; both on SQLite in a fresh temporary folder")
    print(
        f"medians of N repetitions after {report['plan']['warmup']} warm-up(s); "
        "ratio = MLflow median / dmv median"
    )
    print()
    show(head)
    print(line)
    for cells in body:
        show(cells)
    print()
    print(
        "repetitions (dmv / MLflow): "
        + ", ".join(f"{r['operation']} {r['dmv_reps']}/{r['mlflow_reps']}" for r in report["rows"])
    )
    print(
        "context only, MLflow medians quoted in issue 2 (not compared): "
        + ", ".join(
            f"{r['operation']} {fmt_reference(r['mlflow_reference_ms'])}" for r in report["rows"]
        )
    )
    passed = sum(r["pass"] for r in report["rows"])
    print(f"{passed}/{len(report['rows'])} rows reach their target")


def print_profiles(timer: Timer, limit: int) -> None:
    for key, stats in timer.profiles.items():
        stats.stream = sys.stderr  # type: ignore[attr-defined]
        for order in ("tottime", "cumulative"):
            log(f"\n=== cProfile, dmv side: {key}, by {order} (top {limit}) ===")
            stats.sort_stats(order).print_stats(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, default=200, help="repetitions of the quick operations (default 200)"
    )
    parser.add_argument(
        "--n-list", type=int, default=20, help="repetitions of the 1,000-version listing"
    )
    parser.add_argument(
        "--n-run", type=int, default=20, help="repetitions of dmv's log-and-register run"
    )
    parser.add_argument(
        "--n-run-mlflow",
        type=int,
        default=5,
        help="repetitions of MLflow's log-and-register run (seconds each; default 5)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before each timing")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--env", type=Path, default=ENV, help=f"the MLflow benchmark venv (default {ENV})"
    )
    parser.add_argument(
        "--mlflow-spec", default="mlflow", help="what to pip install, e.g. 'mlflow==3.1.0'"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of each dmv operation to stderr"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a row misses its target")
    args = parser.parse_args(argv)

    versions = 1000
    if args.n < 1 or args.n_list < 1 or args.n_run < 1 or args.n_run_mlflow < 1:
        parser.error("repetition counts must be at least 1")
    if args.warmup < 0 or args.warmup + args.n > versions:
        parser.error(f"--warmup + --n must be at most {versions} (the versions created)")

    python = ensure_mlflow_env(args.env, args.mlflow_spec)
    # The versions the get-by-exact-version rows read: spread over all 1,000, same for both.
    keys = [1 + (i * 7919) % versions for i in range(args.warmup + args.n)]
    plan = {
        "n": args.n,
        "n_list": args.n_list,
        "warmup": args.warmup,
        "versions": versions,
        "keys": keys,
    }

    log("dmv: measuring …")
    timer = Timer(args.profile)
    t0 = time.perf_counter()
    mine = run_dmv({**plan, "n_run": args.n_run}, timer)
    log(f"dmv: done in {time.perf_counter() - t0:.1f} s")
    log(f"MLflow: measuring in {python} …")
    t0 = time.perf_counter()
    theirs = run_mlflow(python, {**plan, "n_run": args.n_run_mlflow})
    log(f"MLflow: done in {time.perf_counter() - t0:.1f} s")

    report = {
        "versions": {
            "dmv": mine["meta"]["dmv"],
            "python": mine["meta"]["python"],
            "dmv_sklearn": mine["meta"]["sklearn"],
            "mlflow": theirs["meta"]["mlflow"],
            "mlflow_python": theirs["meta"]["python"],
            "mlflow_sklearn": theirs["meta"]["sklearn"],
            "platform": platform.platform(),
        },
        "plan": {k: v for k, v in plan.items() if k != "keys"}
        | {"n_run_dmv": args.n_run, "n_run_mlflow": args.n_run_mlflow},
        "store_init_ms": {"dmv": mine["store_init_ms"], "mlflow": theirs["store_init_ms"]},
        "rows": build_rows(mine, theirs),
    }
    report["all_pass"] = all(r["pass"] for r in report["rows"])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    if args.profile:
        print_profiles(timer, 25)
    return 1 if args.check and not report["all_pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
