"""Import an MLflow model registry (``dmv import mlflow --tracking-uri URI``).

MLflow's store is read by :mod:`dmv.integrations._mlflow_dump`, run in MLflow's
own environment; dmv only reads the JSON and the files it hands back.

The mapping of MLflow's integer versions to dmv versions (docs/integrations.md):

- MLflow version ``N`` of model ``M`` becomes ``m 0.Y.Z-mlflow.vN``: a
  prerelease; DATA is ``mlflow`` (the retrieval is not recorded by MLflow) and
  SPLIT is ``vN``, so the MLflow version is read straight off the dmv one.
- ``Y`` is the interface: the signature, fingerprinted as a dmv interface. The
  first signature of a model is Y=0; each new one takes the next Y.
- ``Z`` is the logic: the run's params, the flavor and the model class. Within a
  Y, each new logic takes the next Z; the same logic gets the same Z again.
- Names are lowercased, other characters become ``-``; aliases follow their
  version (MLflow alias names dmv cannot hold are reported as skipped).

Each version records its origin (``meta.origin``: tracking URI without
credentials, name, version, run id, source). A second import skips every
version whose origin is already recorded and moves aliases only. Every file is
SHA-256-checked against what the worker read before it is stored.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv._urls import database_url as redact_url
from dmv._urls import redact, redact_text
from dmv.artifacts import hash_bytes
from dmv.errors import IntegrityError, InvalidInput, MlflowUnavailable
from dmv.integrations._mlflow_env import find_mlflow_python
from dmv.interface import Interface
from dmv.logic.fingerprint import hyperparameters_fingerprint
from dmv.registry import NewArtifact, NewRun
from dmv.training.run import DEFAULT_SPLIT_KEY
from dmv.version import Reference, Version

if TYPE_CHECKING:
    from dmv.progress import Progress
    from dmv.stores import Stores

__all__ = ["dmv_name", "import_registry", "interface_from_signature"]

DATA_ID = "mlflow"
_TYPES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "string",
    "binary": "binary",
    "datetime": "datetime",
}
_NUMPY = {
    "float64": "float64",
    "float32": "float32",
    "int64": "int64",
    "int32": "int32",
    "bool": "bool",
    "object": "string",
}
_SPLIT_PREFIXES = ("train", "valid", "val", "test", "eval")


def dmv_name(mlflow_name: str) -> str:
    """A dmv model name for an MLflow one: lowercase, ``-`` for anything else."""
    name = re.sub(r"[^a-z0-9]+", "-", mlflow_name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"m-{name}".rstrip("-")
    return name[:64].rstrip("-")


def _field(spec: dict[str, Any], i: int, side: str) -> dict[str, Any]:
    name = spec.get("name") or (f"{side}_{i}" if i else side)
    if spec.get("type") == "tensor":
        t = spec.get("tensor-spec") or {}
        shape = [int(s) for s in (t.get("shape") or [-1])][1:] or [-1]
        return {
            "name": name,
            "type": "array",
            "items": _NUMPY.get(str(t.get("dtype")), "float64"),
            "shape": shape,
        }
    kind = spec.get("type")
    if kind == "array":
        items = spec.get("items") or {}
        return {
            "name": name,
            "type": "array",
            "items": _TYPES.get(str(items.get("type")), "float64"),
            "shape": [-1],
            "required": bool(spec.get("required", True)),
        }
    if kind not in _TYPES:
        raise InvalidInput(
            f"MLflow column type {kind!r} has no dmv type",
            hint=f"give the column one of MLflow's types dmv reads ({', '.join(_TYPES)}) "
            "in the model's signature",
        )
    return {"name": name, "type": _TYPES[kind], "required": bool(spec.get("required", True))}


def interface_from_signature(signature: dict[str, Any] | None) -> dict[str, Any] | None:
    """MLflow's signature block as a dmv interface (None: no signature, or one dmv cannot type)."""

    if not signature or not signature.get("inputs"):
        return None
    try:
        sides = {}
        for side in ("inputs", "outputs"):
            raw = signature.get(side)
            specs = json.loads(raw) if isinstance(raw, str) else (raw or [])
            sides[side] = [_field(s, i, side[:-1]) for i, s in enumerate(specs)]
        return Interface.from_dict(sides).to_dict()
    except (InvalidInput, ValueError, TypeError):
        return None


