"""Which run a version serves, its model file, and what kind of file that is.

The one rule: the run chosen for the version (its serving run) when there is one;
otherwise, for serving, the newest run that logged a model, and for reading the
version's records (its code, metrics, environment), the newest finished run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import NotFound
from dmv.flavors import is_unsafe
from dmv.flavors.stored import load_stored

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.flavors import Model
    from dmv.registry import ArtifactInfo, RegistryStore, RunInfo, VersionInfo

__all__ = ["chosen_run", "load_served", "model_artifact", "model_file", "selected_run"]


def selected_run(registry: RegistryStore, info: VersionInfo) -> RunInfo | None:
    """The run a version serves, else its newest finished run (None: no finished run)."""
    return chosen_run(info, registry.list_runs(info.version))


def chosen_run(info: VersionInfo, runs: Sequence[RunInfo]) -> RunInfo | None:
    """:func:`selected_run` over runs already read: the serving run if it finished, else the
    newest finished run."""
    finished = [r for r in runs if r.status == "finished"]
    chosen = next((r for r in finished if r.id == info.serving_run), None)
    return chosen or (finished[-1] if finished else None)


def model_artifact(
    registry: RegistryStore, info: VersionInfo, run_id: str | None
) -> tuple[RunInfo, ArtifactInfo]:
    """The run (``run_id``, else the serving run, else the newest with a model) and its model."""
    runs = registry.list_runs(info.version)
    if not runs:
        raise NotFound(
            f"{info.version} has no training run",
            hint="train it first: runs register under the version with project.run",
        )
    wanted = run_id or info.serving_run
    if wanted is None:
        # No run chosen: the newest run that logged a model.
        with_model = [r for r in runs if any(a.kind == "model" for a in r.artifacts)]
        wanted = with_model[-1].id if with_model else runs[-1].id
    run = next((r for r in runs if r.id == wanted), None)
    if run is None:
        raise NotFound(
            f"{info.version} has no run {wanted}",
            hint=f"list its runs with 'dmv runs {info.version}'",
        )
    art = next((a for a in run.artifacts if a.kind == "model"), None)
    if art is None:
        raise NotFound(
            f"{info.version} {run.id} logged no model",
            hint="log the model with run.log_model in that run, or select another run with 'dmv "
            "select'",
        )
    return run, art


def model_file(registry: RegistryStore, info: VersionInfo, run_id: str | None) -> dict[str, Any]:
    """The served model file's kind: flavor, format and whether it is ``unsafe-format``."""
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


def load_served(
    registry: RegistryStore,
    store: ArtifactStore,
    info: VersionInfo,
    run_id: str | None,
    *,
    trust_pickle: bool,
) -> Model:
    """The model a version serves (or of run ``run_id``), loaded after its hash is verified."""
    run, art = model_artifact(registry, info, run_id)
    return load_stored(store, info, run.id, art, trust_pickle=trust_pickle)
