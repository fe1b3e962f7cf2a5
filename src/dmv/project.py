"""The :class:`Project`: one facade method per operation, over the project's stores.

The CLI, the server and the tests all call these methods; none of them prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.config import Config, find_root, write_config
from dmv.context import Stores
from dmv.errors import InvalidInput, NotFound
from dmv.facade.code import CodeMixin
from dmv.facade.files import FilesMixin
from dmv.facade.proving import ProvingMixin
from dmv.facade.runs import ExperimentsMixin
from dmv.limits import check_model_fields
from dmv.version import Reference, Version, as_reference, check_name, parse_data_split

if TYPE_CHECKING:
    from dmv.context import DataAccess
    from dmv.data.catalog import QueryInfo, SplitInfo
    from dmv.data.export import ExportResult
    from dmv.data.leakage import LeakageReport
    from dmv.progress import Progress
    from dmv.registry import AliasInfo, AuditEntry, ModelInfo, RunInfo, VersionInfo
    from dmv.runs import Run

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


class Project(ProvingMixin, CodeMixin, ExperimentsMixin, FilesMixin):
    """A dmv project: its registry, artifact store and warehouse.

    The methods are grouped by noun: versions and data here, the rest in
    :mod:`dmv.facade` (proving, code, experiments, model files).
    """

    def __init__(self, root: str | os.PathLike[str], **settings: Any) -> None:
        self.root = Path(root).resolve()
        self.config = Config(self.root, settings)
        #: The settings and stores the operations below the facade are given.
        self.stores = Stores(self.root, self.config)

    def __repr__(self) -> str:
        return f"<dmv.Project {self.root}>"

    @cached_property
    def data_access(self) -> DataAccess:
        """The data operations domain code calls, bound to this project's warehouse."""
        from dmv.context import DataAccess
        from dmv.data import checks

        return DataAccess(
            query=self.data_show,
            split=lambda m, d, s: self.split_info(m, d, s),
            splits=self.data_splits,
            verify=self.data_verify,
            source_matches=lambda m, d, s: checks.source_matches(self.stores, m, d, s),
            split_checks=lambda v: checks.split_checks(self.stores, v),
            fsck_tables=lambda report, repair, grace: checks.fsck_tables(
                self.stores, report, repair=repair, grace_seconds=grace
            ),
            diff=lambda a, b: checks.data_diff(self.stores, a, b),
            read_part=lambda m, ref, part, fmt: self.dataset(m, ref, part, format=fmt),
        )

    def close(self) -> None:
        """Close the registry; using the project again opens it anew."""
        self.stores.reopen()

    # -- models -------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        purpose: str = "",
        function: str = "",
        description: str = "",
        primary_metric: str | None = None,
        metric_goal: str = "max",
        exist_ok: bool = False,
    ) -> ModelInfo:
        """Create a model, named by its value (purpose) or function."""
        check_model_fields(
            purpose=purpose,
            function=function,
            description=description,
            primary_metric=primary_metric,
        )
        return self.registry.create_model(
            name,
            purpose=purpose,
            function=function,
            description=description,
            primary_metric=primary_metric,
            metric_goal=metric_goal,
            exist_ok=exist_ok,
        )

    def update_model(self, name: str, **fields: Any) -> ModelInfo:
        check_model_fields(**fields)
        return self.registry.update_model(name, **fields)

    def models(self, *, include_archived: bool = False) -> list[ModelInfo]:
        """Every model by name; archived ones only with ``include_archived``."""
        return self.registry.list_models(include_archived=include_archived)

    def archive_model(self, name: str, *, archived: bool = True) -> ModelInfo:
        """Archive a model: hidden from listings, refusing new runs, every record kept
        (``archived=False`` brings it back). Audited."""
        return self.registry.set_archived(check_name(name), archived)

    def delete_model(self, name: str) -> dict[str, Any]:
        """Delete a model that was never released: its versions, runs, aliases, retrievals,
        stored splits (their warehouse tables) and the blobs nothing else refers to.

        The registry goes first, in one audited transaction; a crash after it leaves
        only orphans, which ``dmv fsck --repair`` removes.
        """
        from dmv.data.catalog import warehouse

        summary = self.registry.delete_model(check_name(name))
        if summary["tables"]:
            from dmv.data.shared import drop_split_tables

            with warehouse(self.stores) as wh:
                drop_split_tables(wh, summary["tables"])
        kept = self.registry.referenced_digests(summary["digests"])
        removed = [d for d in summary["digests"] if d not in kept]
        for digest in removed:
            self.artifacts.remove(digest)
        return {**summary, "blobs_removed": len(removed), "blobs_kept": len(kept)}

    def model(self, name: str) -> ModelInfo:
        return self.registry.get_model(check_name(name))

    # -- versions -----------------------------------------------------------

    def versions(self, model: str, *, state: str | None = None) -> list[VersionInfo]:
        """A model's versions in dmv's precedence (X, Y, Z, then creation time)."""
        return self.registry.list_versions(check_name(model), state=state)

    def explain(self, ref: str | Reference | Version) -> dict[str, Any]:
        """The version ``ref`` points at, explained part by part (what ``dmv show`` prints):
        its parts, metrics per split over its runs, params, code, data, serving run, release."""
        from dmv.explain import explain

        return explain(self.registry, self.data_access, self.show(ref))

    def runs(self, ref: str | Reference | Version) -> list[RunInfo]:
        """The training runs (tr0, tr1, …) of a version, each with its evaluation."""
        return self.registry.list_runs(self.resolve(ref))

    def get_run(self, ref: str | Reference | Version, run_id: str) -> RunInfo:
        return self.registry.get_run(as_reference(ref).name, run_id, self.resolve(ref))

    def experiments(self, model: str) -> list[RunInfo]:
        """A model's unnumbered experiment runs (``x.x.x-DATA.SPLIT``)."""
        return self.registry.list_model_runs(check_name(model), kind="experiment")

    def failed_runs(self, model: str) -> list[RunInfo]:
        return self.registry.list_model_runs(check_name(model), status="failed")

    # -- release ------------------------------------------------------------

    def release(self, ref: str | Reference | Version, *, major: bool = False) -> VersionInfo:
        """Release the prerelease ``ref`` as ``N.Y.Z-D.S`` (``major``: start generation N+1).

        Refused (IntegrityError) unless a full verify of the version passes.
        """
        from dmv import release
        from dmv.integrations import lineage
        from dmv.reproduce import verify

        version = self.resolve(ref)
        with lineage.track(self, "release", version.name, f"{version.name}.release") as lin:
            if lin:  # off: not even the records it would read
                lineage.hook(lambda: lin.version(self.show(version), None, output=False))
            serving = release.serving_run(self.registry, version)
            # The behavioural check loads the model as this project's trust allows.
            report = verify(
                self.stores,
                self.data_access,
                version.ref,
                trust_pickle=self.stores.trusts_pickle,
            )
            info = release.release(
                self.registry, version, verified=report, serving=serving, major=major
            )
            if lin:
                lineage.hook(lambda: lin.version(info, info.serving_run, output=True))
        return info

    # -- data: retrievals (DATA) and stored splits (SPLIT) ---------------------

    def data_query(
        self,
        model: str,
        *,
        sql: str | None = None,
        source: str | None = None,
        params: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> QueryInfo:
        """Register a retrieval method; returns it with its DATA id (``.data``).

        ``source`` defaults to the project's warehouse; any SQLAlchemy URL,
        DuckDB file or Parquet/CSV files work. The query is checked now.
        """
        from dmv.data import catalog
        from dmv.integrations import lineage

        with lineage.track(self, "retrieval", model, f"{model}.retrieval") as lin:
            info = catalog.register_query(
                self.stores, model, sql=sql, source=source, params=params, data_id=id
            )
            if lin:  # off: not even the records it would read
                lineage.hook(lambda: lin.sources(info))
        return info

    def data_files(
        self, model: str, files: str, *, labels: str | None = None, id: str | None = None
    ) -> QueryInfo:
        """Register a set of files (path, folder or glob, local or fsspec URL) as DATA.

        ``labels`` is a CSV with a ``path`` column and key columns, for key splits.
        """
        from dmv.data import catalog

        return catalog.register_files(self.stores, model, files, labels=labels, data_id=id)

    def data_split(
        self,
        model: str,
        data: str,
        *,
        by: str = "row",
        ratios: Mapping[str, float] | None = None,
        salt: str = "",
        id: str | None = None,
        strict: bool = False,
        allow_empty: bool = False,
        min_share: float | None = None,
        progress: Progress | None = None,
    ) -> SplitInfo:
        """Run retrieval ``data`` now and store its rows split into parts (``.split``).

        ``by`` is ``key:COLUMN``, ``group:COLUMN``, ``time:COLUMN`` or ``row``.
        The parts become warehouse tables ``<model>__<DATA>__<SPLIT>__<part>``.
        An empty part, or one below ``min_share`` of its ratio, is refused unless
        ``allow_empty``; ``strict`` also refuses leakage (see docs/data.md).
        """
        from dmv.data import catalog
        from dmv.integrations import lineage

        with lineage.track(self, "split", model, f"{model}.split") as lin:
            info = catalog.materialise(
                self.stores,
                model,
                data,
                by=by,
                ratios=ratios,
                salt=salt,
                split_id=id,
                strict=strict,
                allow_empty=allow_empty,
                min_share=min_share,
                progress=progress,
            )
            if lin:  # off: not even the records it would read
                lineage.hook(lambda: lin.sources(self.data_show(model, info.data)))
                lineage.hook(lambda: lin.parts(info, output=True))
        return info

    def data_queries(self, model: str) -> list[QueryInfo]:
        from dmv.data import catalog

        return catalog.list_queries(self.stores, model)

    def data_splits(self, model: str, data: str | None = None) -> list[SplitInfo]:
        from dmv.data import catalog

        return catalog.list_splits(self.stores, model, data)

    def data_show(self, model: str, data: str) -> QueryInfo:
        from dmv.data import catalog

        return catalog.get_query(self.stores, model, data)

    def split_info(
        self, model: str | Version, data: str | None = None, split: str | None = None
    ) -> SplitInfo:
        """A stored split, named by model, DATA and SPLIT, or by a version trained on it."""
        from dmv.data import catalog

        if isinstance(model, Version):
            return catalog.get_split(self.stores, model.name, model.data, model.split)
        d, s = parse_data_split(data) if split is None and data else (data, split)
        if d is None or s is None:
            raise InvalidInput("name the split as DATA.SPLIT")
        return catalog.get_split(self.stores, model, d, s)

    def data_check(self, model: str, ref: str) -> LeakageReport:
        """Re-run the leakage checks on a stored split (``DATA.SPLIT``)."""
        from dmv.data.catalog import warehouse
        from dmv.data.leakage import check_leakage

        info = self.split_info(model, ref)
        with warehouse(self.stores) as wh:
            return check_leakage(wh, info.split_result())

    def data_verify(
        self, model: str, ref: str, *, against_source: bool = False, full: bool = False
    ) -> dict[str, Any]:
        """Recompute a stored split's fingerprints (``full``: by md5 even where an engine
        check proves a part); optionally re-run its retrieval too."""
        from dmv.data.checks import source_matches, verify_split

        d, s = parse_data_split(ref)
        report = verify_split(self.stores, model, d, s, full=full)
        if against_source:
            report["source"] = source_matches(self.stores, model, d, s)
        return report

    def data_export(
        self, model: str, ref: str, part: str, out: str | os.PathLike[str]
    ) -> ExportResult:
        """Write one part of a stored split to a Parquet file."""
        from dmv.data.catalog import export_part

        info = self.split_info(model, ref)
        return export_part(self.stores, info, part, os.fspath(out))

    def dataset(self, model: str, ref: str, part: str, *, format: str = "pandas") -> Any:
        """One part of a stored split as a pandas DataFrame (or ``format='arrow'``).

        The part is proven to match its recorded fingerprint first (IntegrityError if not).
        """
        from dmv.data.catalog import read_files, read_part

        info = self.split_info(model, ref)
        if info.result.get("kind") == "files":
            return read_files(self.stores, info, part)
        return read_part(self.stores, info, part, format)

    def data_drop(self, model: str, ref: str) -> None:
        """Delete a stored split that no version uses."""
        from dmv.data import catalog

        d, s = parse_data_split(ref)
        catalog.drop(self.stores, model, d, s)

    # -- aliases ------------------------------------------------------------

    def set_alias(self, ref: str | Reference | Version, alias: str) -> AliasInfo:
        """Point ``alias`` (e.g. ``production``) at the version ``ref`` resolves to."""
        # Resolved in the same write transaction that moves the alias.
        return self.registry.set_alias(as_reference(ref), alias)

    def remove_alias(self, model: str, alias: str) -> None:
        self.registry.remove_alias(check_name(model), alias)

    def aliases(self, model: str) -> list[AliasInfo]:
        return self.registry.list_aliases(check_name(model))

    def audit(
        self, *, model: str | None = None, action: str | None = None, limit: int | None = 100
    ) -> list[AuditEntry]:
        """The audit log, newest first."""
        return self.registry.audit_log(model=model, action=action, limit=limit)

    # -- runs ---------------------------------------------------------------

    @contextmanager
    def run(
        self,
        model: str,
        version: str | Version | None = None,
        *,
        data: str | None = None,
        params: Mapping[str, Any] | None = None,
        code: Sequence[str | os.PathLike[str]] | None = None,
        interface: Any = None,
        entry_point: str | None = None,
        allow_dirty: bool | None = None,
    ) -> Iterator[Run]:
        """A training run of ``model``, registered as ``trN`` of its version when the block ends.

        Without ``version`` the version is *derived*: ``data`` (``DATA.SPLIT``)
        gives DATA and SPLIT, the interface (``interface=``, or inferred from
        ``run.log_model(model, sample_input=frame)``) gives Y, and the logic (the
        files under ``code``, the libraries they import, Python, ``params``)
        gives Z. An explicit ``version='X.Y.Z-DATA.SPLIT'`` registers a model
        made elsewhere. An exception inside the block records a failed run and
        registers nothing else.
        """
        from dmv import training
        from dmv.data.catalog import require_stored
        from dmv.integrations import lineage

        run = training.start(
            self.stores,
            model,
            "training",
            version=version,
            data=data,
            params=params,
            require_stored=lambda m, d, s: require_stored(self.stores, m, d, s),
            read_part=self.data_access.read_part,
        )
        with lineage.track(self, "training", model, f"{model}.train") as lin:
            yield from training.finish(self.stores, run, entry_point, code, interface, allow_dirty)
            # Nothing read through run.dataset: the whole split it names is its input.
            if lin:  # off: not even the records it would read
                lineage.hook(
                    lambda: lin.parts(self._stored(run), output=False, only=run.parts_read or None)
                )
            if lin:  # off: not even the records it would read
                lineage.hook(lambda: lin.version(self._registered(run), run.id, output=True))

    def _registered(self, run: Run) -> VersionInfo:
        assert run.info is not None and run.info.version is not None
        return self.show(run.info.version)

    def _stored(self, run: Run) -> SplitInfo:
        assert run.data is not None and run.split is not None
        return self.split_info(run.model, run.data, run.split)
