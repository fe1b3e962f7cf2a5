"""The one progress callback every long operation takes.

``progress(stage, done, total)``: ``stage`` names the step (``"rows"``,
``"hashing"``, ``"uploading model.skops"``), ``done`` counts what is finished
(rows, bytes, files) and ``total`` is the count when known, else ``None``.
Operations call it as often as they like; a front end decides what to show.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ByteProgress", "Progress", "per_stage"]

#: ``(stage, done, total)``; see the module docs.
Progress = Callable[[str, int, "int | None"], None]

#: ``(done, total)``: how the artifact store reports the bytes of one transfer.
ByteProgress = Callable[[int, "int | None"], None]


def per_stage(progress: Progress | None, stage: str) -> ByteProgress | None:
    """A byte-count callback that reports to ``progress`` as ``stage`` (None for None)."""
    if progress is None:
        return None
    report = progress

    def bytes_done(done: int, total: int | None) -> None:
        report(stage, done, total)

    return bytes_done
