"""The MLflow environment the MLflow tests run (``make install`` builds ``.venv-mlflow``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mlflow_python() -> Path:
    """The MLflow venv's interpreter; skips the test, saying why, when there is none."""
    chosen = os.environ.get("DMV_MLFLOW_PYTHON")
    path = Path(chosen) if chosen else ROOT / ".venv-mlflow" / "bin" / "python"
    if not path.is_file():
        pytest.skip(f"no MLflow environment at {path}: run 'make install' (builds .venv-mlflow)")
    return path


def mlflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # MLflow's venv must not see this checkout's dmv
    env["MLFLOW_DISABLE_TELEMETRY"] = "1"
    env["DO_NOT_TRACK"] = "1"
    # As an activated venv: MLflow starts its server as a command (uvicorn) from PATH.
    env["PATH"] = f"{mlflow_python().parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_in_mlflow(script: str, *args: str, cwd: Path | None = None) -> str:
    """Run ``script`` with MLflow's interpreter; its stdout (fails the test on an error)."""
    proc = subprocess.run(
        [str(mlflow_python()), "-c", script, *args],
        capture_output=True,
        text=True,
        env=mlflow_env(),
        cwd=cwd,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout
