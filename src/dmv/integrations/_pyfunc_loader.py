"""MLflow's ``python_function`` loader for a model dmv exported (copied as ``code/dmv_pyfunc.py``).

MLflow imports this module from the exported directory's ``code/`` folder, next
to a copy of the parts of dmv that build the request frame and run each kind of
model, so MLflow's server answers exactly as ``dmv serve`` does. Only the
standard library, pandas and the model's own library are needed.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


class DmvPyfuncModel:
    """What ``mlflow.pyfunc.load_model`` returns: a frame in, one column per output out."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, model_input: Any, params: Any = None) -> Any:
        import pandas as pd

        if hasattr(model_input, "to_json"):
            rows = json.loads(model_input.to_json(orient="records", date_format="iso"))
        elif isinstance(model_input, dict):
            rows = [model_input]
        else:
            rows = list(model_input)
        answer = self.model.predict_rows(rows)
        return pd.DataFrame.from_records(answer, columns=list(self.model.output_names))


def _load_pyfunc(data_path: str) -> DmvPyfuncModel:
    with open(os.path.join(data_path, "dmv.json"), encoding="utf-8") as fh:
        about = json.load(fh)
    with open(os.path.join(data_path, about["model_file"]), "rb") as fh:
        data = fh.read()
    for root in about.get("code_roots") or []:
        entry = os.path.abspath(os.path.join(data_path, "model_code", root))
        if entry not in sys.path:
            sys.path.insert(0, entry)
    # lazy: the exported copy of dmv is importable once the code roots are on sys.path
    from dmv.flavors import load  # lazy: sys.path
    from dmv.interface import Interface  # lazy: sys.path

    iface = Interface.from_dict(about["interface"]) if about.get("interface") else None
    model = load(
        data,
        about["meta"],
        what=about["version"],
        # The exporter wrote an unsafe format only when told the model is trusted.
        trust_pickle=bool(about.get("trusted")),
        interface=iface,
    )
    return DmvPyfuncModel(model)
