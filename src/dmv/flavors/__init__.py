"""Model kinds ("flavors"): how each kind of model is saved, loaded and asked to predict.

Every flavor stores a model as one file in a format of its own and answers the
same small interface (:class:`Flavor`): ``save`` an object, ``load`` the file
back, and compute each of its *outputs* on a frame. :class:`Model` wraps a loaded
model for everyone who runs it (``Project.load_model``, the server, the
servability check): rows become the training frame (:mod:`dmv.flavors._frame`),
the chosen outputs become one ``{field: value}`` dict per row.

Flavors and their formats:

==========  ===========================================  ==============
flavor      format                                       runs code?
==========  ===========================================  ==============
sklearn     skops (types checked against an allow-list)  no
lightgbm    LightGBM's model text                        no
xgboost     XGBoost's JSON                               no
torch       TorchScript                                  no
onnx        ONNX                                         no
python      pickle plus the stored code                  yes: trust
==========  ===========================================  ==============

A format that can run arbitrary code when loaded (pickle, a Python class from
the stored code) is *unsafe*: it is written only when the project trusts pickles
(``trust = ["pickle"]`` in ``dmv.toml``) and read only by callers that pass
``trust_pickle=True``. Heavy libraries are imported when a model of their kind is
saved or loaded, never by ``import dmv``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dmv.errors import (
    DmvError,
    IntegrityError,
    InvalidInput,
    ModelUnavailable,
    NonFiniteOutput,
    PredictionError,
    UntrustedModel,
)
from dmv.flavors import _lightgbm, _onnx, _python, _sklearn, _torch, _xgboost
from dmv.flavors._flavor import FastInput, Flavor
from dmv.flavors._frame import FrameSpec, build_frame, spec_from_frame, spec_from_interface
from dmv.flavors._onnx import ONNX_INSTALL_HINT
from dmv.flavors._sklearn import skops_types
from dmv.interface import Field, FieldType, Interface
from dmv.interface.inference import infer_series, numpy_type

__all__ = [
    "DEFAULT_OUTPUT",
    "ONNX_INSTALL_HINT",
    "SAFE_FORMATS",
    "Flavor",
    "Model",
    "flavor_named",
    "is_unsafe",
    "load",
    "native_of",
    "output_kinds",
    "pick_flavor",
    "skops_types",
    "spec_from_frame",
]

#: The output field's name for a model's answer (its label or value).
DEFAULT_OUTPUT = "prediction"
PROBA_OUTPUT = "probabilities"
TRUST_HINT = (
    "loading it can run arbitrary code: only if you trust everyone who can write to this "
    "registry, pass --trust-pickle (or trust_pickle=True)"
)
_KIND_ALIASES = {
    "label": "label",
    "prediction": "label",
    "predict": "label",
    "value": "label",
    "proba": "proba",
    "probabilities": "proba",
    "predict_proba": "proba",
}


def output_kinds(outputs: str | Sequence[str] | None, method: str | None) -> tuple[str, ...] | None:
    """``outputs=`` / ``method=`` of ``log_model`` as output kinds (None: the flavor's default).

    ``label`` (also ``prediction``, ``predict``) and ``proba`` (``probabilities``,
    ``predict_proba``) for classifiers; ONNX models name their outputs themselves.
    """
    chosen: list[str] = []
    if method is not None:
        chosen.append(method)
    if outputs is not None:
        chosen.extend([outputs] if isinstance(outputs, str) else list(outputs))
    if not chosen:
        return None
    kinds = []
    for item in chosen:
        if not isinstance(item, str) or not item:
            raise InvalidInput(
                f"outputs= takes output names, got {item!r}",
                hint="pass output names such as 'label' or 'proba'",
            )
        kinds.append(_KIND_ALIASES.get(item, item))
    if len(set(kinds)) != len(kinds):
        raise InvalidInput(
            f"outputs= names an output twice: {chosen}", hint="name each output once"
        )
    return tuple(kinds)


#: The (flavor, format) pairs whose loaders run no code of the file's own. Safety is
#: decided here, from the format, never from a stored flag: a registry row, a
#: restored backup or an imported registry cannot declare a pickle safe.
SAFE_FORMATS = frozenset(
    {
        ("sklearn", "skops"),
        ("lightgbm", "lightgbm-text"),
        ("xgboost", "xgboost-json"),
        ("torch", "torchscript"),
        ("onnx", "onnx"),
    }
)


def is_unsafe(meta: Mapping[str, Any]) -> bool:
    """Whether a stored model's file can run code when loaded.

    Unsafe unless its flavor and format are a pair in :data:`SAFE_FORMATS`; a stored
    ``"unsafe"`` flag can only make a model *more* guarded, never less.
    """
    pair = (str(meta.get("flavor", "pickle")), str(meta.get("format", "pickle")))
    return pair not in SAFE_FORMATS or meta.get("unsafe") is True


def _looks_pickled(data: bytes) -> bool:
    """A pickle's opening bytes (protocol 2 to 5), which no safe format starts with."""
    return len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5


def _flavors() -> list[Flavor]:
    # The specific kinds first: LightGBM and XGBoost models are scikit-learn estimators too.
    return [
        _onnx.FLAVOR,
        _torch.FLAVOR,
        _lightgbm.FLAVOR,
        _xgboost.FLAVOR,
        _sklearn.FLAVOR,
        _python.FLAVOR,
    ]


def flavor_named(name: str, meta: Mapping[str, Any] | None = None) -> Flavor:
    """The flavor that reads a stored model (records from before flavors included)."""
    meta = meta or {}
    if meta.get("format") == "pickle":
        return _python.FLAVOR
    for flavor in _flavors():
        if flavor.name == name:
            return flavor
    raise ModelUnavailable(
        f"the model is of kind {name!r}, which this dmv does not know",
        hint="upgrade dmv on this machine",
    )


def pick_flavor(obj: Any, format: str | None) -> Flavor:
    """The flavor that saves ``obj`` (``format='onnx'`` or ``'pickle'`` forces one)."""
    if format == "pickle":
        return _python.FLAVOR
    if format == "onnx":
        return _onnx.FLAVOR
    for flavor in _flavors():
        if flavor.matches(obj):
            return flavor
    raise InvalidInput(
        f"{type(obj).__name__} has no predict method",
        hint="log_model takes a fitted model (format='onnx' for an ONNX file); "
        "store other files with log_artifact",
    )


def native_of(flavor: Flavor, obj: Any, data: bytes) -> Any:
    """The in-process model the servability check compares the served answers with."""
    return flavor.native_of(obj, data)


def load(
    data: bytes,
    meta: Mapping[str, Any],
    *,
    what: str,
    trust_pickle: bool = False,
    interface: Interface | None = None,
) -> Model:
    """A stored model, ready to predict; unsafe formats only with ``trust_pickle``."""
    flavor = flavor_named(str(meta.get("flavor", "pickle")), meta)
    unsafe = is_unsafe(meta)
    if unsafe and not trust_pickle:
        raise UntrustedModel(
            f"{what} is stored as {meta.get('format', 'pickle')} "
            f"({meta.get('flavor', 'pickle')} flavor, unsafe-format): "
            "dmv does not load it without trust",
            hint=TRUST_HINT,
        )
    if not unsafe and _looks_pickled(data):
        raise IntegrityError(
            f"{what} is recorded as {meta.get('format')} but its file is a pickle",
            hint="the registry row or the file was altered: restore it from a backup, "
            "or run 'dmv fsck'",
        )
    try:
        native = flavor.load(data, meta)
    except DmvError:
        raise
    except Exception as exc:  # a damaged file, or one this library version cannot read
        raise ModelUnavailable(
            f"{what} cannot be loaded as a {flavor.name} model: {type(exc).__name__}: "
            f"{str(exc)[:300]}",
            hint="install the library version the model was trained with (dmv show lists it), or "
            "run 'dmv verify'",
        ) from None
    return Model(flavor, native, dict(meta), interface)


class Model:
    """A loaded model: rows in, one output dict per row out, as the version's interface says."""

    def __init__(
        self,
        flavor: Flavor,
        native: Any,
        meta: dict[str, Any],
        interface: Interface | None = None,
    ) -> None:
        self.flavor = flavor
        #: The library's own model object (a scikit-learn estimator, a Booster, …).
        self.native = native
        self.meta = meta
        self.interface = interface
        available = flavor.kinds(native, meta)
        recorded = meta.get("outputs")
        self.kinds: tuple[str, ...] = tuple(recorded) if recorded else available[:1]
        unknown = [k for k in self.kinds if k not in available]
        if unknown:
            raise InvalidInput(
                f"this {flavor.name} model has no output {unknown[0]!r}",
                hint=f"it serves {', '.join(available)}",
            )
        spec = meta.get("frame")
        self.spec: FrameSpec | None = (
            FrameSpec.from_list(spec)
            if spec
            else spec_from_interface(interface)
            if interface is not None and interface.inputs
            else None
        )
        self.output_names = self._names(interface)
        self.keyed = self._keyed(interface)

    def __repr__(self) -> str:
        return f"<dmv Model {self.flavor.name} outputs={list(self.output_names)}>"

    @property
    def unsafe(self) -> bool:
        return is_unsafe(self.meta)

    @property
    def predict_proba(self) -> Any:
        return self._proba

    def _proba(self, x: Any) -> Any:
        return self.flavor.compute(self.native, self.meta, self._input(x), "proba")

    def _names(self, iface: Interface | None) -> tuple[str, ...]:
        declared = tuple(f.name for f in iface.outputs) if iface and iface.outputs else ()
        recorded = tuple(self.meta.get("output_names") or ())
        if self.flavor.name == "onnx":  # an ONNX model names its outputs itself
            default = self.kinds if len(self.kinds) > 1 else (DEFAULT_OUTPUT,)
        else:
            default = tuple(
                PROBA_OUTPUT if k == "proba" else DEFAULT_OUTPUT if k == "label" else k
                for k in self.kinds
            )
        # The version's interface says what is served; with several outputs for one
        # answer, each is a column of it (a frame, or a 2-D array).
        if declared and (len(declared) == len(self.kinds) or len(self.kinds) == 1):
            return declared
        if recorded and len(recorded) == len(self.kinds):
            return recorded
        return recorded or default

    def use_interface(self, iface: Interface | None) -> None:
        """Serve as the version's interface says (its output names, keyed outputs)."""
        self.interface = iface
        self.output_names = self._names(iface)
        self.keyed = self._keyed(iface)

    def _keyed(self, iface: Interface | None) -> dict[str, tuple[str, ...]]:
        """The outputs served as objects keyed by class name, with their keys in order.

        A version's interface decides (a map field is keyed, an array is not: versions
        logged before probabilities were keyed keep their arrays); without one, class
        probabilities are keyed by the model's classes.
        """
        declared = {f.name: f for f in iface.outputs} if iface is not None else {}
        classes = self.meta.get("classes")
        proba = set(self.meta.get("proba_outputs") or ())
        out: dict[str, tuple[str, ...]] = {}
        for name, kind in zip(self.output_names, self.kinds, strict=False):
            f = declared.get(name)
            if f is not None:
                if f.type.value == "map":
                    out[name] = f.keys
            elif (kind == "proba" or kind in proba) and classes:
                out[name] = tuple(str(c) for c in classes)
        return out

    # -- inputs ---------------------------------------------------------------

    def frame(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        """JSON rows as the frame the model was trained on (or one tensor field, stacked)."""
        tensor = self._tensor_field()
        if tensor is not None:
            import numpy as np

            return np.asarray([r.get(tensor) for r in rows])
        if self.spec is not None:
            return build_frame(rows, self.spec)
        import pandas as pd

        return pd.DataFrame.from_records(list(rows))

    def _matrix_columns(self) -> tuple[str, ...] | None:
        """The columns, when the model takes a plain float matrix of them."""
        if not hasattr(self, "_matrix"):
            numeric = ("int", "float", "bool", "uint")
            spec = self.spec
            self._matrix: tuple[str, ...] | None = None
            if (
                self.flavor.name in ("sklearn", "python")
                and type(self.native).__module__.split(".")[0] == "sklearn"
                and getattr(self.native, "feature_names_in_", None) is None
                and spec is not None
                and all(c.dtype.startswith(numeric) for c in spec.columns)
                and self._tensor_field() is None
            ):
                self._matrix = spec.names
        return self._matrix

    def _tensor_field(self) -> str | None:
        iface = self.interface
        if self.meta.get("frame") or iface is None or len(iface.inputs) != 1:
            return None
        only = iface.inputs[0]
        return only.name if only.type.value == "array" else None

    def _input(self, x: Any) -> Any:
        if isinstance(x, list) and (not x or isinstance(x[0], Mapping)):
            names = self._matrix_columns()
            if names is not None:  # fitted on a float matrix: skip the frame
                import numpy as np

                return np.asarray([[r.get(n) for n in names] for r in x], dtype=float)
            x = self.frame(x)
        if hasattr(x, "columns"):
            return self.flavor.model_input(self.native, self.meta, x)
        return x

    # -- outputs --------------------------------------------------------------

    def columns(self, x: Any) -> list[Any]:
        """Each chosen output on ``x`` (rows, a frame or an array), as arrays."""
        import numpy as np

        data = self._input(x)
        values = self.flavor.compute_all(self.native, self.meta, data, self.kinds)
        return [v if hasattr(v, "columns") else np.asarray(v) for v in values]

    def predict(self, x: Any) -> Any:
        """The first output as an array (what the library's own ``predict`` gives)."""
        return self.columns(x)[0]

    def predict_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The served answer: one ``{output field: value}`` dict per row."""
        return self.shape(self.columns(list(rows)), len(rows))

    def _fast_input(self) -> FastInput | None:
        if not hasattr(self, "_fast"):
            plan = None
            if self.spec is not None and self._tensor_field() is None:
                plan = self.flavor.fast_input(self.native, self.meta, self.spec)
            self._fast: FastInput | None = plan
        return self._fast

    @property
    def takes_columns(self) -> bool:
        """Whether :meth:`predict_columns` skips the frame for this model."""
        return self._fast_input() is not None

    def predict_columns(self, columns: Mapping[str, list[Any]], n: int) -> list[dict[str, Any]]:
        """:meth:`predict_rows` for ``n`` validated rows given as columns, without a frame.

        The answers are the frame path's, value for value (``tests/test_serving_fast``
        compares them for every flavor); a model that needs its frame gets it.
        """
        plan, spec = self._fast_input(), self.spec
        if plan is None or spec is None or not all(name in columns for name in spec.names):
            names = list(columns)
            table = zip(*columns.values(), strict=True)
            rows = [dict(zip(names, row, strict=True)) for row in table] if names else [{}] * n
            return self.predict_rows(rows)
        import numpy as np

        build, native = plan
        found = self.flavor.compute_all(native, self.meta, build(columns, n), self.kinds)
        return self.shape([v if hasattr(v, "columns") else np.asarray(v) for v in found], n)

    def shape(self, columns: list[Any], n: int) -> list[dict[str, Any]]:
        import numpy as np

        names = self.output_names
        if len(columns) == 1 and hasattr(columns[0], "columns"):  # a DataFrame answer
            frame = columns[0]
            for name in frame.columns:
                _check_finite(str(name), np.asarray(frame[name]))
            return [_plain_row(r) for r in frame.to_dict(orient="records")]
        if len(columns) == 1 and isinstance(columns[0], np.ndarray) and columns[0].ndim == 2:
            arr = columns[0]
            if len(names) > 1 and arr.shape[1] == len(names):
                columns = [arr[:, i] for i in range(arr.shape[1])]
        values = []
        for name, col in zip(names, columns, strict=False):
            arr = np.asarray(col)
            if arr.ndim == 0:
                arr = arr.reshape(1)
            if len(arr) != n:
                raise PredictionError(
                    f"the model returned {len(arr)} rows for {n} inputs",
                    hint="the model's predict must return one answer per input row",
                )
            _check_finite(name, arr)
            keys = self.keyed.get(name)
            if keys is not None:
                if arr.ndim != 2 or arr.shape[1] != len(keys):
                    raise PredictionError(
                        f"output {name!r} has {arr.shape[1:] or 'no'} columns per row; "
                        f"its interface keys it by {len(keys)} classes {list(keys)}",
                        hint="log the model with an interface whose outputs match what its "
                        "predict returns",
                    )
                values.append([dict(zip(keys, row, strict=True)) for row in _plain_list(arr)])
                continue
            values.append(_plain_list(arr))
        if len(values) != len(names):
            raise PredictionError(
                f"the model answered {len(values)} outputs; its interface names {len(names)}",
                hint="log the model with an interface whose outputs match what its predict returns",
            )
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]

    def output_fields(self, sample: Any) -> tuple[Field, ...]:
        """The interface's output fields, from what the model answers on ``sample``."""
        import numpy as np
        import pandas as pd

        fields: list[Field] = []
        columns = self.columns(sample)
        if len(columns) == 1 and hasattr(columns[0], "columns"):
            frame = columns[0]
            return tuple(infer_series(str(c), frame[c], "output") for c in frame.columns)
        classes = self.meta.get("classes")
        for name, kind, col in zip(self.output_names, self.kinds, columns, strict=False):
            arr = np.asarray(col)
            if arr.ndim <= 1:
                fields.append(infer_series(name, pd.Series(arr), "output"))
                continue
            items = numpy_type(arr.dtype)
            if items is None:
                raise InvalidInput(
                    f"output {name!r} of dtype {arr.dtype} has no dmv type",
                    hint="return numbers, booleans or text from the model's predict",
                )
            keys = self.keyed.get(name)
            if keys is not None and arr.ndim == 2 and arr.shape[1] == len(keys):
                fields.append(
                    Field(
                        name,
                        FieldType.MAP,
                        items=FieldType.FLOAT64 if arr.dtype.kind == "f" else items,
                        keys=keys,
                        description="class probabilities, keyed by class",
                    )
                )
                continue
            about = (
                f"class probabilities, in the order of the classes {classes}"
                if kind == "proba" and classes
                else ""
            )
            fields.append(
                Field(name, FieldType.ARRAY, items=items, shape=arr.shape[1:], description=about)
            )
        return tuple(fields)


def _check_finite(name: str, arr: Any) -> None:
    """Refuse an output holding NaN or an infinity (JSON has no such number)."""
    import numpy as np

    if arr.dtype.kind not in "fc":
        return
    finite = np.isfinite(arr)
    if finite.all():
        return
    row = int(np.argwhere(~finite)[0][0])
    value = arr[~finite].flat[0]
    raise NonFiniteOutput(
        f"the model answered {value} for output {name!r} of row {row}: not a finite number",
        hint="the inputs are likely outside what the model was trained on (e.g. an overflow); "
        "check that row's values, or clip the model's output in its own code",
        output=name,
        row=row,
    )


def _plain(value: Any) -> Any:
    """A prediction as JSON data: numpy values become Python ones, NaN becomes null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _plain_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in row.items()}


def _plain_list(arr: Any) -> list[Any]:
    values: list[Any] = arr.tolist()
    if arr.dtype.kind == "f":
        import numpy as np

        # tolist() gives Python floats at any depth: only non-finite ones need a look.
        if bool(np.isfinite(arr).all()):
            return values
        return [_plain(v) for v in values]
    if arr.dtype.kind == "c":
        return [_plain(v) for v in values]
    if arr.dtype.kind in "biu" or arr.dtype.kind == "U":
        return values
    return [_plain(v) for v in values]


@dataclass
class Saved:
    """What ``log_model`` stores: the file and its metadata."""

    data: bytes
    meta: dict[str, Any]
