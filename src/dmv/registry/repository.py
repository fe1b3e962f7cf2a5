"""The model repository: models, versions, runs, aliases, data, tokens, releases and audit.

:class:`Registry` is the one public class. Its parts live one noun per module,
each a mixin over :class:`~dmv.registry.core.RegistryCore` (the connection,
transactions, the audit write and the shared row lookups):

* :mod:`dmv.registry.models`: create, update, get and list models;
* :mod:`dmv.registry.versions`: register, resolve and list versions;
* :mod:`dmv.registry.runs`: commit runs and read them back;
* :mod:`dmv.registry.aliases`: set, move, remove and list aliases;
* :mod:`dmv.registry.releases`: release, select a run, deprecate, delete;
* :mod:`dmv.registry.data`: retrievals and stored splits;
* :mod:`dmv.registry.tokens`: API tokens;
* :mod:`dmv.registry.signatures`: release signatures (append-only);
* :mod:`dmv.registry.predictions`: batch prediction runs (append-only);
* :mod:`dmv.registry.audit`: read the audit log;
* :mod:`dmv.registry.webhooks`: the webhook outbox (claim, finish, list, redeliver);
* :mod:`dmv.registry.reviews`: evaluations on other splits, and approvals.

Every statement on the registry's tables is in these modules. The hot ones
(:mod:`dmv.registry.statements`) run through SQLAlchemy, or on a SQLite file
compiled to plain SQL on ``sqlite3`` (:mod:`dmv.registry.compiled`).
"""

from __future__ import annotations

from dmv.registry.aliases import AliasesMixin
from dmv.registry.audit import AuditMixin
from dmv.registry.data import DataMixin
from dmv.registry.models import ModelsMixin
from dmv.registry.predictions import PredictionsMixin
from dmv.registry.releases import ReleasesMixin
from dmv.registry.reviews import ReviewsMixin
from dmv.registry.runs import RunsMixin
from dmv.registry.signatures import SignaturesMixin
from dmv.registry.tokens import TokensMixin
from dmv.registry.versions import VersionsMixin
from dmv.registry.webhooks import WebhooksMixin

__all__ = ["Registry"]


class Registry(
    ModelsMixin,
    ReleasesMixin,
    VersionsMixin,
    RunsMixin,
    AliasesMixin,
    DataMixin,
    TokensMixin,
    SignaturesMixin,
    PredictionsMixin,
    AuditMixin,
    WebhooksMixin,
    ReviewsMixin,
):
    """The model repository behind one project (SQLite file or PostgreSQL)."""
