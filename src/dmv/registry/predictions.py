"""The registry's prediction runs: one row per completed batch prediction, never changed.

A row is written only once the output exists under its final name (``dmv predict``
writes under a temporary name and renames at the end), so every recorded prediction
run names an output that was complete when it was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv.errors import NotFound
from dmv.registry import schema as t
from dmv.registry.core import RegistryCore
from dmv.registry.records import iso
from dmv.version import Version

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["PredictionRecord", "PredictionsMixin"]


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One batch prediction: the version and run that scored, input and output, counts."""

    id: str
    version: Version
    run_id: str
    input_kind: str
    input: str
    input_fingerprint: str
    output_kind: str
    output: str
    output_fingerprint: str
    rows_in: int
    rows_out: int
    rows_rejected: int
    started_at: float
    finished_at: float
    created_by: str = ""
    rejects: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return round(self.finished_at - self.started_at, 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": str(self.version),
            "ref": self.version.ref,
            "run": self.run_id,
            "input": {
                "kind": self.input_kind,
                "name": self.input,
                "fingerprint": self.input_fingerprint,
                "rows": self.rows_in,
            },
            "output": {
                "kind": self.output_kind,
                "name": self.output,
                "fingerprint": self.output_fingerprint,
                "rows": self.rows_out,
            },
            "rejected": {"rows": self.rows_rejected, "name": self.rejects},
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "seconds": self.seconds,
            "created_by": self.created_by,
            "details": dict(self.details),
        }


_COLUMNS = (
    "input_kind",
    "input",
    "input_fingerprint",
    "output_kind",
    "output",
    "output_fingerprint",
    "rows_in",
    "rows_out",
    "rows_rejected",
    "started_at",
    "finished_at",
)


def _record(version: Version, row: Any) -> PredictionRecord:
    return PredictionRecord(
        id=row.pred_id,
        version=version,
        run_id=row.run_id,
        created_by=row.created_by,
        rejects=row.rejects,
        details=dict(row.details or {}),
        **{c: getattr(row, c) for c in _COLUMNS},
    )


class PredictionsMixin(RegistryCore):
    """Prediction runs: add one (audited as ``prediction.add``), list and get them."""

    def add_prediction(self, record: PredictionRecord) -> PredictionRecord:
        """Record a completed batch prediction of ``record.version``."""
        import sqlalchemy as sa

        version = record.version

        def write(conn: sa.Connection) -> PredictionRecord:
            model = self._model_row(conn, version.name)
            row = self._version_row(conn, model.id, version)
            if row is None:
                raise NotFound(
                    f"{version} is not registered", hint=f"'dmv versions {version.name}'"
                )
            values = {c: getattr(record, c) for c in _COLUMNS}
            values.update(
                pred_id=record.id,
                version_id=row.id,
                run_id=record.run_id,
                rejects=record.rejects,
                created_by=self.actor,
                details=dict(record.details),
            )
            conn.execute(sa.insert(t.prediction_runs).values(**values))
            self._audit(
                conn,
                "prediction.add",
                version.name,
                version.number,
                {"prediction": record.id, "output": record.output, "rows": record.rows_out},
            )
            return _record(version, _Values(values))

        result: PredictionRecord = self._write(write)
        return result

    def _prediction_query(self) -> Any:
        import sqlalchemy as sa

        v = t.versions.c
        return (
            sa.select(t.prediction_runs, t.models.c.name.label("model"), v.x, v.y, v.z, v.data)
            .add_columns(v.split)
            .join(t.versions, v.id == t.prediction_runs.c.version_id)
            .join(t.models, t.models.c.id == v.model_id)
        )

    def list_predictions(
        self, model: str | None, version: Version | None = None
    ) -> list[PredictionRecord]:
        """The model's prediction runs (of one version, given ``version``; of every model,
        given None), oldest first."""
        query = self._prediction_query()
        if model is not None:
            query = query.where(t.models.c.name == model)
        if version is not None:
            v = t.versions.c
            query = query.where(
                v.x == version.x,
                v.y == version.y,
                v.z == version.z,
                v.data == version.data,
                v.split == version.split,
            )
        query = query.order_by(t.prediction_runs.c.id)

        def read(conn: sa.Connection) -> list[PredictionRecord]:
            if model is not None:
                self._model_row(conn, model)  # NotFound for an unknown model
            return [_record(_version_of(r), r) for r in conn.execute(query)]

        result: list[PredictionRecord] = self._read(read)
        return result

    def get_prediction(self, prediction_id: str) -> PredictionRecord:
        """One prediction run by its id; :class:`NotFound` when there is none."""
        query = self._prediction_query().where(t.prediction_runs.c.pred_id == prediction_id)

        def read(conn: sa.Connection) -> PredictionRecord:
            row = conn.execute(query).first()
            if row is None:
                raise NotFound(
                    f"no prediction run {prediction_id!r}",
                    hint="'dmv predictions MODEL' lists a model's prediction runs",
                )
            return _record(_version_of(row), row)

        result: PredictionRecord = self._read(read)
        return result


def _version_of(row: Any) -> Version:
    return Version(row.model, row.x, row.y, row.z, row.data, row.split)


class _Values:
    """Attribute access over the values just inserted (the row as it will read back)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
