"""Model classes the serving tests log: importable by the test process and by the
``dmv serve`` processes the tests start (``tests`` on their ``PYTHONPATH``)."""

from __future__ import annotations

from typing import Any

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class Picky:
    """Predicts 1 for every row, and raises the model's own error on a negative width."""

    def predict(self, frame: Any) -> Any:
        import numpy as np

        if (frame["petal_width"] < 0).any():
            raise ValueError("petal_width must not be negative for this model")
        return np.ones(len(frame), dtype=np.int64)


class TwoOutputs:
    """A classifier serving two named outputs: the label and its probability."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, frame: Any) -> Any:
        import pandas as pd

        x = frame[FEATURES].to_numpy(dtype=float)
        proba = self.model.predict_proba(x)
        return pd.DataFrame({"label": proba.argmax(axis=1), "score": proba.max(axis=1)})


class Threshold:
    """A plain Python churn model: "churn" when the spend is under its threshold."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def predict(self, frame: Any) -> Any:
        import numpy as np

        return np.where(frame["spend"].to_numpy() < self.threshold, "churn", "stay")
