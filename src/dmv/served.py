"""Which run's model file a version serves, and what kind of file it is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmv.errors import NotFound

if TYPE_CHECKING:
    from dmv.registry import ArtifactInfo, Registry, RunInfo, VersionInfo

__all__ = ["model_artifact", "model_file"]


def model_artifact(
    registry: Registry, info: VersionInfo, run_id: str | None
) -> tuple[RunInfo, ArtifactInfo]:
    """The run (``run_id``, else the serving run, else the newest with a model) and its model."""
    runs = registry.list_runs(info.version)
    if not runs:
        raise NotFound(f"{info.version} has no training run")
    wanted = run_id or info.serving_run
    if wanted is None:
        # No run chosen: the newest run that logged a model.
        with_model = [r for r in runs if any(a.kind == "model" for a in r.artifacts)]
        wanted = with_model[-1].id if with_model else runs[-1].id
    run = next((r for r in runs if r.id == wanted), None)
    if run is None:
        raise NotFound(f"{info.version} has no run {wanted}")
    art = next((a for a in run.artifacts if a.kind == "model"), None)
    if art is None:
        raise NotFound(f"{info.version} {run.id} logged no model")
    return run, art


def model_file(registry: Registry, info: VersionInfo, run_id: str | None) -> dict[str, Any]:
    """The served model file's kind: flavor, format and whether it is ``unsafe-format``."""
    from dmv.flavors import is_unsafe

    run, art = model_artifact(registry, info, run_id)
    meta = art.meta or {}
    return {
        "run": run.id,
        "name": art.name,
        "flavor": meta.get("flavor", "pickle"),
        "format": meta.get("format", "pickle"),
        "unsafe_format": is_unsafe(meta),
        "outputs": list(meta.get("outputs") or []),
    }
