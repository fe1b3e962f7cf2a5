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


class Sleepy:
    """Twice the bmi; once the file ``go`` exists, a call on more than ``min_rows`` rows
    touches ``marker`` and sleeps, so a test can kill the ``dmv predict`` whose scoring
    runs elsewhere (Spark's executors) in the middle of its job."""

    def __init__(self, go: str, marker: str, seconds: float = 30.0, min_rows: int = 16) -> None:
        self.go, self.marker, self.seconds, self.min_rows = go, marker, seconds, min_rows

    def predict(self, frame: Any) -> Any:
        if len(frame) > self.min_rows and Path(self.go).exists():
            Path(self.marker).touch()
            time.sleep(self.seconds)
        return frame["bmi"].to_numpy(dtype=float) * 2
