"""The registry's data records: retrievals (the DATA of a version) and stored splits (SPLIT).

The rows stay in the warehouse; the registry keeps what defines and proves them:
a retrieval's definition and columns, a split's spec, parts (tables,
fingerprints, profiles) and leakage report. Choosing ids and building tables is
the data layer's; every statement on these tables is here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dmv.errors import NotFound
from dmv.registry import schema as t
from dmv.registry.core import RegistryCore
from dmv.version import check_data_id, check_name

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["DataMixin", "QueryRecord", "SplitRecord"]


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """A stored retrieval definition, as the registry keeps it."""

    model: str
    data: str
    kind: str
    definition: dict[str, Any]
    columns: list[dict[str, str]]
    created_at: float


@dataclass(frozen=True, slots=True)
class SplitRecord:
    """A stored split, as the registry keeps it (``parts`` is the split's whole result)."""

    model: str
    data: str
    split: str
    spec: dict[str, Any]
    parts: dict[str, Any]
    leakage: dict[str, Any] | None
    created_at: float


def _query(model: str, row: Any) -> QueryRecord:
    return QueryRecord(model, row.data, row.kind, row.definition, row.columns or [], row.created_at)


def _split(model: str, row: Any) -> SplitRecord:
    return SplitRecord(model, row.data, row.split, row.spec, row.parts, row.leakage, row.created_at)


def _split_select() -> Any:
    import sqlalchemy as sa

    q = t.data_queries.c
    return sa.select(t.splits, q.data, q.model_id, t.models.c.name.label("model_name")).select_from(
        t.splits.join(t.data_queries, q.id == t.splits.c.query_id).join(
            t.models, t.models.c.id == q.model_id
        )
    )


def _query_row(conn: sa.Connection, model_id: int, data: str) -> Any:
    import sqlalchemy as sa

    q = t.data_queries.c
    return conn.execute(
        sa.select(t.data_queries).where(q.model_id == model_id, q.data == data)
    ).first()


class DataMixin(RegistryCore):
    """Retrievals and stored splits of each model."""

    def add_query(
        self,
        model: str,
        kind: str,
        definition: dict[str, Any],
        columns: list[dict[str, str]],
        choose: Callable[[Sequence[QueryRecord]], QueryRecord | str],
    ) -> QueryRecord:
        """Store a retrieval (the model is created if missing), under the model's lock.

        ``choose`` sees the model's stored retrievals and returns the one to reuse
        or the DATA id of the new one.
        """
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> QueryRecord:
            model_row = self._ensure_model(conn, model)
            q = t.data_queries.c
            rows = conn.execute(sa.select(t.data_queries).where(q.model_id == model_row.id)).all()
            chosen = choose([_query(model, r) for r in rows])
            if isinstance(chosen, QueryRecord):
                return chosen
            now = time.time()
            values = {"data": chosen, "kind": kind, "definition": definition, "columns": columns}
            conn.execute(
                sa.insert(t.data_queries).values(model_id=model_row.id, created_at=now, **values)
            )
            self._audit(conn, "data.query", model, chosen, {"source": definition["source"]})
            return QueryRecord(model, chosen, kind, definition, columns, now)

        return self._write(write)

    def get_query(self, model: str, data: str) -> QueryRecord:
        def read(conn: sa.Connection) -> QueryRecord:
            m = self._model_row(conn, check_name(model))
            row = _query_row(conn, m.id, check_data_id(data, "DATA"))
            if row is None:
                raise NotFound(
                    f"{model} has no data retrieval {data!r}",
                    hint=f"list them with 'dmv data list {model}'",
                )
            return _query(model, row)

        return self._read(read)

    def list_queries(self, model: str) -> list[QueryRecord]:
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[QueryRecord]:
            m = self._model_row(conn, check_name(model))
            q = t.data_queries.c
            rows = conn.execute(
                sa.select(t.data_queries).where(q.model_id == m.id).order_by(q.created_at, q.id)
            ).all()
            return [_query(model, r) for r in rows]

        return self._read(read)

    def get_split(self, model: str, data: str, split: str) -> SplitRecord:
        check_data_id(split, "SPLIT")

        def read(conn: sa.Connection) -> SplitRecord:
            m = self._model_row(conn, check_name(model))
            row = conn.execute(
                _split_select().where(
                    t.data_queries.c.model_id == m.id,
                    t.data_queries.c.data == check_data_id(data, "DATA"),
                    t.splits.c.split == split,
                )
            ).first()
            if row is None:
                raise NotFound(
                    f"{model} has no stored split {data}.{split}",
                    hint=f"create it with 'dmv data split {model} {data}'",
                )
            return _split(model, row)

        return self._read(read)

    def list_splits(self, model: str | None, data: str | None = None) -> list[SplitRecord]:
        """A model's stored splits (of one retrieval, when given); every model's for None."""

        def read(conn: sa.Connection) -> list[SplitRecord]:
            query = _split_select()
            if model is not None:
                m = self._model_row(conn, check_name(model))
                query = query.where(t.data_queries.c.model_id == m.id)
            if data is not None:
                query = query.where(t.data_queries.c.data == data)
            rows = conn.execute(query.order_by(t.splits.c.created_at, t.splits.c.id)).all()
            return [_split(r.model_name, r) for r in rows]

        return self._read(read)

    def add_split(
        self,
        model: str,
        data: str,
        split: str,
        spec: dict[str, Any],
        parts: dict[str, Any],
        leakage: dict[str, Any] | None,
    ) -> SplitRecord:
        """Register a split whose tables (or files) are stored already; audited."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> SplitRecord:
            m = self._model_row(conn, model, lock=True)
            qrow = _query_row(conn, m.id, data)
            if qrow is None:
                raise NotFound(
                    f"{model} has no data retrieval {data!r}",
                    hint="list the retrievals with 'dmv data list MODEL'",
                )
            now = time.time()
            conn.execute(
                sa.insert(t.splits).values(
                    query_id=qrow.id,
                    split=split,
                    spec=spec,
                    parts=parts,
                    leakage=leakage,
                    created_at=now,
                )
            )
            rows = {p["name"]: p.get("rows") for p in parts.get("parts", [])}
            self._audit(conn, "data.split", model, f"{data}.{split}", {"rows": rows})
            return SplitRecord(model, data, split, spec, parts, leakage, now)

        return self._write(write)

    def add_part_check(
        self, model: str, data: str, split: str, part: str, key: str, value: str
    ) -> None:
        """Keep an engine check of a part on its split record (added, never changed)."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> None:
            m = self._model_row(conn, model)
            qrow = _query_row(conn, m.id, data)
            if qrow is None:
                return
            where = (t.splits.c.query_id == qrow.id, t.splits.c.split == split)
            row = conn.execute(sa.select(t.splits.c.parts).where(*where)).first()
            if row is None:
                return
            body = dict(row.parts)
            stored = [dict(p) for p in body.get("parts", [])]
            for p in stored:
                if p["name"] == part:
                    p["checks"] = {**(p.get("checks") or {}), key: value}
            body["parts"] = stored
            conn.execute(sa.update(t.splits).where(*where).values(parts=body))

        self._write(write)

    def drop_split(self, model: str, data: str, split: str) -> None:
        """Forget a stored split (its tables are the caller's to drop); audited."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> None:
            m = self._model_row(conn, model, lock=True)
            qrow = _query_row(conn, m.id, data)
            if qrow is not None:
                conn.execute(
                    sa.delete(t.splits).where(
                        t.splits.c.query_id == qrow.id, t.splits.c.split == split
                    )
                )
            self._audit(conn, "data.drop", model, f"{data}.{split}")

        self._write(write)
