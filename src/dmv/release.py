"""Release, run selection, deprecation and deletion; released versions never change.

Releasing the prerelease ``0.Y.Z-D.S`` creates ``N.Y.Z-D.S`` for the same
trained model, where N is the model's current release generation (1 for the
first release; ``major=True`` starts the next). The release serves one training
run of its prerelease: the one chosen with :func:`select_run`, else the best by
the model's primary metric, else the latest.

A release is a gate: it takes the :class:`~dmv.reproduce.Report` of a full
verify of the prerelease (model files and artifacts re-hashed, split parts
against their fingerprints, interface and logic records, and whatever else
verify checks) and refuses, listing the failed checks, unless every check
passed. There is no way around it: a damaged version is repaired or retrained,
never released.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, ImmutableError, IntegrityError, NotFound
from dmv.registry import schema as t
from dmv.version import Version

if TYPE_CHECKING:
    import sqlalchemy as sa

    from dmv.registry import Registry, VersionInfo
    from dmv.reproduce import Report

__all__ = [
    "METRIC_SPLITS",
    "best_run",
    "delete_version",
    "deprecate",
    "release",
    "require_verified",
    "select_run",
    "serving_run",
]

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


def _not_a_prerelease(version: Version) -> ConflictError:
    return ConflictError(
        f"{version} is a release already",
        hint=f"release a prerelease, e.g. {version.name}@0.{version.y}.{version.z}",
    )


def _serving(conn: sa.Connection, registry: Registry, version: Version) -> tuple[Any, Any, int]:
    model, row = registry._require_version(conn, version, lock=True)
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


def serving_run(registry: Registry, version: Version) -> int:
    """The run number releasing ``version`` now would serve (refusals as :func:`release`)."""
    if version.released:
        raise _not_a_prerelease(version)
    serving: int = registry._read(lambda conn: _serving(conn, registry, version)[2])
    return serving


def require_verified(report: Report) -> None:
    """Refuse, listing every failed check, unless ``report`` is a clean verify."""
    failed = [c for c in report.checks if c.status == "fail"]
    if not failed:
        return
    listed = "; ".join(f"{c.name}: {c.detail}" for c in failed)
    raise IntegrityError(
        f"{report.version} cannot be released: {len(failed)} check(s) failed: {listed}",
        hint="a release serves only what verifies; restore the damaged store from a backup "
        "('dmv restore'), or retrain and release a new prerelease ('dmv verify REF' shows "
        "every check)",
        failed=[c.to_dict() for c in failed],
    )


def release(
    registry: Registry,
    version: Version,
    *,
    verified: Report,
    serving: int,
    major: bool = False,
) -> VersionInfo:
    """Release the prerelease ``version``; returns the new released version.

    ``verified`` is a verify of ``version`` taken while it would serve run
    ``serving`` (:func:`serving_run`); the release is refused unless that verify
    passed, and it serves ``serving`` unless another run was selected since.
    """
    import sqlalchemy as sa

    if version.released:
        raise _not_a_prerelease(version)
    require_verified(verified)

    def write(conn: sa.Connection) -> Version:
        model, row, _best_now = _serving(conn, registry, version)
        # Runs finished since the verify may be "better" now; the release still
        # serves the run it verified. Only an explicit choice of another run
        # (dmv select) in the meantime contradicts it.
        if row.serving_run is not None and int(row.serving_run) != serving:
            raise ConflictError(
                f"{version} was set to serve tr{row.serving_run} while tr{serving} was verified",
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
        if existing is not None or registry._version_row(conn, model.id, released) is not None:
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
                sa.update(t.models).where(t.models.c.id == model.id).values(generation=generation)
            )
        registry._audit(
            conn,
            "version.release",
            version.name,
            released.number,
            {
                "from": version.number,
                "serving_run": f"tr{serving}",
                "generation": generation,
                "verified": [c.name for c in verified.checks if c.status == "ok"],
            },
        )
        return released

    released: Version = registry._write(write)
    return registry.get_version(released)


def select_run(registry: Registry, version: Version, run_id: str) -> VersionInfo:
    """Choose the training run a prerelease will serve once released."""
    import sqlalchemy as sa

    from dmv.registry.store import parse_run_id

    kind, number = parse_run_id(run_id)
    if kind != "training":
        raise ConflictError(f"{run_id} is an experiment; a version serves a training run (trN)")

    def write(conn: sa.Connection) -> None:
        _, row = registry._require_version(conn, version, lock=True)
        if row.state != "prerelease":
            raise _immutable(version, row.state, "the run it serves cannot change")
        if number not in {n for n, _ in _finished_runs(conn, row.id)}:
            raise NotFound(f"{version} has no finished run {run_id}")
        conn.execute(
            sa.update(t.versions).where(t.versions.c.id == row.id).values(serving_run=number)
        )
        registry._audit(conn, "version.select", version.name, version.number, {"run": run_id})

    registry._write(write)
    return registry.get_version(version)


def deprecate(registry: Registry, version: Version, *, reason: str = "") -> VersionInfo:
    """Mark a version deprecated: still resolvable exactly, skipped by every other reference."""
    import sqlalchemy as sa

    def write(conn: sa.Connection) -> None:
        _, row = registry._require_version(conn, version, lock=True)
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
        registry._audit(conn, "version.deprecate", version.name, version.number, {"reason": reason})

    registry._write(write)
    return registry.get_version(version)


def delete_version(registry: Registry, version: Version) -> None:
    """Delete a prerelease and its runs; released versions and their sources are immutable.

    The blobs stay in the artifact store until ``dmv fsck`` collects them.
    """
    import sqlalchemy as sa

    def write(conn: sa.Connection) -> None:
        _, row = registry._require_version(conn, version, lock=True)
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
        registry._audit(conn, "version.delete", version.name, version.number)

    registry._write(write)
