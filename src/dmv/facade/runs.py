"""Experiment runs and their promotion to numbered versions."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dmv.facade._base import FacadeBase

if TYPE_CHECKING:
    from dmv.registry import RunInfo
    from dmv.runs import Run

__all__ = ["ExperimentsMixin"]


class ExperimentsMixin(FacadeBase):
    """Experiment runs and their promotion to numbered versions."""

    @contextmanager
    def experiment(
        self,
        model: str,
        *,
        data: str | None = None,
        params: Mapping[str, Any] | None = None,
        code: Sequence[str | os.PathLike[str]] | None = None,
        interface: Any = None,
        entry_point: str | None = None,
    ) -> Iterator[Run]:
        """An unnumbered experiment run, shown as ``x.x.x-DATA.SPLIT``; see :meth:`promote`."""
        from dmv import training

        run = training.start(
            self.stores,
            model,
            "experiment",
            data=data,
            params=params,
            read_part=self.data_access.read_part,
        )
        yield from training.finish(self.stores, run, entry_point, code, interface, True)

    def promote(self, model: str, experiment: str | RunInfo) -> RunInfo:
        """Number an experiment: register it as a training run of its derived version."""
        from dmv.training import promote

        return promote(self.registry, model, experiment)
