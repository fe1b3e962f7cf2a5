"""The registry's models: create, update, get and list them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, InvalidInput
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
            raise InvalidInput(f"metric goal {metric_goal!r} must be 'max' or 'min'")
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
            raise InvalidInput(f"cannot update {', '.join(sorted(bad))} of a model")
        if changes.get("metric_goal", "max") not in ("max", "min"):
            raise InvalidInput("metric goal must be 'max' or 'min'")

        def write(conn: sa.Connection) -> None:
            row = self._model_row(conn, name, lock=True)
            if changes:
                conn.execute(sa.update(t.models).where(t.models.c.id == row.id).values(**changes))
                self._audit(conn, "model.update", name, name, changes)

        self._write(write)
        return self.get_model(name)

    def get_model(self, name: str) -> ModelInfo:
        return self._models(name)[0]

    def list_models(self) -> list[ModelInfo]:
        return self._models(None)

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
                )
                for r in rows
            ]

        result: list[ModelInfo] = self._read(read)
        return result
