"""Evaluate a version's model on another stored split: metrics on the same rows.

Two versions' metrics say something only when they were measured on the same
rows. :func:`evaluate` reads a stored split's part (proven intact first: the
verified read), has the version's serving model answer it in a fresh process
through its own flavor (the servability check's child, as a server would load
it), and computes the model's primary metric, the standard metrics of its
function and, optionally, a user-defined one. The result is recorded as an
*evaluation of that version on that split*, never as a training run: the version,
its runs and which run it serves do not change.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dmv.artifacts import Blob
from dmv.errors import DataError, InvalidInput, NotFound, PredictionError, UntrustedModel
from dmv.flavors import TRUST_HINT, is_unsafe
from dmv.flavors._frame import json_rows
from dmv.flavors.check import run_check
from dmv.flavors.stored import stored_code
from dmv.interface import Interface
from dmv.registry.reviews import EvaluationRecord
from dmv.release.serving_run import selected_run

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.registry import ModelInfo, VersionInfo
    from dmv.stores import Stores

__all__ = ["evaluate", "load_metric", "measurements", "standard_metrics"]

#: Candidate names of the target column when the model recorded none.
_TARGET_NAMES = ("target", "label", "y")


def load_metric(path: str) -> Callable[[Sequence[Any], Sequence[Any]], float]:
    """The metric function ``module:function`` (called ``fn(y_true, y_pred)``)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr or not all(p.isidentifier() for p in attr.split(".")):
        raise InvalidInput(
            f"{path!r} is not a metric function path",
            hint="give it as module:function, e.g. sklearn.metrics:mean_absolute_error",
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            f"cannot import the metric {path!r}: {exc}",
            hint="the module must be importable from the project folder or the environment",
        ) from None
    if not callable(obj):
        raise InvalidInput(f"{path!r} is not callable", hint="name a function(y_true, y_pred)")
    fn: Callable[[Sequence[Any], Sequence[Any]], float] = obj
    return fn


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def standard_metrics(
    function: str, y_true: Sequence[Any], y_pred: Sequence[Any]
) -> dict[str, float]:
    """The standard metrics of a model's function: regression (rmse, mae, r2) or
    classification (accuracy); guessed from the values when the function is not said."""
    n = len(y_true)
    if n == 0:
        return {}
    numeric = all(_is_number(v) for v in (*y_true, *y_pred))
    kind = function.lower()
    regression = "regress" in kind or (numeric and "class" not in kind)
    if regression and numeric:
        t = [float(v) for v in y_true]
        p = [float(v) for v in y_pred]
        errors = [a - b for a, b in zip(p, t, strict=True)]
        mse = sum(e * e for e in errors) / n
        mean = sum(t) / n
        total = sum((v - mean) ** 2 for v in t)
        out = {"rmse": math.sqrt(mse), "mae": sum(abs(e) for e in errors) / n, "mse": mse}
        if total > 0:
            out["r2"] = 1.0 - mse * n / total
        return out
    hits = sum(1 for a, b in zip(y_true, y_pred, strict=True) if str(a) == str(b))
    return {"accuracy": hits / n}


def _prediction(answer: Any) -> Any:
    """One served answer as a single value: a one-field object is its field."""
    if isinstance(answer, Mapping):
        for key in ("prediction", "label", "value"):
            if key in answer:
                return answer[key]
        if len(answer) == 1:
            return next(iter(answer.values()))
    if isinstance(answer, list) and len(answer) == 1:
        return answer[0]
    return answer


def _target(
    columns: Sequence[str], inputs: Sequence[str], recorded: str | None, given: str | None
) -> str:
    """The target column: given, else recorded with the run, else the one non-input column
    named like a target."""
    for name in (given, recorded):
        if name:
            if name not in columns:
                raise DataError(
                    f"the part has no column {name!r}",
                    hint=f"its columns: {', '.join(columns)}",
                )
            return name
    rest = [c for c in columns if c not in set(inputs)]
    for name in _TARGET_NAMES:
        if name in rest:
            return name
    raise InvalidInput(
        "cannot tell which column holds the target",
        hint="name it with --target COLUMN (columns besides the inputs: "
        + (", ".join(rest) or "none")
        + ")",
    )


