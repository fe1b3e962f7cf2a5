"""The registry's release writes: release, run selection, deprecation and deletion.

The rules (what may be released, which run a release serves, what can no longer
change) are :mod:`dmv.release.releases`'s to explain; the statements are here, each
write one audited transaction under the model's lock.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, ImmutableError, NotFound
from dmv.registry import schema as t
from dmv.registry.records import OVERRIDES_KEY, VersionInfo, parse_run_id
from dmv.registry.versions import VersionsMixin
from dmv.version import Version

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["METRIC_SPLITS", "ReleasesMixin", "best_run"]

#: Where the primary metric is looked up, in order: held-out data first.
METRIC_SPLITS = ("test", "valid", "all", "train")


def best_run(
    runs: list[tuple[int, dict[str, dict[str, float]]]], metric: str | None, goal: str
) -> int:
    """The run number to serve: best by ``metric`` (``goal`` max or min), else the latest."""
    if not runs:
        raise ValueError("no runs")
    scored = []
    for number, metrics in runs:
        for split in METRIC_SPLITS:
            if metric and metric in metrics.get(split, {}):
                scored.append((metrics[split][metric], number))
                break
    if not scored:
        return max(n for n, _ in runs)
    if goal == "min":
        return min(scored, key=lambda s: (s[0], -s[1]))[1]
    return max(scored, key=lambda s: (s[0], s[1]))[1]


def _immutable(version: Version, state: str, what: str) -> ImmutableError:
    return ImmutableError(
        f"{version} is {state}: {what}",
        hint="released versions and their runs, files and splits never change; "
        "deprecate it, or make a new prerelease",
    )


def _released_already(version: Version, released: Version) -> ConflictError:
    # A prerelease is released once: a second release, in any generation, would serve
    # the same training again under another number.
    return ConflictError(
        f"{version} is released already as {released}",
        hint=f"a prerelease is released once; use {released.ref}, or train a new "
        "prerelease to release (dmv release --major starts a new generation for it)",
    )


def _finished_runs(conn: sa.Connection, version_id: int) -> list[tuple[int, Any]]:
    import sqlalchemy as sa

    c = t.runs.c
    rows = conn.execute(
        sa.select(c.number, c.metrics)
        .where(c.version_id == version_id, c.status == "finished")
        .order_by(c.number)
    ).all()
    return [(int(n), m or {}) for n, m in rows]


class ReleasesMixin(VersionsMixin):
    """Releasing a prerelease, choosing its run, deprecating and deleting versions."""

    def _serving(self, conn: sa.Connection, version: Version) -> tuple[Any, Any, int]:
        model, row = self._require_version(conn, version, lock=True)
        if row.state == "deprecated":
            raise ConflictError(
                f"{version} is deprecated and cannot be released",
                hint="release another prerelease of this model; a deprecated version stays as it "
                "is",
            )
        runs = _finished_runs(conn, row.id)
        if not runs:
            raise ConflictError(
                f"{version} has no finished training run to serve",
                hint="train it first: project.run(...) with this version",
            )
        serving = row.serving_run
        if serving is None:
            serving = best_run(runs, model.primary_metric, model.metric_goal)
        return model, row, int(serving)

    def _released_as(
        self, conn: sa.Connection, model_id: int, row: Any, version: Version
    ) -> Version | None:
        """The release made from the prerelease ``row`` (None: not released)."""
        import sqlalchemy as sa

        v = t.versions.c
        done = conn.execute(
            sa.select(v.x, v.y, v.z, v.data, v.split)
            .where(v.model_id == model_id, v.released_from == row.id)
            .order_by(v.x)
        ).first()
        if done is None:
            return None
        return Version._trusted(version.name, done.x, done.y, done.z, done.data, done.split)

    def require_unreleased(self, version: Version) -> None:
        """Refuse (ConflictError) when the prerelease ``version`` has a release already."""

        def check(conn: sa.Connection) -> None:
            model, row = self._require_version(conn, version, lock=False)
            released = self._released_as(conn, model.id, row, version)
            if released is not None:
                raise _released_already(version, released)

        self._read(check)

    def serving_run(self, version: Version) -> int:
        """The run number releasing the prerelease ``version`` now would serve."""
        return self._read(lambda conn: self._serving(conn, version)[2])

    def release_version(
        self,
        version: Version,
        *,
        serving: int,
        major: bool,
        verified: list[str],
        overrides: list[str] | None = None,
    ) -> VersionInfo:
        """Create the release of ``version`` serving run ``serving``; audited with ``verified``
        and the ``[release]`` policy ``overrides`` that let it through (kept in its meta)."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> Version:
            model, row, _best_now = self._serving(conn, version)
            # Runs finished since the verify may be "better" now; the release still
            # serves the run it verified. Only an explicit choice of another run
            # (dmv select) in the meantime contradicts it.
            if row.serving_run is not None and int(row.serving_run) != serving:
                raise ConflictError(
                    f"{version} was set to serve tr{row.serving_run} "
                    f"while tr{serving} was verified",
                    hint="another process selected a run meanwhile; release again",
                )
            done = self._released_as(conn, model.id, row, version)
            if done is not None:
                raise _released_already(version, done)
            generation = max(model.generation, 1) + (1 if major and model.generation else 0)
            released = version.with_release(generation)
            if self._version_row(conn, model.id, released) is not None:
                raise _released_already(version, released)
            now = time.time()
            conn.execute(
                sa.insert(t.versions).values(
                    model_id=model.id,
                    x=released.x,
                    y=released.y,
                    z=released.z,
                    data=released.data,
                    split=released.split,
                    state="released",
                    interface_fp=row.interface_fp,
                    logic_fp=row.logic_fp,
                    interface=row.interface,
                    interface_compat=row.interface_compat,
                    logic=row.logic,
                    dirty=row.dirty,
                    released_from=row.id,
                    serving_run=serving,
                    meta={**(row.meta or {}), OVERRIDES_KEY: overrides} if overrides else row.meta,
                    created_at=now,
                )
            )
            if generation != model.generation:
                conn.execute(
                    sa.update(t.models)
                    .where(t.models.c.id == model.id)
                    .values(generation=generation)
                )
            self._audit(
                conn,
                "version.release",
                version.name,
                released.number,
                {
                    "from": version.number,
                    "serving_run": f"tr{serving}",
                    "generation": generation,
                    "verified": verified,
                    **({"overrides": overrides} if overrides else {}),
                },
            )
            return released

        released: Version = self._write(write)
        return self.get_version(released)

    def select_run(self, version: Version, run_id: str) -> VersionInfo:
        """Choose the training run (``trN``) a prerelease will serve once released; audited."""
        import sqlalchemy as sa

        kind, number = parse_run_id(run_id)
        if kind != "training":
            raise ConflictError(
                f"{run_id} is an experiment; a version serves a training run (trN)",
                hint="promote the experiment first ('dmv promote MODEL exN'), then select its "
                "training run",
            )

        def write(conn: sa.Connection) -> None:
            _, row = self._require_version(conn, version, lock=True)
            if row.state != "prerelease":
                raise _immutable(version, row.state, "the run it serves cannot change")
            if number not in {n for n, _ in _finished_runs(conn, row.id)}:
                raise NotFound(
                    f"{version} has no finished run {run_id}",
                    hint=f"list its runs with 'dmv runs {version}'",
                )
            conn.execute(
                sa.update(t.versions).where(t.versions.c.id == row.id).values(serving_run=number)
            )
            self._audit(conn, "version.select", version.name, version.number, {"run": run_id})

        self._write(write)
        return self.get_version(version)

    def deprecate_version(self, version: Version, *, reason: str = "") -> VersionInfo:
        """Mark a version deprecated (refused while an alias points at it); audited."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> None:
            _, row = self._require_version(conn, version, lock=True)
            if row.state == "deprecated":
                return
            aliased = (
                conn.execute(sa.select(t.aliases.c.alias).where(t.aliases.c.version_id == row.id))
                .scalars()
                .all()
            )
            if aliased:
                raise ConflictError(
                    f"{version} is still {', '.join(aliased)}",
                    hint="move the alias first: dmv alias set REF ALIAS",
                )
            conn.execute(
                sa.update(t.versions).where(t.versions.c.id == row.id).values(state="deprecated")
            )
            self._audit(conn, "version.deprecate", version.name, version.number, {"reason": reason})

        self._write(write)
        return self.get_version(version)

    def _deletable(self, conn: sa.Connection, version: Version, *, lock: bool) -> Any:
        """The row of the prerelease ``version`` if it may be deleted; else the refusal."""
        import sqlalchemy as sa

        model, row = self._require_version(conn, version, lock=lock)
        if row.state != "prerelease":
            raise _immutable(version, row.state, "it cannot be deleted")
        released = self._released_as(conn, model.id, row, version)
        if released is not None:
            raise _immutable(version, f"released as {released.number}", "it cannot be deleted")
        if conn.execute(
            sa.select(t.aliases.c.alias).where(t.aliases.c.version_id == row.id)
        ).first():
            raise ConflictError(
                f"{version} has an alias; remove it first",
                hint="dmv alias list shows it; dmv alias rm MODEL ALIAS removes it",
            )
        return row

    def check_deletable(self, version: Version) -> None:
        """Refuse now, as :meth:`delete_version` would, without deleting anything."""
        self._read(lambda conn: self._deletable(conn, version, lock=False))

    def delete_version(self, version: Version) -> None:
        """Delete a prerelease and its runs (its blobs stay for fsck to collect); audited."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> None:
            row = self._deletable(conn, version, lock=True)
            run_ids = sa.select(t.runs.c.id).where(t.runs.c.version_id == row.id)
            conn.execute(sa.delete(t.artifacts).where(t.artifacts.c.run_id.in_(run_ids)))
            conn.execute(sa.delete(t.metric_history).where(t.metric_history.c.run_id.in_(run_ids)))
            conn.execute(sa.delete(t.runs).where(t.runs.c.version_id == row.id))
            # its prediction runs go with it (their output tables stay in the warehouse)
            pred = t.prediction_runs.c
            conn.execute(sa.delete(t.prediction_runs).where(pred.version_id == row.id))
            conn.execute(sa.delete(t.versions).where(t.versions.c.id == row.id))
            # Its evaluations and approvals go with it: a later version given the same
            # number is another model and inherits neither.
            for table in (t.evaluations, t.approvals):
                conn.execute(
                    sa.delete(table).where(
                        table.c.model == version.name, table.c.version == version.number
                    )
                )
            self._audit(conn, "version.delete", version.name, version.number)

        self._write(write)
