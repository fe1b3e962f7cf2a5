"""Export a version as an MLflow model directory (``dmv export REF --format mlflow DIR``).

The directory is what ``mlflow.<flavor>.save_model`` writes, so every tool that
reads MLflow's model format (``mlflow models serve``, MLServer, BentoML,
SageMaker, Databricks) takes it:

- ``MLmodel`` with the ``python_function`` flavor, plus the native flavor where
  MLflow has one for the stored file (sklearn as skops, lightgbm, xgboost,
  pytorch, onnx);
- the signature, from the version's interface; an input example, from the sample
  the servability check recorded; pinned requirements, from the environment the
  run recorded;
- ``metadata.dmv``: the full version, its fingerprints, its lineage, and the
  serving run's metrics with their history (``metric_history``: every step).

The ``python_function`` flavor loads through a copy of dmv's own model code
(``code/dmv``, standard library only, plus ``code/dmv_pyfunc.py``), so MLflow
serves the same answers as ``dmv serve``, output names included. dmv never
imports MLflow to write any of this.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv._meta import __file__ as dmv_init
from dmv.artifacts import Blob
from dmv.errors import InvalidInput, NotFound, UntrustedModel
from dmv.flavors import TRUST_HINT, is_unsafe, skops_types
from dmv.flavors.check import write_code
from dmv.flavors.stored import stored_code
from dmv.interface import Interface

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.integrations.about import About
    from dmv.interface import Field, Interface

__all__ = ["export_mlflow", "mlflow_flavor", "mlflow_signature"]

#: dmv's own modules the exported loader needs: pure Python, no third-party imports.
_VENDORED = (
    "__init__.py",
    "_meta.py",
    "errors.py",
    "version.py",
    "reprs.py",
    "interface/__init__.py",
    "interface/decoder.py",
    "interface/fields.py",
    "interface/model.py",
    "interface/diff.py",
    "interface/jsonschema.py",
    "interface/openapi.py",
    "interface/proto.py",
    "interface/inference.py",
    "interface/annotations.py",
    "interface/validate.py",
    "flavors/__init__.py",
    "flavors/_flavor.py",
    "flavors/_frame.py",
    "flavors/_trees.py",
    "flavors/_sklearn.py",
    "flavors/_lightgbm.py",
    "flavors/_xgboost.py",
    "flavors/_torch.py",
    "flavors/_onnx.py",
    "flavors/_python.py",
)

#: The libraries each flavor needs at serving time (distribution names).
_FLAVOR_LIBS = {
    "sklearn": ("scikit-learn", "skops", "scipy"),
    "lightgbm": ("lightgbm",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "torch": ("torch",),
    "onnx": ("onnxruntime",),
    "python": ("cloudpickle",),
}
_COMMON_LIBS = ("numpy", "pandas")

_MLFLOW_TYPES = {
    "bool": "boolean",
    "int32": "integer",
    "int64": "long",
    "float32": "float",
    "float64": "double",
    "string": "string",
    "binary": "binary",
    "datetime": "datetime",
}


def mlflow_flavor(meta: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """The MLflow native flavor a stored model maps to: (flavor, file name, its conf).

    None when MLflow has no flavor that reads dmv's file as it is (a pickled
    ``python`` model: MLflow's pyfunc flavor still serves it).
    """
    flavor, fmt = meta.get("flavor"), meta.get("format")
    if flavor == "sklearn" and fmt == "skops":
        return "sklearn", "model.skops", {"serialization_format": "skops"}
    if flavor == "lightgbm":
        return "lightgbm", "model.lgb", {"model_class": "lightgbm.basic.Booster"}
    if flavor == "xgboost":
        wrapper = str(meta.get("wrapper") or "Booster")
        cls = "xgboost.core.Booster" if wrapper == "Booster" else f"xgboost.sklearn.{wrapper}"
        return "xgboost", "model.json", {"model_class": cls, "model_format": "json"}
    if flavor == "onnx":
        return "onnx", "model.onnx", {"providers": ["CPUExecutionProvider"]}
    if flavor == "torch" and fmt == "torchscript":
        # torch.load hands a TorchScript archive to torch.jit.load.
        return "pytorch", "data/model.pth", {}
    return None


def _colspec(f: Field) -> dict[str, Any]:
    kind = f.type.value
    spec: dict[str, Any]
    if kind == "enum":
        ints = all(isinstance(v, int) for v in f.values)
        spec = {"type": "long" if ints and f.values else "string"}
    elif kind == "array":
        inner: dict[str, Any] = {"type": _MLFLOW_TYPES[f.items.value if f.items else "float64"]}
        for _ in range(max(len(f.shape), 1)):
            inner = {"type": "array", "items": inner}
        spec = inner
    elif kind == "map":  # class probabilities: MLflow's map of string keys
        spec = {
            "type": "map",
            "values": {"type": _MLFLOW_TYPES[f.items.value if f.items else "float64"]},
        }
    else:
        spec = {"type": _MLFLOW_TYPES[kind]}
    spec["name"] = f.name
    spec["required"] = bool(f.required)
    return spec


def mlflow_signature(iface: Interface) -> dict[str, Any]:
    """The interface as MLflow's column-based signature (the MLmodel ``signature`` block)."""
    return {
        "inputs": json.dumps([_colspec(f) for f in iface.inputs]),
        "outputs": json.dumps([_colspec(f) for f in iface.outputs]) if iface.outputs else None,
        "params": None,
    }