def _metrics(flat: dict[str, float]) -> dict[str, dict[str, float]]:

    out: dict[str, dict[str, float]] = {}
    for key, value in flat.items():
        head, sep, tail = key.partition("_")
        split = head if sep and tail and head in _SPLIT_PREFIXES else DEFAULT_SPLIT_KEY
        name = tail if split != DEFAULT_SPLIT_KEY else key
        if isinstance(value, int | float) and value == value:  # NaN is not a metric
            out.setdefault("valid" if split == "val" else split, {})[name] = float(value)
    return out


def _history(flat: dict[str, Any], imported: float) -> list[tuple[str, str, int, float, float]]:
    """MLflow's metric history (``{key: [[step, value, ms], …]}``) as dmv's, keyed as
    :func:`_metrics` keys the last values."""
    out: list[tuple[str, str, int, float, float]] = []
    for key, points in (flat or {}).items():
        keyed = _metrics({key: 0.0})
        if not keyed or not isinstance(points, list):
            continue
        split, names = next(iter(keyed.items()))
        name = next(iter(names))
        for point in points:
            try:
                step, value, ms = int(point[0]), float(point[1]), point[2]
            except (TypeError, ValueError, IndexError):
                continue
            if value == value and abs(value) != float("inf") and 0 <= step < 1 << 62:
                at = float(ms) / 1000 if isinstance(ms, int | float) else imported
                out.append((split, name, step, value, at))
    return out


