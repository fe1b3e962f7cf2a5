"""dmv: data and model versioning for production machine learning.

Every model version is one self-explaining string, ``model-name X.Y.Z-DATA.SPLIT``:
release, interface, logic, data-retrieval version and stored-split version.

    import dmv
    project = dmv.open()                      # finds dmv.toml upwards
    with project.run("price-model", version="0.0.1-0123.abcd", params={...}) as run:
        run.log_metrics({"rmse": 3.2}, split="test")
        run.log_model(model)
    run.id, run.version                       # "tr0", Version(...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmv.errors import (
    ArtifactError,
    ConfigError,
    ConflictError,
    DataError,
    DmvError,
    ImmutableError,
    IntegrityError,
    InvalidInput,
    NotFound,
    StorageError,
)
from dmv.version import Reference, RefKind, Version

if TYPE_CHECKING:
    from dmv.project import Project, init
    from dmv.project import open_project as open
    from dmv.training import params
    from dmv.training.run import Run

from dmv._meta import __version__

__all__ = [
    "ArtifactError",
    "ConfigError",
    "ConflictError",
    "DataError",
    "DmvError",
    "ImmutableError",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "Project",
    "RefKind",
    "Reference",
    "Run",
    "StorageError",
    "Version",
    "__version__",
    "init",
    "open",
    "params",
]


def __getattr__(name: str) -> Any:
    # The facade imports every domain package: load it on first use, so that
    # `import dmv` is the errors and the version grammar only.
    if name in ("Project", "init"):
        from dmv import project  # lazy: the facade

        return getattr(project, name)
    if name == "open":
        from dmv.project import open_project  # lazy: the facade

        return open_project
    if name == "Run":
        from dmv.training.run import Run  # lazy: the facade

        return Run
    if name == "params":
        from dmv.training import params  # lazy: reads DMV_PARAMS

        return params
    raise AttributeError(f"module 'dmv' has no attribute {name!r}")
