"""The floor of ``bench/serve.py``: the least an ASGI endpoint can do and still answer.

    python bench/_bare_server.py SCENARIO MODEL_FILE PORT

One Starlette route under uvicorn: parse the JSON rows, put them in a NumPy matrix
in column order, call the model, answer JSON. No validation, no registry, no
frame: what is left is the HTTP stack, JSON and the model's own work.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LGB = ["tenure", "spend", "plan"]


def _without_names(model: Any) -> Any:
    """The pipeline as if fit on an array: NumPy input, no feature-name check."""
    for part in [model, *model.get_params(deep=True).values()]:
        if "feature_names_in_" in getattr(part, "__dict__", {}):
            del part.feature_names_in_
    return model


def main() -> None:
    scenario, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if scenario == "lightgbm":
        import lightgbm as lgb

        with open(path, encoding="utf-8") as fh:
            booster = lgb.Booster(model_str=fh.read())
        codes = {c: float(i) for i, c in enumerate(booster.pandas_categorical[0])}

        def predict(rows: list[dict[str, Any]]) -> list[Any]:
            x = np.array(
                [[r["tenure"], r["spend"], codes.get(r["plan"], np.nan)] for r in rows],
                dtype=np.float64,
            )
            p = booster.predict(x, num_threads=1)
            return [[1.0 - v, v] for v in p.tolist()]

    else:
        with open(path, "rb") as fh:
            model = _without_names(pickle.load(fh))

        def predict(rows: list[dict[str, Any]]) -> list[Any]:
            x = np.array([[r[c] for c in IRIS] for r in rows], dtype=np.float64)
            out: list[Any] = model.predict(x).tolist()
            return out

    async def endpoint(request: Request) -> Response:
        body = json.loads(await request.body())
        answer = json.dumps({"outputs": predict(body["inputs"])})
        return Response(answer, media_type="application/json")

    app = Starlette(routes=[Route("/predict", endpoint, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
