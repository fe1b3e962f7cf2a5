"""XGBoost models in XGBoost's JSON format (categorical features included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dmv.errors import ModelUnavailable
from dmv.flavors import _trees
from dmv.flavors._flavor import Flavor

_WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError:
        raise ModelUnavailable(
            "this is an XGBoost model and xgboost is not installed",
            hint="pip install 'dmv[xgboost]'",
        ) from None
    return xgboost


class XGBoostFlavor(Flavor):
    name = "xgboost"
    format = "xgboost-json"

    def matches(self, obj: Any) -> bool:
        return type(obj).__module__.split(".")[0] == "xgboost" and hasattr(obj, "predict")

    def save(self, obj: Any, *, trust_pickle: bool) -> tuple[bytes, dict[str, Any]]:
        cls = type(obj).__name__
        booster = obj.get_booster() if hasattr(obj, "get_booster") else obj
        meta: dict[str, Any] = {"wrapper": cls if cls in _WRAPPERS else "Booster"}
        classes = self.classes(obj)
        if classes is not None and callable(getattr(obj, "predict_proba", None)):
            meta.update(task="classifier", classes=classes)
        return bytes(booster.save_raw("json")), meta

    def load(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        xgb = _xgb()
        wrapper = str(meta.get("wrapper", "Booster"))
        model = getattr(xgb, wrapper)() if wrapper in _WRAPPERS else xgb.Booster()
        model.load_model(bytearray(data))
        return model

    def kinds(self, native: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
        return ("label", "proba") if meta.get("task") == "classifier" else ("label",)

    def compute_all(
        self, native: Any, meta: Mapping[str, Any], x: Any, kinds: tuple[str, ...]
    ) -> list[Any]:
        if meta.get("task") == "classifier":
            return _trees.both(meta, _trees.proba_matrix(native.predict_proba(x)), kinds)
        if meta.get("wrapper", "Booster") == "Booster":
            xgb = _xgb()
            return [native.predict(xgb.DMatrix(x, enable_categorical=True))]
        return [native.predict(x)]


FLAVOR = XGBoostFlavor()
