"""Read an MLflow registry; runs in MLflow's own environment, never imported by dmv.

``python _mlflow_dump.py PLAN_JSON``: the plan names the tracking URI, an optional
model and a folder. Every registered model, its live versions (with their runs'
params, metrics (with their history) and tags, the MLmodel file and the downloaded model files with
their SHA-256) and its aliases are written to stdout as one JSON object; the
files go under ``<folder>/<model index>/<version>/``. MLflow's own output goes
to stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version(client: Any, mv: Any, dest: Path) -> dict[str, Any]:
    import mlflow  # type: ignore[import-not-found]
    import yaml  # type: ignore[import-untyped]

    out: dict[str, Any] = {
        "version": int(mv.version),
        "status": mv.status,
        "source": mv.source,
        "run_id": mv.run_id or None,
        "description": mv.description or "",
        "tags": dict(mv.tags or {}),
        "created_ms": mv.creation_timestamp,
        "aliases": list(getattr(mv, "aliases", None) or []),
    }
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
            out["run"] = {
                "params": dict(run.data.params),
                "metrics": dict(run.data.metrics),
                # every value of each metric, with its step: the learning curves
                "history": {
                    key: [
                        [int(m.step), m.value, m.timestamp]
                        for m in client.get_metric_history(mv.run_id, key)
                    ]
                    for key in run.data.metrics
                },
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.log")},
                "start_ms": run.info.start_time,
                "end_ms": run.info.end_time,
                "experiment_id": run.info.experiment_id,
            }
        except Exception as exc:  # the run was deleted: the version stays importable
            out["run_error"] = f"{type(exc).__name__}: {exc}"
    uri = client.get_model_version_download_uri(mv.name, mv.version)
    dest.mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    files = {}
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        rel = path.relative_to(local).as_posix()
        files[rel] = {"path": str(path), "sha256": _sha256(path), "size": path.stat().st_size}
    out["files"] = files
    mlmodel = local / "MLmodel"
    out["mlmodel"] = yaml.safe_load(mlmodel.read_text()) if mlmodel.is_file() else None
    return out


def main(plan: dict[str, Any]) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=plan["tracking_uri"], registry_uri=plan["tracking_uri"])
    folder = Path(plan["folder"])
    wanted = plan.get("model")
    models = []
    registered = client.search_registered_models(max_results=1000)
    for index, rm in enumerate(registered):
        if wanted and rm.name != wanted:
            continue
        versions = client.search_model_versions(f"name='{rm.name}'", max_results=10000)
        models.append(
            {
                "name": rm.name,
                "description": rm.description or "",
                "tags": dict(rm.tags or {}),
                "aliases": {k: int(v) for k, v in (getattr(rm, "aliases", None) or {}).items()},
                "versions": [
                    _version(client, mv, folder / str(index) / str(mv.version))
                    for mv in sorted(versions, key=lambda v: int(v.version))
                ],
            }
        )
    if wanted and not models:
        return {"error": f"MLflow has no registered model named {wanted!r}"}
    import mlflow

    return {"mlflow": mlflow.__version__, "models": models}


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "1")
    with contextlib.redirect_stdout(sys.stderr):
        try:
            # The plan (with the tracking URI and its credentials) comes on stdin:
            # a command line is readable by every user of the machine.
            result = main(json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()))
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    print(json.dumps(result))
