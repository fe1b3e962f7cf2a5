"""The model repository: models, versions, training runs, aliases and the audit log.

:class:`Registry` is the one public class. Its parts live one noun per module,
each a mixin over :class:`~dmv.registry.core.RegistryCore` (the connection,
transactions, the audit write and the shared row lookups):

* :mod:`dmv.registry.models`: create, update, get and list models;
* :mod:`dmv.registry.versions`: register, resolve and list versions;
* :mod:`dmv.registry.runs`: commit runs and read them back;
* :mod:`dmv.registry.aliases`: set, move, remove and list aliases;
* :mod:`dmv.registry.audit`: read the audit log.

On a SQLite file the hot paths (create a version, resolve a reference, list a
model's versions, move an alias) run as plain SQL on ``sqlite3`` (see
:mod:`dmv.registry.fast`); PostgreSQL runs the same logic through SQLAlchemy.
"""

from __future__ import annotations

from dmv.registry.aliases import AliasesMixin
from dmv.registry.audit import AuditMixin
from dmv.registry.models import ModelsMixin
from dmv.registry.runs import NewArtifact, NewRun, RunsMixin, parse_run_id
from dmv.registry.versions import VersionsMixin

__all__ = ["NewArtifact", "NewRun", "Registry", "parse_run_id"]


class Registry(ModelsMixin, VersionsMixin, RunsMixin, AliasesMixin, AuditMixin):
    """The model repository behind one project (SQLite file or PostgreSQL)."""
