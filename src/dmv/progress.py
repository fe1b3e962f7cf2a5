"""The one progress callback every long operation takes.

``progress(stage, done, total)``: ``stage`` names the step (``"rows"``,
``"hashing"``, ``"uploading model.skops"``), ``done`` counts what is finished
(rows, bytes, files) and ``total`` is the count when known, else ``None``.
Operations call it as often as they like; a front end decides what to show.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress"]

#: ``(stage, done, total)``; see the module docs.
Progress = Callable[[str, int, "int | None"], None]
