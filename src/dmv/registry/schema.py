"""The model repository's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Times are UTC seconds since the epoch (``created_at``): cheap to store, sort and
compare on every engine. JSON columns hold documents dmv reads whole.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "SCHEMA_VERSION",
    "aliases",
    "approvals",
    "artifacts",
    "audit",
    "data_queries",
    "evaluations",
    "metadata",
    "metric_history",
    "models",
    "prediction_runs",
    "runs",
    "schema_info",
    "signatures",
    "splits",
    "tokens",
    "versions",
    "webhook_outbox",
]

#: Bumped with every migration in :mod:`dmv.registry.migrations`.
SCHEMA_VERSION = 7

metadata = sa.MetaData()

schema_info = sa.Table(
    "dmv_schema",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("purpose", sa.Text, nullable=False, default=""),
    sa.Column("function", sa.Text, nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False, default=""),
    # The metric that picks the best training run of a version, and its direction.
    sa.Column("primary_metric", sa.String(128)),
    sa.Column("metric_goal", sa.String(3), nullable=False, default="max"),
    # The current release generation N: releasing 0.Y.Z-D.S creates N.Y.Z-D.S.
    sa.Column("generation", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.Double, nullable=False),
    # Bumped in the same transaction by every write that touches the model (the
    # audit entry every write appends does it), so a reader can tell with one
    # tiny query whether anything of the model changed since it last looked.
    sa.Column("seq", sa.BigInteger, nullable=False, default=0, server_default="0"),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.ForeignKey("models.id"), nullable=False),
    sa.Column("x", sa.Integer, nullable=False),
    sa.Column("y", sa.Integer, nullable=False),
    sa.Column("z", sa.Integer, nullable=False),
    sa.Column("data", sa.String(32), nullable=False),
    sa.Column("split", sa.String(32), nullable=False),
    # prerelease | released | deprecated
    sa.Column("state", sa.String(16), nullable=False, default="prerelease"),
    sa.Column("interface_fp", sa.String(80)),
    sa.Column("logic_fp", sa.String(80)),
    sa.Column("interface", sa.JSON),
    sa.Column("interface_compat", sa.String(16)),
    sa.Column("logic", sa.JSON),
    sa.Column("dirty", sa.Boolean, nullable=False, default=False),
    # For a release: the prerelease it was made from; and the run it serves.
    sa.Column("released_from", sa.ForeignKey("versions.id")),
    sa.Column("serving_run", sa.Integer),
    sa.Column("meta", sa.JSON),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("model_id", "x", "y", "z", "data", "split", name="uq_version"),
)
sa.Index("ix_versions_order", versions.c.model_id, versions.c.x, versions.c.y, versions.c.z)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.ForeignKey("models.id"), nullable=False),
    # NULL for experiment runs and for failed runs, which belong to no version.
    sa.Column("version_id", sa.ForeignKey("versions.id")),
    # tr<number> within a version; ex<number> within a model for experiments.
    sa.Column("number", sa.Integer),
    sa.Column("kind", sa.String(16), nullable=False),  # training | experiment
    sa.Column("status", sa.String(16), nullable=False),  # finished | failed
    sa.Column("intended", sa.String(200)),  # the version a failed run aimed at
    sa.Column("data", sa.String(32)),
    sa.Column("split", sa.String(32)),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("environment", sa.JSON),
    sa.Column("code", sa.JSON),
    sa.Column("entry_point", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("meta", sa.JSON),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("ended_at", sa.Double),
    sa.UniqueConstraint("version_id", "number", name="uq_run_number"),
)
sa.Index("ix_runs_model", runs.c.model_id, runs.c.kind, runs.c.number)

metric_history = sa.Table(
    "metric_history",
    metadata,
    # Every value ``run.log_metric(name, value, step=…)`` logged, in order: a learning
    # curve. The run's ``metrics`` keep the last value of each; this keeps them all.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("split", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("logged_at", sa.Double, nullable=False),
    sa.Index("ix_metric_history_run", "run_id"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # model | file | patch | dataset
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("meta", sa.JSON),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("run_id", "name", name="uq_artifact_name"),
)
sa.Index("ix_artifacts_digest", artifacts.c.digest)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("version_id", sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.UniqueConstraint("model_id", "alias", name="uq_alias"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("model", sa.String(64)),
    sa.Column("target", sa.Text),
    sa.Column("details", sa.JSON),
)

data_queries = sa.Table(
    "data_queries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.ForeignKey("models.id"), nullable=False),
    sa.Column("data", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # sql | files
    sa.Column("definition", sa.JSON, nullable=False),  # never holds credentials
    sa.Column("columns", sa.JSON),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("model_id", "data", name="uq_data_query"),
)

splits = sa.Table(
    "splits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("query_id", sa.ForeignKey("data_queries.id"), nullable=False),
    sa.Column("split", sa.String(32), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("parts", sa.JSON, nullable=False),
    sa.Column("leakage", sa.JSON),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("query_id", "split", name="uq_split"),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("hash", sa.String(128), nullable=False, unique=True),
    sa.Column("scope", sa.String(16), nullable=False),  # read | write | admin
    sa.Column("model", sa.String(64)),  # limits the token to one model
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked_at", sa.Double),
)

#: Webhook deliveries waiting to go out, written in the same transaction as the change
#: they announce (one row per event and subscribed webhook), so a crash loses none.
webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery", sa.String(36), nullable=False, unique=True),  # X-Dmv-Delivery
    sa.Column("event_id", sa.String(36), nullable=False),  # the idempotency key
    sa.Column("event", sa.String(32), nullable=False),  # X-Dmv-Event: release, alias, …
    sa.Column("hook", sa.String(64), nullable=False),  # the [[webhooks]] entry's name
    sa.Column("model", sa.String(64)),
    sa.Column("body", sa.Text, nullable=False),  # the exact bytes signed and sent, as UTF-8
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.Double, nullable=False),
    # Who is delivering it now, and until when: another deliverer leaves it alone
    # until the lease ends (a deliverer killed mid-delivery frees it that way).
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", sa.Double),
    sa.Column("attempted_at", sa.Double),  # when the last attempt ended
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("delivered_at", sa.Double),
)
sa.Index("ix_webhook_outbox_due", webhook_outbox.c.status, webhook_outbox.c.next_at)
signatures = sa.Table(
    "signatures",
    metadata,
    # Append-only: signing a release adds a row, re-signing adds another; none is
    # ever changed. The bundle and the envelope are blobs in the artifact store.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version_id", sa.ForeignKey("versions.id"), nullable=False),
    # SHA-256 of the public key's PEM (SubjectPublicKeyInfo), as OpenSSF Model Signing
    # records it; which key that is, and whether it is trusted, is the project's config.
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("signer", sa.String(200), nullable=False),
    sa.Column("signed_at", sa.Double, nullable=False),
    sa.Column("bundle_digest", sa.String(80), nullable=False),
    sa.Column("bundle_size", sa.BigInteger, nullable=False),
    sa.Column("envelope_digest", sa.String(80), nullable=False),
    sa.Column("envelope_size", sa.BigInteger, nullable=False),
)
sa.Index("ix_signatures_version", signatures.c.version_id)

#: Batch predictions (``dmv predict``): which version and run scored which rows into
#: which output, with both fingerprints. Append-only: written once, when the output
#: is complete under its final name; a killed prediction writes no row.
prediction_runs = sa.Table(
    "prediction_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pred_id", sa.String(32), nullable=False, unique=True),
    sa.Column("version_id", sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("run_id", sa.String(16), nullable=False),  # the serving run that scored
    sa.Column("input_kind", sa.String(16), nullable=False),  # part | sql | file
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("input_fingerprint", sa.String(128), nullable=False),
    sa.Column("output_kind", sa.String(16), nullable=False),  # table | parquet
    sa.Column("output", sa.Text, nullable=False),
    sa.Column("output_fingerprint", sa.String(128), nullable=False),
    sa.Column("rejects", sa.Text),  # the rejects table or file, when rows were rejected
    sa.Column("rows_in", sa.BigInteger, nullable=False),
    sa.Column("rows_out", sa.BigInteger, nullable=False),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("details", sa.JSON),  # timings, columns, keys, engine, rejects fingerprint
)
sa.Index("ix_prediction_runs_version", prediction_runs.c.version_id)

evaluations = sa.Table(
    "evaluations",
    metadata,
    # A version's model measured on a stored split's part (``dmv evaluate``): never a
    # training run. Append-only; the newest row for (version, data, split, part) counts.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("version", sa.String(160), nullable=False),  # X.Y.Z-DATA.SPLIT
    sa.Column("run_id", sa.String(32), nullable=False),  # the run whose model was evaluated
    sa.Column("data", sa.String(32), nullable=False),
    sa.Column("split", sa.String(32), nullable=False),
    sa.Column("part", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("meta", sa.JSON),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)
sa.Index("ix_evaluations_version", evaluations.c.model, evaluations.c.version)

approvals = sa.Table(
    "approvals",
    metadata,
    # One row per approver of a version, never changed or removed.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("version", sa.String(160), nullable=False),  # X.Y.Z-DATA.SPLIT
    sa.Column("approver", sa.String(255), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),  # cli | api
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("model", "version", "approver", name="uq_approvals_approver"),
)
