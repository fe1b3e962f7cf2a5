"""Where MLflow lives: its own virtual environment, never dmv's.

MLflow pins versions of libraries dmv also uses, so the two never share an
environment (``make install`` builds ``.venv-mlflow``). dmv talks to MLflow only
by running that environment's interpreter on a small worker script.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dmv.errors import MlflowUnavailable

__all__ = ["ENV_VAR", "find_mlflow_python"]

#: The interpreter of an environment with MLflow installed.
ENV_VAR = "DMV_MLFLOW_PYTHON"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve()
    roots = [Path.cwd(), *here.parents[2:4]]  # the checkout dmv runs from
    found = [r / ".venv-mlflow" / "bin" / "python" for r in roots]
    mlflow = shutil.which("mlflow")
    if mlflow:
        found.append(Path(mlflow).with_name("python"))
    return found


def find_mlflow_python(python: str | None = None) -> Path:
    """The interpreter to run MLflow with: ``python``, ``$DMV_MLFLOW_PYTHON``, ``.venv-mlflow``."""
    chosen = python or os.environ.get(ENV_VAR)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise MlflowUnavailable(
                f"{ENV_VAR}/--mlflow-python names {chosen}, which is not a file",
                hint="point it at the python of an environment with mlflow installed",
            )
        return path
    for path in _candidates():
        if path.is_file():
            return path
    raise MlflowUnavailable(
        "no environment with MLflow found",
        hint=f"run 'make install' (it builds .venv-mlflow), or set {ENV_VAR} to the python "
        "of an environment where 'pip install mlflow' was run",
    )
