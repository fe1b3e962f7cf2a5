"""Any Python object with ``predict``: pickled, with its class's code stored alongside.

Unpickling runs code, so this flavor is *unsafe*: a project writes it only when
it trusts pickles, and dmv loads it only when the caller passes ``trust_pickle``.
Old versions' pickled scikit-learn models are read by this flavor too.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

from dmv.errors import InvalidInput, ModelUnavailable
from dmv.flavors._flavor import Flavor, all_numeric

PICKLE_HINT = 'add trust = ["pickle"] to dmv.toml (or pass trust_pickle=True to log_model)'


class PythonFlavor(Flavor):
    name = "python"
    format = "pickle"
    unsafe = True

    def matches(self, obj: Any) -> bool:
        return callable(getattr(obj, "predict", None))

    def save(self, obj: Any, *, trust_pickle: bool) -> tuple[bytes, dict[str, Any]]:
        cls = type(obj)
        if not trust_pickle:
            raise InvalidInput(
                f"a {cls.__name__} is stored as pickle, which can run arbitrary code when "
                "loaded, and this project does not trust pickles",
                hint=f"{PICKLE_HINT}; or log a model of a safe kind (scikit-learn, "
                "LightGBM, XGBoost, TorchScript, ONNX)",
            )
        if cls.__module__ == "__main__":
            raise InvalidInput(
                f"class {cls.__qualname__} is defined in __main__: a server cannot import it",
                hint="move it to a module and pass code=['that_module.py'] to log_model",
            )
        try:
            data = pickle.dumps(obj, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"the model cannot be pickled: {exc}",
                hint="define the model's class at the top level of a module and pass that module "
                "in code=[...]",
            ) from None
        return data, {"protocol": 5}

    def load(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        try:
            return pickle.loads(data)
        except ModuleNotFoundError as exc:
            raise ModelUnavailable(
                f"the model's class comes from the module {exc.name!r}, which is neither "
                "installed here nor stored with the version",
                hint=f"log it with code=['{(exc.name or 'module').replace('.', '/')}.py'] "
                "so its code is stored with the version",
            ) from None
        except AttributeError as exc:
            raise ModelUnavailable(
                f"the model's class cannot be found: {exc}",
                hint="define the class in a module (not __main__) and pass code=[...]",
            ) from None

    def kinds(self, native: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
        if meta.get("onnx_legacy"):
            return ("label",)
        return super().kinds(native, meta)

    def model_input(self, native: Any, meta: Mapping[str, Any], frame: Any) -> Any:
        if (
            type(native).__module__.split(".")[0] == "sklearn"
            and getattr(native, "feature_names_in_", None) is None
            and all_numeric(frame)
        ):
            return frame.to_numpy(dtype=float)
        return frame


FLAVOR = PythonFlavor()