def _model_file(
    mlmodel: dict[str, Any] | None, files: dict[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """Which downloaded file dmv can serve, and its model metadata (flavor, format)."""
    flavors = (mlmodel or {}).get("flavors") or {}
    if "sklearn" in flavors:
        conf = flavors["sklearn"]
        rel = conf.get("pickled_model", "model.pkl")
        if conf.get("serialization_format") == "skops":
            return rel, {"flavor": "sklearn", "format": "skops", "unsafe": False}
        return rel, {"flavor": "python", "format": "pickle", "unsafe": True}
    if "lightgbm" in flavors:
        conf = flavors["lightgbm"]
        if conf.get("model_class", "lightgbm.basic.Booster") == "lightgbm.basic.Booster":
            meta = {"flavor": "lightgbm", "format": "lightgbm-text", "unsafe": False}
            return conf.get("data", "model.lgb"), {**meta, "task": "booster"}
        return conf.get("data", "model.pkl"), {
            "flavor": "python",
            "format": "pickle",
            "unsafe": True,
        }
    if "xgboost" in flavors:
        conf = flavors["xgboost"]
        cls = str(conf.get("model_class", "xgboost.core.Booster")).rsplit(".", 1)[-1]
        meta = {"flavor": "xgboost", "format": "xgboost-json", "unsafe": False, "wrapper": cls}
        return conf.get("data", "model.xgb"), meta
    if "onnx" in flavors:
        return flavors["onnx"].get("data", "model.onnx"), {
            "flavor": "onnx",
            "format": "onnx",
            "unsafe": False,
        }
    return None


def _dump(python: Path, uri: str, model: str | None, folder: Path) -> dict[str, Any]:
    script = Path(__file__).with_name("_mlflow_dump.py")
    plan = json.dumps({"tracking_uri": uri, "model": model, "folder": str(folder)})
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "1"
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        proc = subprocess.run(
            [str(python), str(script)],
            input=plan,
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise MlflowUnavailable(
            "reading the MLflow registry took longer than 15 minutes",
            hint="import one model at a time with --model, or check that the tracking server "
            "answers",
        ) from None
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {}
    if not result:
        why = redact_text(proc.stderr.strip()[-500:])
        raise MlflowUnavailable(
            f"MLflow's worker failed: {why}",
            hint="point DMV_MLFLOW_PYTHON at a Python where mlflow is installed, "
            "or pass --mlflow-python",
        )
    if "error" in result:
        why = redact_text(str(result["error"]))
        raise InvalidInput(f"MLflow: {why}", hint="check --tracking-uri and --model")
    return result


def import_registry(
    stores: Stores,
    tracking_uri: str,
    *,
    model: str | None = None,
    python: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Copy the registry at ``tracking_uri`` (or one model of it) into the project's stores."""

    interpreter = find_mlflow_python(python)
    report: dict[str, Any] = {
        "tracking_uri": redact_url(tracking_uri),
        "models": [],
        "versions": [],
        "aliases": [],
        "skipped": [],
    }
    with tempfile.TemporaryDirectory(prefix="dmv-mlflow-") as tmp:
        if progress:
            progress("reading the MLflow registry", 0, None)
        dump = _dump(interpreter, tracking_uri, model, Path(tmp))
        report["mlflow"] = dump.get("mlflow")
        total = sum(len(m["versions"]) for m in dump["models"])
        seen = [0]

        def tick() -> None:
            if progress:
                progress("importing versions", seen[0], total)
            seen[0] += 1

        for m in dump["models"]:
            _check_paths(m, Path(tmp))
            _import_model(stores, m, report, tick)
        if progress:
            progress("importing versions", total, total)
    return report


def _check_paths(m: dict[str, Any], folder: Path) -> None:
    """Every file the worker names lies in the folder it was given."""
    root = folder.resolve()
    for mv in m.get("versions") or []:
        for rel, f in (mv.get("files") or {}).items():
            if not Path(f["path"]).resolve().is_relative_to(root):
                raise IntegrityError(
                    f"MLflow's worker named a file outside its folder: {rel!r}",
                    hint="the MLflow environment is not the one dmv expects: reinstall it and "
                    "run the import again",
                )


def _import_model(
    stores: Stores, m: dict[str, Any], report: dict[str, Any], tick: Callable[[], None]
) -> None:
    name = dmv_name(m["name"])
    reg = stores.registry
    reg.create_model(
        name,
        description=m.get("description") or f"imported from MLflow {m['name']!r}",
        exist_ok=True,
    )
    report["models"].append({"mlflow": m["name"], "model": name})
    uri = report["tracking_uri"]
    existing = reg.list_versions(name)
    done = {}
    for v in existing:
        if v.meta is None and v.version.data == DATA_ID:  # listings may leave meta out
            v = reg.resolve(Reference.exact(v.version))
        origin = (v.meta or {}).get("origin") or {}
        if origin.get("system") == "mlflow" and origin.get("name") == m["name"]:
            done[int(origin["version"])] = v.version
    # Y per interface fingerprint, Z per (Y, logic fingerprint): what is known already first.
    ys: dict[str | None, int] = {}
    zs: dict[tuple[int, str | None], int] = {}
    for v in existing:
        ys.setdefault(v.interface_fp, v.version.y)
        zs.setdefault((v.version.y, v.logic_fp), v.version.z)
    for mv in m["versions"]:
        tick()
        number = int(mv["version"])
        label = f"{m['name']} v{number}"
        if number in done:
            report["versions"].append(
                {"mlflow": label, "version": done[number].number, "status": "already imported"}
            )
            continue
        if mv.get("status") not in (None, "READY"):
            report["skipped"].append(f"{label}: status {mv.get('status')}")
            continue
        version = _import_version(stores, name, m["name"], mv, uri, ys, zs)
        done[number] = version
        report["versions"].append(
            {"mlflow": label, "version": version.number, "status": "imported"}
        )
    for alias, number in sorted(m.get("aliases", {}).items()):
        target = done.get(int(number))
        if target is None:
            report["skipped"].append(f"alias {m['name']}@{alias}: version {number} not imported")
            continue
        try:
            reg.set_alias(Reference.exact(target), alias)
        except InvalidInput as exc:
            report["skipped"].append(f"alias {m['name']}@{alias}: {exc.message}")
            continue
        report["aliases"].append({"model": name, "alias": alias, "version": target.number})


def _import_version(
    stores: Stores,
    name: str,
    mlflow_name: str,
    mv: dict[str, Any],
    uri: str,
    ys: dict[str | None, int],
    zs: dict[tuple[int, str | None], int],
) -> Any:

    number = int(mv["version"])
    run = mv.get("run") or {}
    params = {str(k): v for k, v in (run.get("params") or {}).items()}
    mlmodel = mv.get("mlmodel") or {}
    iface = interface_from_signature(mlmodel.get("signature"))
    iface_fp = Interface.from_dict(iface).fingerprint if iface else None
    flavors = sorted((mlmodel.get("flavors") or {}).keys())
    classes = sorted(
        str(c.get("model_class", ""))
        for c in (mlmodel.get("flavors") or {}).values()
        if isinstance(c, dict)
    )
    logic = {
        "params": hyperparameters_fingerprint(params),
        "flavors": flavors,
        "classes": classes,
        "source": "mlflow",
    }
    logic_fp = hash_bytes(json.dumps(logic, sort_keys=True).encode())
    if iface_fp not in ys:
        ys[iface_fp] = max(ys.values(), default=-1) + 1
    y = ys[iface_fp]
    if (y, logic_fp) not in zs:
        zs[(y, logic_fp)] = max((z for (yy, _), z in zs.items() if yy == y), default=-1) + 1
    version = Version(name, 0, y, zs[(y, logic_fp)], DATA_ID, f"v{number}")

    store = stores.artifacts
    artifacts: list[NewArtifact] = []
    picked = _model_file(mlmodel, mv.get("files") or {})
    for rel, f in (mv.get("files") or {}).items():
        content = Path(f["path"]).read_bytes()
        if hashlib.sha256(content).hexdigest() != f["sha256"] or len(content) != f["size"]:
            raise IntegrityError(
                f"{mlflow_name} v{number}: {rel} changed while it was imported",
                hint="run the import again once nothing writes to the MLflow artifacts",
            )
        blob = store.put_bytes(content)
        if picked is not None and rel == picked[0]:
            meta = {**picked[1], "sha256": f["sha256"], "mlflow_path": rel}
            artifacts.append(NewArtifact("model", "model", blob.digest, blob.size, meta))
        artifacts.append(
            NewArtifact(f"mlflow/{rel}", "file", blob.digest, blob.size, {"sha256": f["sha256"]})
        )
    origin = {
        "system": "mlflow",
        "tracking_uri": uri,
        "name": mlflow_name,
        "version": number,
        "run_id": mv.get("run_id"),
        "source": redact(str(mv["source"])) if mv.get("source") else None,
        "mlflow_tags": mv.get("tags") or {},
        "aliases": mv.get("aliases") or [],
    }
    components: dict[str, Any] = {"logic": logic, "logic_fp": logic_fp, "meta": {"origin": origin}}
    if iface is not None:
        components.update(interface=iface, interface_fp=iface_fp)
    stores.registry.create_version(version, **components)
    started = (run.get("start_ms") or mv.get("created_ms") or time.time() * 1000) / 1000
    ended = (run.get("end_ms") or run.get("start_ms") or started * 1000) / 1000
    stores.registry.commit_run(
        NewRun(
            model=name,
            kind="training",
            params=params,
            metrics=_metrics(run.get("metrics") or {}),
            history=_history(run.get("history") or {}, time.time()),
            started_at=float(started),
            ended_at=float(ended),
            version=version,
            data=DATA_ID,
            split=f"v{number}",
            artifacts=artifacts,
            entry_point=f"mlflow run {mv.get('run_id')}" if mv.get("run_id") else None,
            meta={"origin": origin, "mlflow_run_tags": run.get("tags") or {}},
            interface=iface,
            interface_fp=iface_fp,
            logic=logic,
            logic_fp=logic_fp,
        )
    )
    return version
