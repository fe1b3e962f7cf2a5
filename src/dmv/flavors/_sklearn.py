"""scikit-learn estimators and pipelines, stored with skops instead of pickle.

skops reads a file without running code from it: every type the file names must
be trusted first. dmv trusts the types of an allow-list of libraries (scikit-learn,
numpy, scipy) and nothing else, at save time and again at load time, so a file
swapped in the store cannot smuggle in another type. An estimator holding other
types (a custom transformer, a function) needs the ``python`` flavor: pickle,
which a project must trust.
"""

from __future__ import annotations

import copy
import importlib.abc
import sys
import threading
from collections.abc import Mapping
from typing import Any

from dmv.errors import InvalidInput, ModelUnavailable
from dmv.flavors._flavor import FastInput, Flavor, all_numeric
from dmv.flavors._frame import FrameSpec, float_matrix

#: Libraries whose types a skops file may name.
TRUSTED_LIBRARIES = frozenset({"sklearn", "numpy", "scipy", "builtins", "collections"})


def untrusted(types: list[str]) -> list[str]:
    return [t for t in types if t.split(".", 1)[0] not in TRUSTED_LIBRARIES]


class _Unimportable(importlib.abc.MetaPathFinder):
    """Makes ``import NAME`` fail in one thread while a library is imported.

    skops imports every scikit-learn module to list the types it trusts, and one of
    them (scikit-learn's bundled array-API shim) imports PyTorch whenever it is
    installed: about a second of start-up for every process that loads a skops
    file, for a library no scikit-learn model needs. The shim is optional (it is
    skipped when PyTorch cannot be imported), so while skops is imported PyTorch is
    made unimportable, in the importing thread only: another thread that imports
    PyTorch meanwhile (a PyTorch model being loaded) is not affected, and nothing
    is cached, so a later ``import torch`` works as usual.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.thread = threading.get_ident()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if threading.get_ident() == self.thread and (
            fullname == self.name or fullname.startswith(self.name + ".")
        ):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _import_skops() -> Any:
    if "torch" not in sys.modules and "skops.io" not in sys.modules:
        hidden = _Unimportable("torch")
        sys.meta_path.insert(0, hidden)
        try:
            import skops.io as sio  # type: ignore[import-untyped]

            return sio
        except ImportError:
            pass  # whatever failed, the import below says it without the hiding
        finally:
            sys.meta_path.remove(hidden)
    import skops.io as sio

    return sio


def _skops() -> Any:
    try:
        return _import_skops()
    except ImportError:
        raise ModelUnavailable(
            "scikit-learn models are stored with skops, which is not installed",
            hint="pip install 'dmv[sklearn]'",
        ) from None


def skops_types(data: bytes) -> list[str]:
    """The types a stored skops file names that skops does not trust by default."""
    return list(_skops().get_untrusted_types(data=data))


class SklearnFlavor(Flavor):
    name = "sklearn"
    format = "skops"

    def matches(self, obj: Any) -> bool:
        return type(obj).__module__.split(".")[0] == "sklearn" and callable(
            getattr(obj, "predict", None)
        )

    def save(self, obj: Any, *, trust_pickle: bool) -> tuple[bytes, dict[str, Any]]:
        sio = _skops()
        data = bytes(sio.dumps(obj))
        foreign = untrusted(sio.get_untrusted_types(data=data))
        if foreign:
            raise InvalidInput(
                f"this {type(obj).__name__} holds types skops does not trust: "
                f"{', '.join(foreign[:5])}",
                hint='store it as pickle: add trust = ["pickle"] to dmv.toml, pass '
                "format='pickle' and code=[...] with the module that defines them",
            )
        return data, {"skops": getattr(sio, "__version__", "")}

    def load(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        sio = _skops()
        types = sio.get_untrusted_types(data=data)
        foreign = untrusted(types)
        if foreign:
            raise ModelUnavailable(
                f"the skops file names types outside scikit-learn, numpy and scipy: "
                f"{', '.join(foreign[:5])}; dmv does not load it",
                hint="a skops file dmv wrote never does: the stored file is not what was logged",
            )
        return sio.loads(data, trusted=types)

    def model_input(self, native: Any, meta: Mapping[str, Any], frame: Any) -> Any:
        # Fitted on an array: give it one (every column numeric, as it was trained).
        if getattr(native, "feature_names_in_", None) is None and all_numeric(frame):
            return frame.to_numpy(dtype=float)
        return frame

    def fast_input(self, native: Any, meta: Mapping[str, Any], spec: FrameSpec) -> FastInput | None:
        return sklearn_fast_input(native, spec)


_NUMERIC = ("int", "float", "bool", "uint")
# Steps that select or compute columns by name, or run the user's own function:
# they need the frame itself.
_NEEDS_FRAME = frozenset({"ColumnTransformer", "FunctionTransformer"})


def _estimators(native: Any) -> list[Any]:
    found = [native]
    get_params = getattr(native, "get_params", None)
    if callable(get_params):
        found += [v for v in get_params(deep=True).values() if hasattr(v, "get_params")]
    return found


def sklearn_fast_input(native: Any, spec: FrameSpec) -> FastInput | None:
    """A scikit-learn model's float matrix, when it answers exactly as on the frame.

    Fit on an array: the matrix is what it was trained on. Fit on a DataFrame of
    float64 columns: scikit-learn turns that frame into the same float64 matrix
    (column-major, as the frame's block is) after checking its column names; a
    copy of the model without the recorded names takes the matrix directly, and
    no "X does not have valid feature names" warning is raised. Anything else
    (other dtypes, a step that picks columns by name, pandas output) keeps the frame.
    """
    names = spec.names
    if not names:
        return None
    fitted_names = getattr(native, "feature_names_in_", None)
    if fitted_names is None:
        if not all(c.dtype.startswith(_NUMERIC) for c in spec.columns):
            return None
        return (lambda columns, n: float_matrix(columns, names, n)), native
    if [str(c) for c in fitted_names] != list(names):
        return None
    if not all(c.dtype == "float64" for c in spec.columns):
        return None
    parts = _estimators(native)
    for part in parts:
        if type(part).__module__.split(".")[0] != "sklearn":
            return None
        if type(part).__name__ in _NEEDS_FRAME:
            return None
        output = getattr(part, "_sklearn_output_config", None) or {}
        if output.get("transform", "default") != "default":
            return None
    stripped = copy.deepcopy(native)
    for part in _estimators(stripped):
        if "feature_names_in_" in vars(part):
            del part.feature_names_in_
    return (lambda columns, n: float_matrix(columns, names, n, order="F")), stripped


FLAVOR = SklearnFlavor()
