"""ONNX models: stored as their serialized bytes, run through onnxruntime.

Neither ``onnx`` nor ``onnxruntime`` is imported until a model is logged or
loaded, so ``import dmv`` stays fast and both stay optional (``dmv[onnx]``).
A model is recognised by duck typing instead: an ``onnx.ModelProto`` is an
object of the ``onnx`` package that can serialize itself.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dmv.errors import ArtifactError, DmvError, InvalidInput
from dmv.flavors._flavor import Flavor

#: How to install what ONNX models need (onnxruntime).
ONNX_INSTALL_HINT = "pip install 'dmv[onnx]'"

__all__ = [
    "FLAVOR",
    "OnnxModel",
    "available",
    "is_onnx_model",
    "load",
    "model_bytes",
]


# ONNX tensor element types as numpy dtypes (names, so numpy loads on first use).
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def available() -> bool:
    """Whether onnxruntime can be imported (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def is_onnx_model(obj: Any) -> bool:
    """Whether ``obj`` is an in-memory ONNX model: an ``onnx.ModelProto``, or one dmv loaded."""
    if isinstance(obj, OnnxModel):
        return True
    cls = type(obj)
    return cls.__module__.split(".")[0] == "onnx" and callable(
        getattr(obj, "SerializeToString", None)
    )


def model_bytes(model: Any) -> tuple[bytes, str | None]:
    """The serialized model and, for an object, its class: what ``log_model`` stores.

    ``model`` is an ``onnx.ModelProto``, the bytes of one, the path of a
    ``.onnx`` file, or a model :func:`load` returned.
    """
    if isinstance(model, OnnxModel):
        return model.data, None
    if is_onnx_model(model):
        cls = type(model)
        return bytes(model.SerializeToString()), f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(model, bytes | bytearray | memoryview):
        return bytes(model), None
    if isinstance(model, str | os.PathLike):
        path = Path(model)
        if not path.is_file():
            raise InvalidInput(
                f"no ONNX file at {os.fspath(model)!r}",
                hint="pass the path of an existing .onnx file, an onnx.ModelProto or its bytes",
            )
        return path.read_bytes(), None
    raise InvalidInput(
        f"{type(model).__name__} is not an ONNX model",
        hint="format='onnx' takes an onnx.ModelProto, its bytes or the path of a .onnx file",
    )


def load(data: bytes, what: str, *, invalid: type[DmvError] = ArtifactError) -> OnnxModel:
    """``data`` as a model with ``predict``; ``invalid`` is raised if it is not ONNX."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise DmvError(
            f"{what} is an ONNX model and onnxruntime is not installed", hint=ONNX_INSTALL_HINT
        ) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the library never prints
    try:
        # The CPU provider gives the same numbers wherever a version is served.
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        detail = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else ""
        raise invalid(
            f"{what} is not a model onnxruntime can load: {type(exc).__name__}: {detail}"
        ) from None
    return OnnxModel(session, data)


class OnnxModel:
    """An ONNX model behind the ``predict`` method scikit-learn models have.

    ``predict`` takes a 2-D array (or anything ``numpy.asarray`` takes), a
    DataFrame, or a list of ``{field: value}`` rows, and returns the model's
    first output with one value per row. A model with one input tensor gets all
    columns in order, cast to the tensor's type; a model with one input per
    column (a skl2onnx pipeline over a frame) gets each column by name.
    """

    def __init__(self, session: Any, data: bytes) -> None:
        self.session = session
        #: The serialized model, as stored: logging it again stores the same file.
        self.data = data
        self.inputs = [(i.name, _DTYPES.get(i.type, "float32")) for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    def __repr__(self) -> str:
        names = ", ".join(name for name, _ in self.inputs)
        return f"<OnnxModel inputs=({names}) outputs=({', '.join(self.output_names)})>"

    def predict(self, rows: Any) -> Any:
        import numpy as np

        result = self.session.run(self.output_names[:1], self.feeds(rows))[0]
        out = np.asarray(result)
        # Regressors answer (n, 1); scikit-learn's predict answers (n,).
        return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out

    def feeds(self, rows: Any) -> dict[str, Any]:
        """The session's input tensors for ``rows``."""
        import numpy as np

        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            import pandas as pd

            rows = pd.DataFrame.from_records(rows)
        columns = getattr(rows, "columns", None)
        if len(self.inputs) == 1:
            name, dtype = self.inputs[0]
            values = rows.to_numpy() if columns is not None else rows
            return {name: np.asarray(values, dtype=dtype)}
        if columns is None:
            raise InvalidInput(
                f"this ONNX model takes {len(self.inputs)} named inputs",
                hint=f"pass a DataFrame or rows with fields {[n for n, _ in self.inputs]}",
            )
        missing = [name for name, _ in self.inputs if name not in columns]
        if missing:
            raise InvalidInput(
                f"the ONNX model's inputs {missing} are missing from the rows",
                hint=f"send every input the ONNX model declares: {[n for n, _ in self.inputs]}",
            )
        return {
            name: np.asarray(rows[name].to_numpy(), dtype=dtype).reshape(-1, 1)
            for name, dtype in self.inputs
        }

    def run(self, rows: Any, names: list[str]) -> list[Any]:
        """The outputs ``names``, each with one entry per row."""
        import numpy as np

        results = self.session.run(names, self.feeds(rows))
        out = []
        for result in results:
            if isinstance(result, list) and result and isinstance(result[0], dict):
                # A sequence of maps (skl2onnx's ZipMap): one row of class scores each.
                keys = list(result[0])
                out.append(np.asarray([[m[k] for k in keys] for m in result], dtype=float))
                continue
            arr = np.asarray(result)
            out.append(arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr)
        return out


class OnnxFlavor(Flavor):
    name = "onnx"
    format = "onnx"

    def matches(self, obj: Any) -> bool:
        return is_onnx_model(obj)

    def save(self, obj: Any, *, trust_pickle: bool) -> tuple[bytes, dict[str, Any]]:
        data, cls = model_bytes(obj)
        # Loading checks the file now rather than when it is first served; without
        # onnxruntime it is stored unchecked (and the interface cannot be inferred).
        if available():
            load(data, "the ONNX model", invalid=InvalidInput)
        meta: dict[str, Any] = {"class": cls} if cls else {}
        meta.update(_class_outputs(data))
        return data, meta

    def native_of(self, obj: Any, data: bytes) -> Any:
        return load(data, "the ONNX model", invalid=InvalidInput) if available() else None

    def load(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        return load(data, "the stored ONNX model")

    def kinds(self, native: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(native.output_names)

    def model_input(self, native: Any, meta: Mapping[str, Any], frame: Any) -> Any:
        return frame

    def compute_all(
        self, native: Any, meta: Mapping[str, Any], x: Any, kinds: tuple[str, ...]
    ) -> list[Any]:
        return list(native.run(x, list(kinds)))


#: ONNX-ML operators that classify: their second output is the class scores.
_CLASSIFIERS = frozenset(
    {"LinearClassifier", "TreeEnsembleClassifier", "SVMClassifier", "TreeEnsemble"}
)


def _class_outputs(data: bytes) -> dict[str, Any]:
    """``classes`` and the graph outputs that are class probabilities, when the graph says.

    A classifier operator (skl2onnx's converters, onnxmltools') names its classes in
    ``classlabels_strings`` / ``classlabels_ints``; the graph output fed by its
    scores (directly, or through a ``Normalizer``, a ``Cast`` or a ``ZipMap``) is
    served keyed by those classes. Without the ``onnx`` package nothing is found
    and the output stays an array.
    """
    try:
        import onnx
    except ImportError:
        return {}
    try:
        graph = onnx.load_from_string(data).graph
    except Exception:  # onnxruntime already vetted the file; this is only a hint
        return {}
    classes: list[Any] | None = None
    scores: set[str] = set()
    for node in graph.node:
        if node.op_type not in _CLASSIFIERS or node.domain != "ai.onnx.ml":
            continue
        for attr in node.attribute:
            if attr.name == "classlabels_strings" and attr.strings:
                classes = [b.decode("utf-8") for b in attr.strings]
            elif attr.name in ("classlabels_ints", "classlabels_int64s") and attr.ints:
                classes = [int(i) for i in attr.ints]
        if classes is not None and len(node.output) > 1:
            scores.add(node.output[1])
    if not classes or not scores:
        return {}
    passes = {"Normalizer", "Cast", "ZipMap", "Identity", "Softmax"}
    changed = True
    while changed:  # follow the scores through operators that keep one column per class
        changed = False
        for node in graph.node:
            if node.op_type in passes and node.input and node.input[0] in scores:
                fresh = set(node.output) - scores
                if fresh:
                    scores |= fresh
                    changed = True
    found = [o.name for o in graph.output if o.name in scores]
    return {"classes": classes, "proba_outputs": found} if found else {}


FLAVOR = OnnxFlavor()
