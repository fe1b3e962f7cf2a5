"""The registry's release writes: release, run selection, deprecation and deletion.

The rules (what may be released, which run a release serves, what can no longer
change) are :mod:`dmv.release`'s to explain; the statements are here, each
write one audited transaction under the model's lock.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, ImmutableError, NotFound
from dmv.registry import schema as t
from dmv.registry.records import VersionInfo
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
            raise ConflictError(f"{version} is deprecated and cannot be released")
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

    def serving_run(self, version: Version) -> int:
        """The run number releasing the prerelease ``version`` now would serve."""
        return self._read(lambda conn: self._serving(conn, version)[2])

    def release_version(
        self, version: Version, *, serving: int, major: bool, verified: list[str]
    ) -> VersionInfo:
        """Create the release of ``version`` serving run ``serving``; audited with ``verified``."""
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
            generation = max(model.generation, 1) + (1 if major and model.generation else 0)
            released = version.with_release(generation)
            v = t.versions.c
            existing = conn.execute(
                sa.select(v.id).where(
                    v.model_id == model.id,
                    v.released_from == row.id,
                    v.x == generation,
                )
            ).first()
            if existing is not None or self._version_row(conn, model.id, released) is not None:
                raise ConflictError(
                    f"{version} is released already as {released}",
                    hint="use --major to start a new release generation",
                )
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
                    meta=row.meta,
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
                },
            )
            return released

        released: Version = self._write(write)
        return self.get_version(released)

    def select_run(self, version: Version, run_id: str) -> VersionInfo:
        """Choose the training run (``trN``) a prerelease will serve once released; audited."""
        import sqlalchemy as sa

        from dmv.registry.runs import parse_run_id

        kind, number = parse_run_id(run_id)
        if kind != "training":
            raise ConflictError(f"{run_id} is an experiment; a version serves a training run (trN)")

        def write(conn: sa.Connection) -> None:
            _, row = self._require_version(conn, version, lock=True)
            if row.state != "prerelease":
                raise _immutable(version, row.state, "the run it serves cannot change")
            if number not in {n for n, _ in _finished_runs(conn, row.id)}:
                raise NotFound(f"{version} has no finished run {run_id}")
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

    def delete_version(self, version: Version) -> None:
        """Delete a prerelease and its runs (its blobs stay for fsck to collect); audited."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> None:
            _, row = self._require_version(conn, version, lock=True)
            if row.state != "prerelease":
                raise _immutable(version, row.state, "it cannot be deleted")
            v = t.versions.c
            release_of = conn.execute(
                sa.select(v.x, v.y, v.z, v.data, v.split).where(v.released_from == row.id)
            ).first()
            if release_of is not None:
                released = f"{release_of.x}.{release_of.y}.{release_of.z}"
                raise _immutable(version, f"released as {released}", "it cannot be deleted")
            if conn.execute(
                sa.select(t.aliases.c.alias).where(t.aliases.c.version_id == row.id)
            ).first():
                raise ConflictError(f"{version} has an alias; remove it first")
            run_ids = sa.select(t.runs.c.id).where(t.runs.c.version_id == row.id)
            conn.execute(sa.delete(t.artifacts).where(t.artifacts.c.run_id.in_(run_ids)))
            conn.execute(sa.delete(t.runs).where(t.runs.c.version_id == row.id))
            conn.execute(sa.delete(t.versions).where(t.versions.c.id == row.id))
            self._audit(conn, "version.delete", version.name, version.number)

        self._write(write)