def _requirements(env: dict[str, Any], flavor: str, logic: dict[str, Any]) -> list[str]:
    dists = {
        k.lower().replace("_", "-"): (k, v) for k, v in (env.get("distributions") or {}).items()
    }
    wanted = [*_COMMON_LIBS, *_FLAVOR_LIBS.get(flavor, ())]
    libs = (logic.get("libraries") or {}) if flavor == "python" else {}
    wanted += [str(name) for name in libs]
    out = ["mlflow>=3"]
    for name in dict.fromkeys(wanted):
        found = dists.get(name.lower().replace("_", "-"))
        if found is not None:
            out.append(f"{found[0]}=={found[1]}")
    return out


def _dump_yaml(data: Any, path: Path) -> None:
    import yaml  # type: ignore[import-untyped]

    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def export_mlflow(
    ab: About,
    store: ArtifactStore,
    out: str | os.PathLike[str],
    *,
    trust_pickle: bool,
    signature: bytes = b"",
) -> dict[str, Any]:
    """Write the MLflow model directory ``out`` (new or empty) for the version in ``ab``.

    ``signature``: the release's OpenSSF Model Signing bundle, written as ``model.sig``
    (``model_signing verify key … --ignore-paths DIR/model.sig DIR`` checks the folder).
    """

    info, art, run = ab.info, ab.model_artifact, ab.run
    if run is None or art is None:
        raise NotFound(
            f"{info.version} has no training run with a model to export",
            hint=f"list its runs with 'dmv runs {info.version}'; a version exports the model its "
            "serving run logged",
        )
    meta = dict(art.meta or {})
    if is_unsafe(meta) and not trust_pickle:
        raise UntrustedModel(
            f"{info.version} is stored as {meta.get('format', 'pickle')} (unsafe-format): "
            "the exported model would run its code wherever it is loaded",
            hint=TRUST_HINT,
        )
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"{target} exists and is not an empty folder", hint="name a new folder")
    what = f"{info.version} {run.id} {art.name}"
    data = store.get_bytes(Blob(art.digest, art.size), what=what)  # hash-checked
    code = stored_code(store, meta, what)

    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        files = _write(tmp, ab, data, meta, code, Path(dmv_init).parent, trust_pickle)
        if signature:
            (tmp / "model.sig").write_bytes(signature)
        if target.exists():
            target.rmdir()
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    iface = Interface.from_dict(info.interface) if info.interface else None
    return {
        "version": str(info.version),
        "run": run.id,
        "path": str(target.resolve()),
        "flavors": files["flavors"],
        "signature": iface is not None,
        "input_example": files["example"],
        "requirements": files["requirements"],
        "model_signature": str(target.resolve() / "model.sig") if signature else None,
    }


