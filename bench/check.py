"""What ``dmv check`` costs on the reference scenario, training excluded.

    .venv/bin/python bench/check.py            # table
    .venv/bin/python bench/check.py --json     # the same figures as JSON

Builds the reference scenario with ``python -m dmv.demo`` (0.0.1 → 0.0.2 → 0.1.0 →
new split → release 1.1.0-0123.efgh as production → retrain), adds a release policy
(``metric = "r2"``, ``must_not_regress_by = 0.05``, ``approvals = 1``), then, on a
feature branch, lowers the regularisation and trains on the *other* split (0123.abcd)
— not timed. Then it times, each as a fresh ``dmv`` process (what a CI step pays):

1. the first ``dmv check disease-progress --format markdown``: it verifies the
   candidate and evaluates production on the candidate's split (the missing
   cross-evaluation);
2. the same check again: the evaluation is recorded now, only the verify runs;
3. ``dmv policy show`` — the interpreter's start and the CLI alone, for scale;
4. ``python -c "import pandas, skops.io"`` — what any fresh process that loads the
   model pays on this machine now (the verify's behaviour check pays it once), for scale:
   on a shared, loaded machine this dominates.

``--reuse DIR`` measures a copy of a scenario folder built before (``scenario()``).

Target: each check under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = "disease-progress"
TARGET_S = 10.0
POLICY = '\n[release]\nmetric = "r2"\nmust_not_regress_by = 0.05\napprovals = 1\n'


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parent.parent / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _run(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True)
    return time.perf_counter() - started, done


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def scenario(root: Path) -> float:
    """The reference scenario plus a feature branch's candidate; returns its build time."""
    started = time.perf_counter()
    _, done = _run([sys.executable, "-m", "dmv.demo", str(root)], root.parent)
    if done.returncode != 0:
        raise SystemExit(f"the demo failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    with (root / "dmv.toml").open("a", encoding="utf-8") as f:
        f.write(POLICY)
    _git(root, "commit", "-qam", "release policy")
    _git(root, "checkout", "-qb", "lower-alpha")
    train = (root / "train.py").read_text(encoding="utf-8")
    (root / "train.py").write_text(train.replace("ALPHA = 0.1", "ALPHA = 0.01"), "utf-8")
    _git(root, "commit", "-qam", "lower the regularisation")
    _, done = _run([sys.executable, "train.py", "0123.abcd"], root)
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def measure(reuse: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dmv-bench-check-") as tmp:
        root = Path(tmp) / "project"
        if reuse is not None:
            shutil.copytree(reuse, root)
            built = 0.0
        else:
            built = scenario(root)
        # For scale on this machine now: what any fresh process that loads the model pays
        # (pandas and scikit-learn's loader), whatever dmv does.
        imports, _ = _run([sys.executable, "-c", "import pandas, skops.io"], root)
        dmv_cmd = [sys.executable, "-m", "dmv"]
        check = [*dmv_cmd, "check", MODEL, "--format", "markdown"]
        first, done = _run(check, root)
        report = done.stdout
        if done.returncode not in (0, 1):
            raise SystemExit(f"dmv check failed ({done.returncode}):\n{done.stderr}")
        second, again = _run(check, root)
        cli, _ = _run([*dmv_cmd, "policy", "show"], root)
        return {
            "scenario_build_s": round(built, 2),
            "check_first_s": round(first, 3),
            "check_again_s": round(second, 3),
            "cli_start_s": round(cli, 3),
            "model_imports_s": round(imports, 3),
            "exit_codes": [done.returncode, again.returncode],
            "target_s": TARGET_S,
            "pass": first < TARGET_S and second < TARGET_S,
            "report": report,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="DIR",
        help="a scenario folder built before (its copy is measured; DIR is left as it is)",
    )
    args = parser.parse_args()
    figures = measure(args.reuse)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    rows = [
        ("dmv check (first: verify + cross-evaluation)", figures["check_first_s"]),
        ("dmv check (again: verify, evaluation recorded)", figures["check_again_s"]),
        ("dmv policy show (interpreter + CLI start)", figures["cli_start_s"]),
        ("python -c 'import pandas, skops.io' (a model load)", figures["model_imports_s"]),
    ]
    print(f"reference scenario built in {figures['scenario_build_s']} s (not timed below)")
    print(f"{'operation':<50} {'seconds':>8} {'target':>8} {'ratio':>7}")
    for name, seconds in rows:
        verdict = f"{seconds / TARGET_S:>6.2f}x" if "check" in name else "      -"
        target = f"< {TARGET_S:g}" if "check" in name else "-"
        print(f"{name:<50} {seconds:>8.2f} {target:>8} {verdict}")
    print(f"exit codes {figures['exit_codes']}; {'PASS' if figures['pass'] else 'MISS'}")
    print("\nthe first report:\n")
    print(figures["report"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
