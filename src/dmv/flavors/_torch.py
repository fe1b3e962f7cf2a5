"""PyTorch modules: as TorchScript, or as a state dict plus the module's class from stored code.

TorchScript loads without running Python code. A module that cannot be scripted
can be traced (``torch.jit.trace``) before it is logged, or logged with the code
that defines its class (``log_model(net, code=["models/net.py"])``): then dmv
stores ``torch.save(net.state_dict())`` (read back with ``weights_only=True``,
never unpickled), the class's import path and its constructor arguments as JSON,
and a server rebuilds the module from the stored code. Running that code needs
trust, as any stored code does.

Constructor arguments are read back from the module, the way scikit-learn reads
parameters: each argument of ``__init__`` is the attribute of the same name
(``self.hidden = hidden``); one that is missing must have a default.

Inputs are the frame's columns in order as one float32 tensor ``(rows,
columns)``, or, for a single array field, the arrays stacked.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
from collections.abc import Mapping
from typing import Any

from dmv.errors import InvalidInput, ModelUnavailable
from dmv.flavors._flavor import Flavor

#: The format of a state dict stored with the module's class from stored code.
STATE_DICT = "torch-state-dict"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelUnavailable(
            "this is a PyTorch model and torch is not installed",
            hint="pip install 'dmv[torch]' (torch==2.13.0, CPU)",
        ) from None
    return torch


class TorchFlavor(Flavor):
    name = "torch"
    format = "torchscript"

    def matches(self, obj: Any) -> bool:
        mro = [c.__module__.split(".")[0] for c in type(obj).__mro__]
        return "torch" in mro and callable(obj)

    def save(self, obj: Any, *, trust_pickle: bool) -> tuple[bytes, dict[str, Any]]:
        torch = _torch()
        scripted = obj
        if not isinstance(obj, torch.jit.ScriptModule):
            try:
                scripted = torch.jit.script(obj.eval())
            except Exception as exc:
                raise InvalidInput(
                    f"{type(obj).__name__} cannot be compiled to TorchScript: "
                    f"{str(exc).strip().splitlines()[0][:200]}",
                    hint="log torch.jit.trace(model, example) instead",
                ) from None
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        return buffer.getvalue(), {"torch": str(torch.__version__).split("+")[0]}

    def save_with_code(self, obj: Any, *, trust_pickle: bool) -> tuple[bytes, dict[str, Any]]:
        torch = _torch()
        if isinstance(obj, torch.jit.ScriptModule):
            return self.save(obj, trust_pickle=trust_pickle)
        cls = type(obj)
        if cls.__module__ == "__main__":
            raise InvalidInput(
                f"class {cls.__qualname__} is defined in __main__: a server cannot import it",
                hint="move it to a module (e.g. models/net.py) and pass code=['models/net.py'] "
                "to log_model",
            )
        if "<locals>" in cls.__qualname__:
            raise InvalidInput(
                f"class {cls.__qualname__} is defined inside a function: a server cannot import it",
                hint="define it at the top level of a module and pass that module in code=[...]",
            )
        if not trust_pickle:
            raise InvalidInput(
                f"rebuilding a {cls.__name__} runs its stored code, and this project does not "
                "trust stored code",
                hint='add trust = ["pickle"] to dmv.toml (or pass trust_pickle=True), or log '
                "torch.jit.script(model) instead: TorchScript runs no Python code",
            )
        buffer = io.BytesIO()
        torch.save(obj.state_dict(), buffer)
        meta = {
            "torch": str(torch.__version__).split("+")[0],
            "format": STATE_DICT,
            "unsafe": True,
            "module_class": f"{cls.__module__}.{cls.__qualname__}",
            "init_args": _init_args(obj),
        }
        return buffer.getvalue(), meta

    def load(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        torch = _torch()
        if meta.get("format") == STATE_DICT:
            return _rebuild(torch, data, meta)
        model = torch.jit.load(io.BytesIO(data), map_location="cpu")
        model.eval()
        return model

    def native_of(self, obj: Any, data: bytes) -> Any:
        torch = _torch()
        if isinstance(obj, torch.nn.Module) and not isinstance(obj, torch.jit.ScriptModule):
            try:
                torch.jit.load(io.BytesIO(data))
            except Exception:  # a state dict: the logged module itself answers
                return obj.eval()
        return self.load(data, {})

    def kinds(self, native: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
        return ("label",)

    def model_input(self, native: Any, meta: Mapping[str, Any], frame: Any) -> Any:
        import numpy as np

        if frame.shape[1] == 1 and str(frame.dtypes.iloc[0]) == "object":
            return np.asarray(frame.iloc[:, 0].tolist(), dtype=np.float32)
        return frame.to_numpy(dtype=np.float32)

    def compute(self, native: Any, meta: Mapping[str, Any], x: Any, kind: str) -> Any:
        import numpy as np

        torch = _torch()
        with torch.no_grad():
            out = native(torch.as_tensor(np.asarray(x, dtype=np.float32)))
        arr = out.detach().cpu().numpy()
        return arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr


def _init_args(obj: Any) -> dict[str, Any]:
    """The module's constructor arguments, read from its attributes, as JSON data."""
    cls = type(obj)
    out: dict[str, Any] = {}
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return out
    for name, param in list(params.items())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name not in vars(obj) and not hasattr(obj, name):
            if param.default is param.empty:
                raise InvalidInput(
                    f"{cls.__name__}.__init__ takes {name!r}, and the module keeps no attribute "
                    f"of that name to rebuild it from",
                    hint=f"store it in __init__ (self.{name} = {name}), as scikit-learn "
                    "estimators do, or give it a default",
                )
            continue
        value = getattr(obj, name)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"{cls.__name__}'s constructor argument {name!r} is a "
                f"{type(value).__name__}, which is not JSON data",
                hint="constructor arguments are stored as JSON: numbers, text, lists, objects",
            ) from None
        out[name] = value
    return out


def _rebuild(torch: Any, data: bytes, meta: Mapping[str, Any]) -> Any:
    """The module from its stored class and constructor arguments, its weights loaded."""
    path = str(meta.get("module_class") or "")
    module_name, _, qualname = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        cls: Any = module
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(
            f"the module's class {path} comes from {exc.name!r}, which is neither installed "
            "here nor stored with the version",
            hint=f"log it with code=['{module_name.replace('.', '/')}.py']",
        ) from None
    except AttributeError:
        raise ModelUnavailable(
            f"the stored code defines no class {path}",
            hint="log the module again with the code that defines its class",
        ) from None
    model = cls(**dict(meta.get("init_args") or {}))
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


FLAVOR = TorchFlavor()
