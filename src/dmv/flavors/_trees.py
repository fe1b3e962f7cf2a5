"""What LightGBM and XGBoost classifiers share: labels and probabilities from one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def proba_matrix(p: Any) -> Any:
    """Probabilities as ``(n, classes)``: a binary model answers P(class 1) alone."""
    import numpy as np

    arr = np.asarray(p, dtype=float)
    return np.column_stack([1.0 - arr, arr]) if arr.ndim == 1 else arr


def labels(meta: Mapping[str, Any], proba: Any) -> Any:
    import numpy as np

    classes = meta.get("classes")
    idx = np.asarray(proba).argmax(axis=1)
    return np.asarray(classes, dtype=object)[idx] if classes else idx


def both(meta: Mapping[str, Any], proba: Any, kinds: tuple[str, ...]) -> list[Any]:
    import numpy as np

    out = []
    for kind in kinds:
        if kind == "proba":
            out.append(proba)
        else:
            found = labels(meta, proba)
            out.append(np.asarray(found.tolist()) if found.dtype == object else found)
    return out
