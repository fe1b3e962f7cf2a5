"""PyTorch modules as TorchScript: a format that loads without running Python code.

A module that cannot be scripted can be traced (``torch.jit.trace``) before it is
logged. Inputs are the frame's columns in order as one float32 tensor
``(rows, columns)``, or, for a single array field, the arrays stacked.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from dmv.errors import InvalidInput
from dmv.flavors import Flavor, ModelLoadError


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelLoadError(
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

    def load(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        torch = _torch()
        model = torch.jit.load(io.BytesIO(data), map_location="cpu")
        model.eval()
        return model

    def native_of(self, obj: Any, data: bytes) -> Any:
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


FLAVOR = TorchFlavor()