def _write(
    root: Path,
    ab: About,
    data: bytes,
    meta: dict[str, Any],
    code: dict[str, bytes],
    dmv_src: Path,
    trusted: bool,
) -> dict[str, Any]:
    import platform

    info, run = ab.info, ab.run
    assert run is not None
    env = run.environment or {}
    python = str((env.get("python") or {}).get("version") or platform.python_version())
    flavor = str(meta.get("flavor", "python"))

    # The python_function flavor: dmv's loader and the model file, under dmv/.
    code_dir = root / "code"
    for rel in _VENDORED:
        dest = code_dir / "dmv" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dmv_src / rel, dest)
    shutil.copyfile(Path(__file__).with_name("_pyfunc_loader.py"), code_dir / "dmv_pyfunc.py")
    data_dir = root / "dmv"
    data_dir.mkdir()
    (data_dir / "model.bin").write_bytes(data)
    if code:
        write_code(code, data_dir / "model_code")
    (data_dir / "dmv.json").write_text(
        json.dumps(
            {
                "version": str(info.version),
                "model_file": "model.bin",
                "meta": {k: v for k, v in meta.items() if k not in ("sample", "code")},
                "interface": info.interface,
                "code_roots": list(meta.get("code_roots") or ["."]) if code else [],
                "trusted": trusted,
            },
            indent=2,
        ),
        encoding="utf-8",
    )

    reqs = _requirements(env, flavor, info.logic or {})
    (root / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
    _dump_yaml(
        {"python": python, "build_dependencies": ["pip"], "dependencies": ["-r requirements.txt"]},
        root / "python_env.yaml",
    )
    _dump_yaml(
        {
            "name": "mlflow-env",
            "channels": ["conda-forge"],
            "dependencies": [f"python={python}", "pip", {"pip": reqs}],
        },
        root / "conda.yaml",
    )
    pyfunc: dict[str, Any] = {
        "loader_module": "dmv_pyfunc",
        "code": "code",
        "data": "dmv",
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        "python_version": python,
    }
    flavors: dict[str, Any] = {"python_function": pyfunc}
    native = mlflow_flavor(meta)
    if native is not None:
        name, file, conf = native
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        (root / file).write_bytes(data)
        dists = env.get("distributions") or {}
        if name == "sklearn":
            conf = {
                "pickled_model": file,
                "sklearn_version": dists.get("scikit-learn"),
                **conf,
                "skops_trusted_types": skops_types(data),
                "code": None,
            }
        elif name == "pytorch":
            conf = {"model_data": "data", "pytorch_version": dists.get("torch"), "code": None}
        else:
            lib = {"lightgbm": "lgb_version", "xgboost": "xgb_version", "onnx": "onnx_version"}
            dist = {"lightgbm": "lightgbm", "xgboost": "xgboost", "onnx": "onnx"}[name]
            conf = {"data": file, lib[name]: dists.get(dist), **conf, "code": None}
        flavors[name] = conf

    mlmodel: dict[str, Any] = {
        "flavors": flavors,
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()),
        "metadata": {"dmv": _metadata(ab)},
    }
    example = _input_example(root, meta)
    if example:
        mlmodel["saved_input_example_info"] = {
            "artifact_path": "input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
        }
    if info.interface:
        mlmodel["signature"] = mlflow_signature(Interface.from_dict(info.interface))
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    mlmodel["model_size_bytes"] = size
    _dump_yaml(mlmodel, root / "MLmodel")
    return {"flavors": list(flavors), "example": example, "requirements": reqs}


def _input_example(root: Path, meta: dict[str, Any]) -> bool:
    rows = (meta.get("sample") or {}).get("inputs") or []
    if not rows or not all(isinstance(r, dict) for r in rows):
        return False
    columns = list(dict.fromkeys(k for r in rows for k in r))
    split = {"columns": columns, "data": [[r.get(c) for c in columns] for r in rows]}
    (root / "input_example.json").write_text(json.dumps(split), encoding="utf-8")
    (root / "serving_input_example.json").write_text(
        json.dumps({"dataframe_split": split}, indent=2), encoding="utf-8"
    )
    return True


def _metadata(ab: About) -> dict[str, Any]:
    from importlib import metadata

    try:
        dmv_version = metadata.version("dmv")
    except metadata.PackageNotFoundError:
        dmv_version = "unknown"
    info = ab.info
    return {
        "dmv_version": dmv_version,
        "model": info.name,
        "version": info.version.number,
        "full_version": str(info.version),
        "ref": info.version.ref,
        "state": info.state,
        "interface_fp": info.interface_fp,
        "logic_fp": info.logic_fp,
        "purpose": ab.model.purpose,
        "function": ab.model.function,
        "metrics": ab.run.metrics if ab.run else {},
        # {split: {metric: [[step, value], …]}}: the run's learning curves
        "metric_history": ab.run.history if ab.run else {},
        "params": ab.run.params if ab.run else {},
        "lineage": ab.lineage(),
    }
