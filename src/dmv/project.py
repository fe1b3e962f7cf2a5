"""The :class:`Project`: one facade method per operation, over the project's stores.

The CLI, the server and the tests all call these methods; none of them prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dmv.config import Config, find_root, write_config
from dmv.errors import NotFound
from dmv.facade.code import CodeMixin
from dmv.facade.data import DataMixin
from dmv.facade.files import FilesMixin
from dmv.facade.models import ModelsMixin
from dmv.facade.predictions import PredictionsMixin
from dmv.facade.releases import ReleasesMixin
from dmv.facade.review import ReviewMixin
from dmv.facade.signing import SigningMixin
from dmv.facade.training import TrainingMixin
from dmv.facade.upkeep import UpkeepMixin
from dmv.facade.versions import VersionsMixin
from dmv.facade.webhooks import WebhooksMixin
from dmv.stores import Stores

__all__ = ["Project", "init", "open_project"]


def init(path: str | os.PathLike[str] = ".", **settings: Any) -> Project:
    """Make ``path`` a dmv project (``dmv.toml`` and ``.dmv/``); safe to repeat.

    ``settings`` (``registry=``, ``artifacts=``, ``warehouse=``, …) are written to a
    new ``dmv.toml``; an existing one is left as it is.
    """
    root = Path(path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    write_config(root, settings)
    (root / ".dmv").mkdir(exist_ok=True)
    gitignore = root / ".dmv" / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n", encoding="utf-8")
    project = Project(root, **settings)
    _ = project.registry  # create the registry now, so errors surface at init
    return project


def open_project(path: str | os.PathLike[str] = ".", **settings: Any) -> Project:
    """The project whose ``dmv.toml`` is at or above ``path``."""
    root = find_root(path)
    if root is None:
        raise NotFound(
            f"no dmv project at or above {Path(path).resolve()}",
            hint="create one with 'dmv init' (or dmv.init(path) in Python)",
        )
    return Project(root, **settings)


class Project(
    ModelsMixin,
    VersionsMixin,
    TrainingMixin,
    DataMixin,
    ReleasesMixin,
    SigningMixin,
    CodeMixin,
    FilesMixin,
    PredictionsMixin,
    UpkeepMixin,
    WebhooksMixin,
    ReviewMixin,
):
    """A dmv project: its registry, artifact store and warehouse.

    The methods are grouped by what they act on, one mixin each in :mod:`dmv.facade`:
    models and aliases, versions, training, data, releases, code, model files, upkeep,
    webhooks, review.
    """

    def __init__(self, root: str | os.PathLike[str], **settings: Any) -> None:
        self.root = Path(root).resolve()
        self.config = Config(self.root, settings)
        #: The settings and stores the operations below the facade are given.
        self.stores = Stores(self.root, self.config)

    def __repr__(self) -> str:
        return f"<dmv.Project {self.root}>"

    def close(self) -> None:
        """Close the registry; using the project again opens it anew."""
        self.stores.reopen()
