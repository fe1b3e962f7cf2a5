"""Runs and the versions they derive: ``tr0``…``trN``, experiments, and the numbering rules.

``run`` is what training code logs while it runs; ``lifecycle`` starts, finishes and
registers a run; ``registration`` decides what a finished run registers (its interface
and version); ``numbering`` holds the X.Y.Z rules and nothing else.
"""

import json
import os
from typing import Any

__all__ = ["DATA_ENV", "PARAMS_ENV", "RUN_META_ENV", "params"]

#: ``dmv train``: the stored split (``DATA.SPLIT``) the entry trains on.
DATA_ENV = "DMV_DATA"
#: ``dmv train``: the ``--param NAME=VALUE`` pairs, as a JSON object.
PARAMS_ENV = "DMV_PARAMS"

#: Environment variable through which a parent dmv process (``dmv reproduce``) passes
#: metadata to the runs it starts.
RUN_META_ENV = "DMV_RUN_META"


def params() -> dict[str, Any]:
    """The parameters ``dmv train --param NAME=VALUE`` passed to this training entry.

    A JSON object in ``DMV_PARAMS``; ``{}`` when the entry was started otherwise. Log
    them with ``run.log_params(dmv.params())`` so that they count toward the logic (Z).
    """
    from dmv.errors import InvalidInput

    raw = os.environ.get(PARAMS_ENV)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidInput(
            f"{PARAMS_ENV} is not a JSON object: {raw[:60]!r}",
            hint=f'set {PARAMS_ENV} to a JSON object such as {{"lr": 0.1}}, or unset it',
        )
    return value
