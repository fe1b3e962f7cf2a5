"""A model class the batch prediction tests log (pickled, its code stored with it)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class Slow:
    """Twice the bmi; with ``DMV_TEST_SLOW`` set to a path, it touches that file and then
    sleeps, so a test can kill the process that is scoring."""

    def predict(self, frame: Any) -> Any:
        marker = os.environ.get("DMV_TEST_SLOW")
        if marker:
            Path(marker).touch()
            time.sleep(120)
        return frame["bmi"].to_numpy(dtype=float) * 2