def evaluate(
    stores: Stores,
    data: ProjectData,
    info: VersionInfo,
    model: ModelInfo,
    *,
    on_data: str,
    on_split: str,
    part: str = "test",
    target: str | None = None,
    metric: str | None = None,
    trust_pickle: bool = False,
) -> EvaluationRecord:
    """Measure ``info``'s serving model on ``on_data.on_split``'s ``part``; record it."""
    run = selected_run(stores.registry, info)
    if run is None:
        raise NotFound(
            f"{info.version} has no finished training run to evaluate",
            hint="train it first",
        )
    art = next((a for a in run.artifacts if a.kind == "model"), None)
    if art is None:
        raise NotFound(
            f"{info.version} {run.id} logged no model",
            hint="log one with run.log_model(model, sample_input=…)",
        )
    meta = dict(art.meta or {})
    if is_unsafe(meta) and not trust_pickle:
        raise UntrustedModel(
            f"{info.version} is stored as {meta.get('format', 'pickle')}, which can run code "
            "when loaded; it was not loaded",
            hint=TRUST_HINT,
        )
    fn = load_metric(metric) if metric else None
    frame = data.read_part(info.name, f"{on_data}.{on_split}", part)
    interface = Interface.from_dict(info.interface) if info.interface else None
    columns = [str(c) for c in frame.columns]
    inputs = [f.name for f in interface.inputs] if interface else []
    missing = [name for name in inputs if name not in columns]
    if missing:
        raise DataError(
            f"{on_data}.{on_split}/{part} lacks the inputs {', '.join(missing)} of {info.version}",
            hint="evaluate it on a split retrieved with those columns",
        )
    recorded = (run.params or {}).get("target")
    column = _target(columns, inputs, recorded if isinstance(recorded, str) else None, target)
    if not inputs:
        inputs = [c for c in columns if c != column]
    what = f"{info.version} {run.id} {art.name}"
    blob = stores.artifacts.get_bytes(Blob(art.digest, art.size), what=what)
    code = stored_code(stores.artifacts, meta, what)
    rows = json_rows(frame[inputs])
    answer = run_check(blob, meta, code, rows, interface=info.interface, trust_pickle=trust_pickle)
    if not answer.get("ok"):
        raise PredictionError(
            f"{info.version} could not answer {on_data}.{on_split}/{part}: {answer.get('error')}",
            hint=answer.get("hint") or f"'dmv verify {info.version.ref}' checks its model",
        )
    outputs = answer.get("outputs") or []
    y_pred = [_prediction(o) for o in outputs]
    y_true = [v for v in frame[column].astype(object).tolist()]
    if len(y_pred) != len(y_true):
        raise PredictionError(
            f"{info.version} answered {len(y_pred)} of {len(y_true)} rows",
            hint=f"'dmv verify {info.version.ref}' checks its model",
        )
    metrics = standard_metrics(model.function, y_true, y_pred)
    if fn is not None:
        try:
            metrics[metric or "custom"] = float(fn(y_true, y_pred))
        except Exception as exc:
            raise InvalidInput(
                f"the metric {metric!r} failed: {type(exc).__name__}: {exc}",
                hint="it is called as fn(y_true, y_pred) with two lists",
            ) from None
    metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
    record = EvaluationRecord(
        info.version,
        run.id,
        on_data,
        on_split,
        part,
        column,
        len(y_true),
        metrics,
        "",  # the registry records who
        time.time(),
        {"seconds": answer.get("seconds"), "metric_function": metric},
    )
    return stores.registry.add_evaluation(record)


def measurements(
    registry_runs_metrics: Mapping[str, Mapping[str, float]] | None,
    own: tuple[str, str] | None,
    evaluations: Sequence[EvaluationRecord],
) -> dict[str, dict[str, float]]:
    """Where a version was measured, ``{"DATA.SPLIT/part": {metric: value}}``: its serving
    run's metrics on its own split's parts, then its evaluations (the newest wins)."""
    out: dict[str, dict[str, float]] = {}
    if own is not None:
        for part, values in (registry_runs_metrics or {}).items():
            out[f"{own[0]}.{own[1]}/{part}"] = {k: float(v) for k, v in values.items()}
    for e in evaluations:
        out.setdefault(e.on, {}).update(e.metrics)
    return out
