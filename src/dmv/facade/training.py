"""Training: runs and experiments, their listings, and promoting an experiment."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dmv.facade._base import FacadeBase
from dmv.integrations import lineage
from dmv.version import Version, check_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from dmv.registry import RunInfo
    from dmv.training.entry import TrainResult
    from dmv.training.run import Run

__all__ = ["TrainingMixin"]


class TrainingMixin(FacadeBase):
    """Training: runs and experiments, their listings, and promoting an experiment."""

    @contextmanager
    def run(
        self,
        model: str,
        version: str | Version | None = None,
        *,
        data: str | None = None,
        params: Mapping[str, Any] | None = None,
        code: Sequence[str | os.PathLike[str]] | None = None,
        interface: Any = None,
        entry_point: str | None = None,
        allow_dirty: bool | None = None,
    ) -> Iterator[Run]:
        """A training run of ``model``, registered as ``trN`` of its version when the block ends.

        Without ``version`` the version is *derived*: ``data`` (``DATA.SPLIT``)
        gives DATA and SPLIT, the interface (``interface=``, or inferred from
        ``run.log_model(model, sample_input=frame)``) gives Y, and the logic (the
        files under ``code``, the libraries they import, Python, ``params``)
        gives Z. An explicit ``version='X.Y.Z-DATA.SPLIT'`` registers a model
        made elsewhere. An exception inside the block records a failed run and
        registers nothing else.
        """
        from dmv.training import lifecycle  # lazy: sqlalchemy

        run = lifecycle.start(
            self.stores,
            model,
            "training",
            version=version,
            data=data,
            params=params,
            read_part=self.data_access.read_part,
        )
        with lineage.track(self.stores, "training", model, f"{model}.train") as lin:
            yield from lifecycle.finish(self.stores, run, entry_point, code, interface, allow_dirty)
            # Nothing read through run.dataset: the whole split it names is its input.
            if lin:  # off: not even the records it would read
                lineage.hook(
                    lambda: lin.parts(
                        self.data_access.split(*lifecycle.split_of(run)),
                        output=False,
                        only=run.parts_read or None,
                    )
                )
                lineage.hook(
                    lambda: lin.version(self.show(lifecycle.version_of(run)), run.id, output=True)
                )

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
        from dmv.training import lifecycle  # lazy: sqlalchemy

        run = lifecycle.start(
            self.stores,
            model,
            "experiment",
            data=data,
            params=params,
            read_part=self.data_access.read_part,
        )
        yield from lifecycle.finish(self.stores, run, entry_point, code, interface, True)

    def train(
        self,
        model: str,
        data: str,
        params: Mapping[str, Any] | None = None,
        *,
        on_output: Callable[[str], None] | None = None,
    ) -> TrainResult:
        """Run ``model``'s declared training entry (``[models.NAME] train`` in dmv.toml)
        on the stored split ``data`` (``DATA.SPLIT``); ``on_output`` gets its output
        line by line. Returns the command, and the run and version it registered."""
        from dmv.training.entry import train  # lazy: sqlalchemy

        return train(self.stores, model, data, dict(params or {}), on_output=on_output)

    def experiments(self, model: str) -> list[RunInfo]:
        """A model's unnumbered experiment runs (``x.x.x-DATA.SPLIT``)."""
        return self.registry.list_model_runs(check_name(model), kind="experiment")

    def failed_runs(self, model: str) -> list[RunInfo]:
        return self.registry.list_model_runs(check_name(model), status="failed")

    def promote(self, model: str, experiment: str | RunInfo) -> RunInfo:
        """Number an experiment: register it as a training run of its derived version."""
        from dmv.training.lifecycle import promote  # lazy: sqlalchemy

        return promote(self.registry, model, experiment)
