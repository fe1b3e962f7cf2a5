"""Batch predictions: score rows by version, list a model's prediction runs, re-check one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dmv.facade._base import FacadeBase
from dmv.flavors.stored import load_stored
from dmv.integrations import lineage, signing
from dmv.release import predict as batch
from dmv.release.serving_run import model_artifact
from dmv.version import Reference, Version, as_reference

if TYPE_CHECKING:
    from dmv.progress import Progress
    from dmv.registry.predictions import PredictionRecord
    from dmv.release.reproduce import Report

__all__ = ["PredictionsMixin"]


class PredictionsMixin(FacadeBase):
    """Batch predictions: score rows by version, list prediction runs, re-check one."""

    def predict(
        self,
        ref: str | Reference | Version,
        *,
        input: str | None = None,
        sql: str | None = None,
        source: str | None = None,
        output: str | None = None,
        on_bad_rows: str = "refuse",
        keys: Sequence[str] = (),
        trust_pickle: bool | None = None,
        batch_rows: int = batch.BATCH_ROWS,
        progress: Progress | None = None,
    ) -> PredictionRecord:
        """Score a stored part (``input='DATA.SPLIT:PART'``), a file (``input='x.parquet'``)
        or a retrieval (``sql=``, ``source=``) with the version ``ref`` serves.

        The output is a warehouse table named after the version (or ``output``: a
        table name or a ``.parquet`` path) holding the key columns, the interface's
        outputs and the version; rows that break the interface are refused
        (``on_bad_rows='refuse'``) or written to a rejects table (``'reject'``).
        The model loads as the server loads it: unsafe formats only with trust.
        Returns the recorded prediction run.
        """
        spec = batch.parse_input(input, sql, source)
        info = self.show(ref)
        if self.stores.config.signing.require_signed:
            signing.require_signature(self.stores, self.data_access, info.version)
        trust = self.stores.trusts_pickle if trust_pickle is None else trust_pickle
        run, art = model_artifact(self.registry, info, None)
        model = load_stored(self.artifacts, info, run.id, art, trust_pickle=trust)
        name = info.version.name
        with lineage.track(self.stores, "predict", name, f"{name}.predict") as lin:
            if lin:
                lineage.hook(lambda: lin.version(info, run.id, output=False))
            record = batch.predict_batches(
                self.stores,
                info,
                run.id,
                model,
                spec,
                output=output,
                on_bad_rows=on_bad_rows,  # type: ignore[arg-type]
                keys=keys,
                batch_rows=batch_rows,
                progress=progress,
            )
            if lin:
                lineage.hook(lambda: lin.prediction(record))
        return record

    def predictions(self, ref: str | Reference | Version) -> list[PredictionRecord]:
        """The prediction runs of a model (``name``) or of one version (``name@…``)."""
        text = str(ref) if not isinstance(ref, Version) else ref.ref
        if isinstance(ref, str) and "@" not in ref:
            return self.registry.list_predictions(ref)
        version = ref if isinstance(ref, Version) else self.resolve(as_reference(text))
        return self.registry.list_predictions(version.name, version)

    def prediction(self, prediction_id: str) -> PredictionRecord:
        """One prediction run by its id."""
        return self.registry.get_prediction(prediction_id)

    def verify_prediction(self, prediction_id: str) -> Report:
        """Re-check a prediction run's output table (or file): there, same fingerprint."""
        return batch.verify_prediction(self.stores, self.registry.get_prediction(prediction_id))
