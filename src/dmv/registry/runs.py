"""The registry's runs: commit a finished (or failed) run, and read runs back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput, NotFound
from dmv.registry import schema as t
from dmv.registry.core import RegistryCore
from dmv.registry.records import (
    ArtifactInfo,
    NewRun,
    RunInfo,
    StoredArtifact,
    parse_run_id,
)
from dmv.version import Version

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["RunsMixin"]


def _run_id(kind: str, number: int | None, pk: int = 0) -> str:
    if number is None:
        return f"failed-{pk}"
    return f"{'tr' if kind == 'training' else 'ex'}{number}"


class RunsMixin(RegistryCore):
    """Runs: training runs ``trN`` of a version, experiments ``exN`` of a model."""

    def commit_run(self, run: NewRun) -> RunInfo:
        """Register a finished (or failed) run and whatever it creates, atomically."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> tuple[str, int]:
            model = self._ensure_model(conn, run.model)
            version_id = None
            version = run.version
            if run.kind == "training" and run.status == "finished":
                components = {
                    "interface_fp": run.interface_fp,
                    "logic_fp": run.logic_fp,
                    "interface": run.interface,
                    "interface_compat": run.interface_compat,
                    "logic": run.logic,
                    "dirty": run.dirty or None,
                }
                if version is None and run.derive is not None:
                    # Derived under the model's lock: no other writer can take the
                    # number between our reading what is known and inserting it.
                    version, extra = run.derive(self._known_rows(conn, model.id))
                    components.update(extra)
                if version is None:
                    raise InvalidInput(
                        "a training run needs a version",
                        hint="pass version= to project.run for a training run",
                    )
                version_id = self._insert_version(conn, model, version, components)
            number = None
            if run.status == "finished":
                c = t.runs.c
                scope = (
                    c.version_id == version_id
                    if version_id is not None
                    else sa.and_(c.model_id == model.id, c.kind == "experiment")
                )
                last = conn.execute(sa.select(sa.func.max(c.number)).where(scope)).scalar()
                number = 0 if last is None else int(last) + 1
                if run.kind == "experiment" and last is None:
                    number = 1
            run_pk = conn.execute(
                sa.insert(t.runs).values(
                    model_id=model.id,
                    version_id=version_id,
                    number=number,
                    kind=run.kind,
                    status=run.status,
                    intended=run.intended,
                    data=run.data,
                    split=run.split,
                    params=run.params,
                    metrics=run.metrics,
                    environment=run.environment,
                    code=run.code,
                    entry_point=run.entry_point,
                    error=run.error,
                    meta=run.meta,
                    started_at=run.started_at,
                    ended_at=run.ended_at,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if run.artifacts:
                now = time.time()
                conn.execute(
                    sa.insert(t.artifacts),
                    [
                        {
                            "run_id": run_pk,
                            "name": a.name,
                            "kind": a.kind,
                            "digest": a.digest,
                            "size": a.size,
                            "meta": a.meta,
                            "created_at": now,
                        }
                        for a in run.artifacts
                    ],
                )
            if run.history:
                conn.execute(
                    sa.insert(t.metric_history),
                    [
                        {
                            "run_id": run_pk,
                            "split": split,
                            "name": name,
                            "step": step,
                            "value": value,
                            "logged_at": at,
                        }
                        for split, name, step, value, at in run.history
                    ],
                )
            run_id = _run_id(run.kind, number)
            target = version.number if version else run.intended
            self._audit(
                conn,
                f"run.{run.status}",
                run.model,
                f"{target} {run_id}" if target else run_id,
                {"kind": run.kind},
            )
            return run_id, int(run_pk)

        _, pk = self._write(write)
        return self._run_by_pk(pk)

    def _known_rows(self, conn: sa.Connection, model_id: int) -> list[Any]:
        """Every version of a model with what derivation needs to know of it."""
        import sqlalchemy as sa

        v = t.versions.c
        query = sa.select(
            v.x,
            v.y,
            v.z,
            v.data,
            v.split,
            v.interface_fp,
            v.logic_fp,
            v.interface,
            v.interface_compat,
        ).where(v.model_id == model_id)
        return list(conn.execute(query.order_by(v.x, v.y, v.z, v.id)).all())

    def _artifacts_of(self, conn: sa.Connection, run_ids: list[int]) -> dict[int, list[Any]]:
        """The artifacts of many runs in one query, by run id, in the order they were added."""
        import sqlalchemy as sa

        out: dict[int, list[Any]] = {rid: [] for rid in run_ids}
        if run_ids:
            query = sa.select(t.artifacts).where(t.artifacts.c.run_id.in_(run_ids))
            for a in conn.execute(query.order_by(t.artifacts.c.id)):
                out[a.run_id].append(ArtifactInfo(a.name, a.kind, a.digest, int(a.size), a.meta))
        return out

    def _history_of(
        self, conn: sa.Connection, run_ids: list[int]
    ) -> dict[int, dict[str, dict[str, list[list[float]]]]]:
        """The metric history of many runs in one query: ``{run: {split: {name: points}}}``."""
        import sqlalchemy as sa

        out: dict[int, dict[str, dict[str, list[list[float]]]]] = {rid: {} for rid in run_ids}
        if run_ids:
            h = t.metric_history.c
            query = sa.select(h.run_id, h.split, h.name, h.step, h.value).where(
                h.run_id.in_(run_ids)
            )
            for r in conn.execute(query.order_by(h.id)):
                points = out[r.run_id].setdefault(r.split, {}).setdefault(r.name, [])
                points.append([int(r.step), float(r.value)])
        return out

    def _run_infos(
        self, conn: sa.Connection, rows: Sequence[Any], model: str, versions: Any
    ) -> list[RunInfo]:
        """RunInfos for ``rows``; ``versions`` gives each row's version (a callable)."""
        ids = [r.id for r in rows]
        arts, history = self._artifacts_of(conn, ids), self._history_of(conn, ids)
        return [
            self._run_info(conn, r, model, versions(r), arts[r.id], history[r.id]) for r in rows
        ]

    def _run_info(
        self,
        conn: sa.Connection,
        row: Any,
        model: str,
        version: Version | None,
        artifacts: list[Any] | None = None,
        history: dict[str, dict[str, list[list[float]]]] | None = None,
    ) -> RunInfo:
        if artifacts is None:
            artifacts = self._artifacts_of(conn, [row.id])[row.id]
        if history is None:
            history = self._history_of(conn, [row.id])[row.id]
        arts = tuple(artifacts)
        return RunInfo(
            id=_run_id(row.kind, row.number, row.id),
            model=model,
            kind=row.kind,
            status=row.status,
            version=version,
            data=row.data if version is None else version.data,
            split=row.split if version is None else version.split,
            params=row.params or {},
            metrics=row.metrics or {},
            started_at=row.started_at,
            ended_at=row.ended_at,
            environment=row.environment,
            code=row.code,
            entry_point=row.entry_point,
            error=row.error,
            intended=row.intended,
            artifacts=arts,
            meta=row.meta,
            history=history,
        )

    def _run_by_pk(self, pk: int) -> RunInfo:
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> RunInfo:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == pk)).one()
            name = conn.execute(
                sa.select(t.models.c.name).where(t.models.c.id == row.model_id)
            ).scalar_one()
            version = None
            if row.version_id is not None:
                v = conn.execute(
                    sa.select(t.versions).where(t.versions.c.id == row.version_id)
                ).one()
                version = Version(name, v.x, v.y, v.z, v.data, v.split)
            return self._run_info(conn, row, name, version)

        result: RunInfo = self._read(read)
        return result

    def list_runs(self, version: Version) -> list[RunInfo]:
        """The training runs of one version, tr0 first."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[RunInfo]:
            _, vrow = self._require_version(conn, version, lock=False)
            owner, trained = self._run_owner(conn, version, vrow)
            rows = conn.execute(
                sa.select(t.runs).where(t.runs.c.version_id == owner).order_by(t.runs.c.number)
            ).all()
            return self._run_infos(conn, rows, version.name, lambda _r: trained)

        result: list[RunInfo] = self._read(read)
        return result

    def list_model_runs(
        self, model: str, *, kind: str | None = None, status: str | None = None
    ) -> list[RunInfo]:
        """Every run of a model (experiments and failed runs included), oldest first."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[RunInfo]:
            m = self._model_row(conn, model)
            query = sa.select(t.runs).where(t.runs.c.model_id == m.id).order_by(t.runs.c.id)
            if kind:
                query = query.where(t.runs.c.kind == kind)
            if status:
                query = query.where(t.runs.c.status == status)
            vmap = {
                r.id: Version(model, r.x, r.y, r.z, r.data, r.split)
                for r in conn.execute(sa.select(t.versions).where(t.versions.c.model_id == m.id))
            }
            rows = conn.execute(query).all()
            return self._run_infos(conn, rows, model, lambda r: vmap.get(r.version_id))

        result: list[RunInfo] = self._read(read)
        return result

    def get_run(self, model: str, run_id: str, version: Version | None = None) -> RunInfo:
        """One run: ``trN`` of ``version``, or experiment ``exN`` of ``model``."""
        import sqlalchemy as sa

        kind, number = parse_run_id(run_id)

        def read(conn: sa.Connection) -> RunInfo:
            m = self._model_row(conn, model)
            c = t.runs.c
            trained = version
            if kind == "training":
                if version is None:
                    raise InvalidInput(
                        f"{run_id} is a training run: name its version too",
                        hint=f"write it as MODEL@X.Y.Z-DATA.SPLIT/{run_id}",
                    )
                _, vrow = self._require_version(conn, version, lock=False)
                owner, trained = self._run_owner(conn, version, vrow)
                where: Sequence[Any] = (c.version_id == owner, c.number == number)
            else:
                where = (c.model_id == m.id, c.kind == "experiment", c.number == number)
            row = conn.execute(sa.select(t.runs).where(*where)).first()
            if row is None:
                whose = str(version) if kind == "training" else model
                raise NotFound(
                    f"{whose} has no run {run_id}", hint=f"list its runs with 'dmv runs {whose}'"
                )
            return self._run_info(conn, row, model, trained if kind == "training" else None)

        result: RunInfo = self._read(read)
        return result

    def stored_artifacts(self) -> list[StoredArtifact]:
        """Every run's artifacts, each with its model, run and version (for fsck)."""
        import sqlalchemy as sa

        v = t.versions.c
        query = (
            sa.select(
                t.artifacts.c.name,
                t.artifacts.c.digest,
                t.artifacts.c.size,
                t.models.c.name.label("model"),
                t.runs.c.kind,
                t.runs.c.number,
                v.x,
                v.y,
                v.z,
                v.data,
                v.split,
            )
            .join(t.runs, t.runs.c.id == t.artifacts.c.run_id)
            .join(t.models, t.models.c.id == t.runs.c.model_id)
            .outerjoin(t.versions, v.id == t.runs.c.version_id)
        )
        return self._read(lambda conn: [StoredArtifact(**r._mapping) for r in conn.execute(query)])
