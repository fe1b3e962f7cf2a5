"""The registry's models: create, update, get, list, archive and delete them.

Whether a model is archived is read from the audit log, the append-only record
of every write: the newest of its ``model.archive`` / ``model.unarchive`` /
``model.create`` / ``model.delete`` entries decides. That keeps archiving a pure
addition (no schema change) and makes its history the audit trail itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, ImmutableError, InvalidInput
from dmv.registry import schema as t
from dmv.registry.core import RegistryCore, insert_ignore
from dmv.registry.records import ModelInfo
from dmv.version import check_name

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["ModelsMixin"]


class ModelsMixin(RegistryCore):
    """Models: a name, what it is for, and how its primary metric is judged."""

    def create_model(
        self,
        name: str,
        *,
        purpose: str = "",
        function: str = "",
        description: str = "",
        primary_metric: str | None = None,
        metric_goal: str = "max",
        exist_ok: bool = False,
    ) -> ModelInfo:
        """Create a model; an existing one is a conflict unless ``exist_ok``."""
        check_name(name)
        if metric_goal not in ("max", "min"):
            raise InvalidInput(
                f"metric goal {metric_goal!r} must be 'max' or 'min'",
                hint="pass metric_goal='max' (higher is better) or 'min' (lower is better)",
            )
        values = {
            "name": name,
            "purpose": purpose,
            "function": function,
            "description": description,
            "primary_metric": primary_metric,
            "metric_goal": metric_goal,
            "generation": 0,
            "created_at": time.time(),
        }

        def write(conn: sa.Connection) -> None:
            self._check_new_model_name(conn, name)
            if insert_ignore(conn, t.models, values):
                self._audit(conn, "model.create", name, name, {"purpose": purpose})
            elif not exist_ok:
                raise ConflictError(
                    f"model {name!r} exists already",
                    hint="see it with 'dmv model list'; change it with 'dmv model update'",
                )

        self._write(write)
        return self.get_model(name)

    def update_model(self, name: str, **fields: Any) -> ModelInfo:
        """Change a model's purpose, function, description or primary metric."""
        import sqlalchemy as sa

        allowed = {"purpose", "function", "description", "primary_metric", "metric_goal"}
        changes = {k: v for k, v in fields.items() if v is not None}
        if bad := set(changes) - allowed:
            raise InvalidInput(
                f"cannot update {', '.join(sorted(bad))} of a model",
                hint=f"a model's updatable fields are {', '.join(sorted(allowed))}",
            )
        if changes.get("metric_goal", "max") not in ("max", "min"):
            raise InvalidInput(
                "metric goal must be 'max' or 'min'",
                hint="pass 'max' (higher is better) or 'min' (lower is better)",
            )

        def write(conn: sa.Connection) -> None:
            row = self._model_row(conn, name, lock=True)
            if changes:
                conn.execute(sa.update(t.models).where(t.models.c.id == row.id).values(**changes))
                self._audit(conn, "model.update", name, name, changes)

        self._write(write)
        return self.get_model(name)

    def get_model(self, name: str) -> ModelInfo:
        return self._models(name)[0]

    def list_models(self, *, include_archived: bool = False) -> list[ModelInfo]:
        """Every model by name; archived ones only when asked for."""
        return [m for m in self._models(None) if include_archived or not m.archived]

    def set_archived(self, name: str, archived: bool) -> ModelInfo:
        """Archive a model (hidden from listings, no new runs, kept whole) or bring it back."""

        def write(conn: sa.Connection) -> None:
            self._model_row(conn, name, lock=True)
            if (name in self._archived_names(conn, [name])) != archived:
                action = "model.archive" if archived else "model.unarchive"
                self._audit(conn, action, name, name)

        self._write(write)
        return self.get_model(name)

    def is_archived(self, name: str) -> bool:
        """Whether ``name`` is an archived model (False for one that does not exist)."""
        result: bool = self._read(lambda conn: name in self._archived_names(conn, [name]))
        return result

    def _archived_names(self, conn: sa.Connection, names: list[str] | None) -> set[str]:
        import sqlalchemy as sa

        a = t.audit.c
        actions = ("model.archive", "model.unarchive", "model.create", "model.delete")
        query = sa.select(a.model, a.action).where(a.action.in_(actions))
        if names is not None:
            query = query.where(a.model.in_(names))
        state: dict[str, bool] = {}
        for model, action in conn.execute(query.order_by(a.id)):
            state[model] = action == "model.archive"
        return {m for m, archived in state.items() if archived}

    def delete_model(self, name: str) -> dict[str, Any]:
        """Delete a model that was never released, with its versions, runs, aliases,
        retrievals and splits, in one transaction. Returns what the caller must still
        remove outside the registry: the split tables and the candidate blob digests."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> dict[str, Any]:
            row = self._model_row(conn, name, lock=True)
            v = t.versions.c
            released = conn.execute(
                sa.select(v.x, v.y, v.z, v.data, v.split)
                .where(v.model_id == row.id, v.x >= 1)
                .order_by(v.x, v.y, v.z)
            ).first()
            if released is not None:
                number = f"{released.x}.{released.y}.{released.z}-{released.data}.{released.split}"
                raise ImmutableError(
                    f"model {name} has a release ({number}): released versions are kept for good",
                    hint=f"archive it instead: dmv model archive {name}",
                )
            run_ids = [
                r[0]
                for r in conn.execute(sa.select(t.runs.c.id).where(t.runs.c.model_id == row.id))
            ]
            digests = {
                r[0]
                for r in conn.execute(
                    sa.select(t.artifacts.c.digest).where(t.artifacts.c.run_id.in_(run_ids))
                )
            }
            query_ids = sa.select(t.data_queries.c.id).where(t.data_queries.c.model_id == row.id)
            tables: list[str] = []
            n_splits = 0
            for (parts,) in conn.execute(
                sa.select(t.splits.c.parts).where(t.splits.c.query_id.in_(query_ids))
            ):
                n_splits += 1
                for part in _parts(parts):
                    if part.get("table"):
                        tables.append(str(part["table"]))
                    digests |= _part_digests(part)
            n_versions = conn.execute(
                sa.select(sa.func.count()).select_from(t.versions).where(v.model_id == row.id)
            ).scalar_one()
            conn.execute(sa.delete(t.aliases).where(t.aliases.c.model_id == row.id))
            conn.execute(sa.delete(t.artifacts).where(t.artifacts.c.run_id.in_(run_ids)))
            conn.execute(sa.delete(t.metric_history).where(t.metric_history.c.run_id.in_(run_ids)))
            conn.execute(sa.delete(t.runs).where(t.runs.c.model_id == row.id))
            version_ids = sa.select(v.id).where(v.model_id == row.id)
            conn.execute(
                sa.delete(t.prediction_runs).where(t.prediction_runs.c.version_id.in_(version_ids))
            )
            conn.execute(sa.delete(t.versions).where(v.model_id == row.id))
            conn.execute(sa.delete(t.evaluations).where(t.evaluations.c.model == name))
            conn.execute(sa.delete(t.approvals).where(t.approvals.c.model == name))
            conn.execute(sa.delete(t.splits).where(t.splits.c.query_id.in_(query_ids)))
            conn.execute(sa.delete(t.data_queries).where(t.data_queries.c.model_id == row.id))
            # A token limited to this model must not open a later model of the same name.
            conn.execute(
                sa.update(t.tokens)
                .where(t.tokens.c.model == name, t.tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            conn.execute(sa.delete(t.models).where(t.models.c.id == row.id))
            summary = {
                "model": name,
                "versions": int(n_versions),
                "runs": len(run_ids),
                "splits": n_splits,
                "tables": sorted(tables),
                "digests": sorted(digests),
            }
            self._audit(
                conn,
                "model.delete",
                name,
                name,
                {k: summary[k] for k in ("versions", "runs", "splits")},
            )
            return summary

        result: dict[str, Any] = self._write(write)
        return result

    def referenced_digests(self, digests: list[str]) -> set[str]:
        """Those of ``digests`` that a run's artifact or a stored split still refers to."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> set[str]:
            wanted = set(digests)
            found = {
                r[0]
                for r in conn.execute(
                    sa.select(t.artifacts.c.digest).where(t.artifacts.c.digest.in_(wanted))
                )
            }
            for (parts,) in conn.execute(sa.select(t.splits.c.parts)):
                for part in _parts(parts):
                    found |= _part_digests(part) & wanted
            return found

        result: set[str] = self._read(read)
        return result

    def counts(self) -> dict[str, int]:
        """How many models, versions and runs the registry holds."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> dict[str, int]:
            return {
                table.name: int(
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
                for table in (t.models, t.versions, t.runs)
            }

        return self._read(read)

    def _models(self, name: str | None) -> list[ModelInfo]:
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[ModelInfo]:
            query = sa.select(t.models).order_by(t.models.c.name)
            if name is not None:
                query = query.where(t.models.c.name == name)
            rows = conn.execute(query).all()
            if name is not None and not rows:
                self._model_row(conn, name)  # raises NotFound with the hint
            ids = [r.id for r in rows]
            v = t.versions.c
            latest: dict[tuple[int, bool], str] = {}
            counts: dict[int, int] = {}
            vrows = conn.execute(
                sa.select(v.model_id, v.x, v.y, v.z, v.data, v.split, v.state)
                .where(v.model_id.in_(ids))
                .order_by(v.model_id, v.x, v.y, v.z, v.id)
            ).all()
            for r in vrows:
                counts[r.model_id] = counts.get(r.model_id, 0) + 1
                if r.state != "deprecated":
                    latest[(r.model_id, r.x >= 1)] = f"{r.x}.{r.y}.{r.z}-{r.data}.{r.split}"
            alias_map: dict[int, dict[str, str]] = {}
            for a in conn.execute(
                sa.select(t.aliases.c.model_id, t.aliases.c.alias, v.x, v.y, v.z, v.data, v.split)
                .join(t.versions, t.versions.c.id == t.aliases.c.version_id)
                .where(t.aliases.c.model_id.in_(ids))
                .order_by(t.aliases.c.alias)
            ):
                alias_map.setdefault(a.model_id, {})[a.alias] = (
                    f"{a.x}.{a.y}.{a.z}-{a.data}.{a.split}"
                )
            archived = self._archived_names(conn, [r.name for r in rows])
            return [
                ModelInfo(
                    name=r.name,
                    purpose=r.purpose,
                    function=r.function,
                    description=r.description,
                    primary_metric=r.primary_metric,
                    metric_goal=r.metric_goal,
                    generation=r.generation,
                    created_at=r.created_at,
                    latest_prerelease=latest.get((r.id, False)),
                    latest_release=latest.get((r.id, True)),
                    aliases=alias_map.get(r.id, {}),
                    version_count=counts.get(r.id, 0),
                    archived=r.name in archived,
                )
                for r in rows
            ]

        result: list[ModelInfo] = self._read(read)
        return result


def _parts(stored: Any) -> list[dict[str, Any]]:
    """The parts of a stored split's JSON record (a list, or ``{"parts": [...]}``)."""
    if isinstance(stored, dict):
        stored = stored.get("parts", [])
    return [p for p in stored or [] if isinstance(p, dict)]


def _part_digests(part: dict[str, Any]) -> set[str]:
    """The blobs a stored part of files keeps: its manifest and each file."""
    out = {str(part["digest"])} if part.get("digest") else set()
    for f in part.get("files") or []:
        if isinstance(f, dict) and f.get("digest"):
            out.add(str(f["digest"]))
    return out
