"""Adaptive micro-batching: concurrent requests for one served version, one model call.

A model answers a batch of rows for little more than the price of one row (the
per-call overhead of scikit-learn, LightGBM or ONNX Runtime dominates a small
request), so requests that arrive together are predicted together. The first
request of a batch waits at most ``max_wait_us`` for others (0, the default,
waits for nothing: the batch is what arrived while the model was busy, so a lone
request is never delayed); a batch is sent once it holds ``max_rows`` rows.
Everything runs on the server's event loop: no thread, no lock.

The batcher does not know models: ``run`` gets the batch's items and answers one
result per item, an answer or the exception that item's request raises, so one
request's bad rows never fail the others' (see ``ModelServer._predict_parts``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Batcher"]


class Batcher:
    """Groups the items submitted on one event loop into calls of ``run``."""

    def __init__(
        self, run: Callable[[list[Any]], list[Any]], *, max_rows: int, max_wait_us: int
    ) -> None:
        self.run = run
        self.max_rows = max(1, max_rows)
        self.max_wait = max(0, max_wait_us) / 1e6
        self.loop = asyncio.get_running_loop()
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._rows = 0
        self._timer: asyncio.Handle | None = None
        #: Batches run and items answered (for tests and metrics).
        self.batches = 0
        self.items = 0

    async def submit(self, item: Any, rows: int) -> Any:
        """``run``'s answer for ``item`` (of ``rows`` rows), predicted with whatever joins it."""
        if self._pending and self._rows + rows > self.max_rows:
            self._flush()  # it would overflow the batch: send what waits first
        future: asyncio.Future[Any] = self.loop.create_future()
        self._pending.append((item, future))
        self._rows += rows
        if self._rows >= self.max_rows:
            self._flush()
        elif self._timer is None:
            if self.max_wait > 0:
                self._timer = self.loop.call_later(self.max_wait, self._flush)
            else:
                self._timer = self.loop.call_soon(self._flush)
        result = await future
        if isinstance(result, BaseException):
            raise result
        return result

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._rows = self._pending, [], 0
        if not batch:
            return
        try:
            results = self.run([item for item, _ in batch])
        except Exception as exc:  # run answers per item; this is only its own bug
            results = [exc] * len(batch)
        self.batches += 1
        self.items += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # a client that went away cancelled its request
                future.set_result(result)
