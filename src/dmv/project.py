"""The :class:`Project`: one facade method per operation, over the project's stores.

The CLI, the server and the tests all call these methods; none of them prints.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.config import Config, find_root, write_config
from dmv.errors import ConflictError, InvalidInput, NotFound
from dmv.limits import MAX_REASON, check_model_fields, check_text
from dmv.version import Reference, Version, check_data_id, check_name

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.data.catalog import QueryInfo, SplitInfo
    from dmv.data.leakage import LeakageReport
    from dmv.fsck import FsckReport
    from dmv.interface import Interface, InterfaceDiff
    from dmv.logic import LogicInfo
    from dmv.registry import (
        AliasInfo,
        AuditEntry,
        ModelInfo,
        NewRun,
        Registry,
        RunInfo,
        VersionInfo,
    )
    from dmv.reproduce import Report
    from dmv.runs import Run
    from dmv.tree import Tree

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


def _parse_data(data: str) -> tuple[str, str]:
    head, dot, tail = data.partition(".")
    if not dot:
        raise InvalidInput(f"data {data!r} must be DATA.SPLIT, e.g. '0123.abcd'")
    return check_data_id(head, "DATA"), check_data_id(tail, "SPLIT")


class Project:
    """A dmv project: its registry, artifact store and warehouse."""

    def __init__(self, root: str | os.PathLike[str], **settings: Any) -> None:
        self.root = Path(root).resolve()
        self.config = Config(self.root, settings)

    def __repr__(self) -> str:
        return f"<dmv.Project {self.root}>"

    @cached_property
    def registry(self) -> Registry:
        from dmv.registry import Registry

        return Registry(self.config.location("registry"), actor=self.config["actor"] or None)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from dmv.artifacts import ArtifactStore

        return ArtifactStore(self.config.location("artifacts"))

    def close(self) -> None:
        if "registry" in self.__dict__:
            self.registry.close()

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
            with warehouse(self) as wh:
                for table in summary["tables"]:
                    wh.drop_table(table)
        kept = self.registry.referenced_digests(summary["digests"])
        removed = [d for d in summary["digests"] if d not in kept]
        for digest in removed:
            self.artifacts.remove(digest)
        return {**summary, "blobs_removed": len(removed), "blobs_kept": len(kept)}

    def _refuse_archived(self, model: str) -> None:
        if self.registry.is_archived(model):
            raise ConflictError(
                f"model {model} is archived: it takes no new runs",
                hint=f"bring it back first: dmv model unarchive {model}",
            )

    def model(self, name: str) -> ModelInfo:
        return self.registry.get_model(check_name(name))

    # -- versions -----------------------------------------------------------

    def versions(self, model: str, *, state: str | None = None) -> list[VersionInfo]:
        """A model's versions in dmv's precedence (X, Y, Z, then creation time)."""
        return self.registry.list_versions(check_name(model), state=state)

    def show(self, ref: str | Reference | Version) -> VersionInfo:
        """Everything the registry knows of the version ``ref`` points at."""
        return self.registry.resolve(_as_ref(ref))

    def explain(self, ref: str | Reference | Version) -> dict[str, Any]:
        """The version ``ref`` points at, explained part by part (what ``dmv show`` prints):
        its parts, metrics per split over its runs, params, code, data, serving run, release."""
        from dmv.explain import explain

        return explain(self, self.show(ref))

    def resolve(self, ref: str | Reference | Version) -> Version:
        """The exact version ``ref`` points at now."""
        return self.show(ref).version

    def runs(self, ref: str | Reference | Version) -> list[RunInfo]:
        """The training runs (tr0, tr1, …) of a version, each with its evaluation."""
        return self.registry.list_runs(self.resolve(ref))

    def get_run(self, ref: str | Reference | Version, run_id: str) -> RunInfo:
        return self.registry.get_run(_model_of(ref), run_id, self.resolve(ref))

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
            report = verify(self, version.ref, trust_pickle="pickle" in self.config["trust"])
            info = release.release(
                self.registry, version, verified=report, serving=serving, major=major
            )
            if lin:
                lineage.hook(lambda: lin.version(info, info.serving_run, output=True))
        return info

    def select_run(self, ref: str | Reference | Version, run_id: str) -> VersionInfo:
        """Choose which training run (``trN``) the prerelease ``ref`` serves once released."""
        from dmv import release

        return release.select_run(self.registry, self.resolve(ref), run_id)

    def deprecate(self, ref: str | Reference | Version, *, reason: str = "") -> VersionInfo:
        """Deprecate a version: exact references still work, every other one skips it."""
        from dmv import release

        check_text(reason, "reason", MAX_REASON)
        return release.deprecate(self.registry, self.resolve(ref), reason=reason)

    def delete_version(self, ref: str | Reference | Version) -> None:
        """Delete a prerelease that was never released, with its runs."""
        from dmv import release

        release.delete_version(self.registry, self.resolve(ref))

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
                self, model, sql=sql, source=source, params=params, data_id=id
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

        return catalog.register_files(self, model, files, labels=labels, data_id=id)

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
        progress: Any = None,
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
            info = catalog.store(
                self,
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

        return catalog.list_queries(self, model)

    def data_splits(self, model: str, data: str | None = None) -> list[SplitInfo]:
        from dmv.data import catalog

        return catalog.list_splits(self, model, data)

    def data_show(self, model: str, data: str) -> QueryInfo:
        from dmv.data import catalog

        return catalog.get_query(self, model, data)

    def split_info(
        self, model: str | Version, data: str | None = None, split: str | None = None
    ) -> SplitInfo:
        """A stored split, named by model, DATA and SPLIT, or by a version trained on it."""
        from dmv.data import catalog

        if isinstance(model, Version):
            return catalog.get_split(self, model.name, model.data, model.split)
        d, s = _parse_data(data) if split is None and data else (data, split)
        if d is None or s is None:
            raise InvalidInput("name the split as DATA.SPLIT")
        return catalog.get_split(self, model, d, s)

    def data_check(self, model: str, ref: str) -> LeakageReport:
        """Re-run the leakage checks on a stored split (``DATA.SPLIT``)."""
        from dmv.data.catalog import warehouse
        from dmv.data.leakage import check_leakage

        info = self.split_info(model, ref)
        with warehouse(self) as wh:
            return check_leakage(wh, info.split_result())

    def data_verify(self, model: str, ref: str, *, against_source: bool = False) -> dict[str, Any]:
        """Recompute a stored split's fingerprints; optionally re-run its retrieval too."""
        from dmv.data.checks import source_matches, verify_split

        d, s = _parse_data(ref)
        report = verify_split(self, model, d, s)
        if against_source:
            report["source"] = source_matches(self, model, d, s)
        return report

    def data_export(self, model: str, ref: str, part: str, out: str | os.PathLike[str]) -> Any:
        """Write one part of a stored split to a Parquet file."""
        from dmv.data.catalog import warehouse
        from dmv.data.export import export_part

        info = self.split_info(model, ref)
        with warehouse(self) as wh:
            return export_part(wh, info.table(part), os.fspath(out))

    def dataset(self, model: str, ref: str, part: str, *, format: str = "pandas") -> Any:
        """One part of a stored split as a pandas DataFrame (or ``format='arrow'``).

        The part is proven to match its recorded fingerprint first (IntegrityError if not).
        """
        from dmv.data.catalog import read_files, read_part

        info = self.split_info(model, ref)
        if info.result.get("kind") == "files":
            return read_files(self, info, part)
        return read_part(self, info, part, format)

    def data_drop(self, model: str, ref: str) -> None:
        """Delete a stored split that no version uses."""
        from dmv.data import catalog

        d, s = _parse_data(ref)
        catalog.drop(self, model, d, s)

    # -- interface, code and diff --------------------------------------------

    def interface(self, ref: str | Reference | Version) -> Interface:
        """The interface of the version ``ref`` points at."""
        from dmv.interface import Interface

        info = self.show(ref)
        if not info.interface:
            raise NotFound(
                f"{info.version} has no recorded interface",
                hint="versions registered with an explicit number and no interface= have none",
            )
        return Interface.from_dict(info.interface)

    def interface_diff(
        self, a: str | Reference | Version, b: str | Reference | Version
    ) -> InterfaceDiff:
        """Field-by-field changes from ``a`` to ``b``, each with its compatibility class."""
        from dmv.interface import diff_interfaces

        return diff_interfaces(self.interface(a), self.interface(b))

    def export_interface(self, ref: str | Reference | Version, fmt: str = "openapi") -> str:
        """The interface as an OpenAPI 3.1 document, JSON Schema or a proto3 file."""
        import json

        from dmv.interface import to_json_schema, to_openapi, to_proto

        iface, version = self.interface(ref), self.resolve(ref)
        if fmt == "openapi":
            return json.dumps(to_openapi(iface, version.name, version.number), indent=2)
        if fmt == "jsonschema":
            return json.dumps(to_json_schema(iface), indent=2)
        if fmt == "proto":
            return to_proto(iface, version.name)
        raise InvalidInput(f"unknown format {fmt!r}", hint="use openapi, jsonschema or proto")

    def diff(self, a: str | Reference | Version, b: str | Reference | Version) -> dict[str, Any]:
        """What changed from version ``a`` to version ``b``, component by component."""
        from dmv.diff import diff_versions

        return diff_versions(self, self.show(a), self.show(b))

    def code_commit(self, ref: str | Reference | Version) -> str:
        """The git commit the version's selected run was trained from."""
        from dmv.diff import selected_run

        info = self.show(ref)
        run = selected_run(self, info)
        commit = ((run.code or {}).get("commit") if run else None) or None
        if not commit:
            raise NotFound(
                f"{info.version} recorded no git commit",
                hint="train inside a git repository to link versions to code",
            )
        return str(commit)

    def tag(self, ref: str | Reference | Version) -> str:
        """Create the git tag ``name@X.Y.Z-DATA.SPLIT`` on the version's recorded commit."""
        from dmv.gitlink import create_tag, version_tag

        version = self.resolve(ref)
        commit = self.code_commit(version)
        name = version_tag(version)
        create_tag(self.root, commit, name, f"dmv: {version}")
        return name

    def checkout(self, ref: str | Reference | Version) -> str:
        """Check out the commit the version was trained from (refuses a dirty tree)."""
        from dmv.gitlink import checkout

        return checkout(self.root, self.code_commit(ref))

    def tree(self, model: str) -> Tree:
        """The model's versions staged as the pattern's diagram draws them."""
        from dmv.tree import build_tree

        versions = self.versions(model)
        runs: dict[str, list[str]] = {}
        promotions: list[tuple[str, str]] = []
        for v in versions:
            if v.version.x != 0:
                continue
            for r in self.registry.list_runs(v.version):
                runs.setdefault(v.version.number, []).append(r.id)
                promoted = (r.meta or {}).get("promoted_from")
                if isinstance(promoted, str):
                    promotions.append((promoted, v.version.number))
        for v in versions:
            if v.released_from:
                runs[v.version.number] = [v.serving_run] if v.serving_run else []
        return build_tree(model, versions, self.experiments(model), runs, promotions)

    def fsck(
        self, *, repair: bool = False, deep: bool = False, grace_seconds: float | None = None
    ) -> FsckReport:
        """Check every store; list or remove what a crash left behind (``deep``: re-hash all)."""
        from dmv.fsck import DEFAULT_GRACE_SECONDS, fsck

        grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        return fsck(self, repair=repair, deep=deep, grace_seconds=grace)

    def backup(self, dest: str | os.PathLike[str]) -> dict[str, Any]:
        """A consistent copy of registry, warehouse and artifacts in the new folder ``dest``."""
        from dmv.backup import backup

        return backup(self, dest)

    def restore(self, src: str | os.PathLike[str], *, force: bool = False) -> dict[str, Any]:
        """Replace this project's stores with the backup in ``src`` (``force``: over data)."""
        from dmv.backup import restore

        return restore(self, src, force=force)

    def verify(self, ref: str | Reference | Version, *, trust_pickle: bool = False) -> Report:
        """Re-check every hash and fingerprint the version stands on, and its behaviour.

        The behavioural check loads the model in a fresh process and predicts
        its recorded sample; a pickled model is loaded only with ``trust_pickle``.
        """
        from dmv.reproduce import verify

        return verify(self, str(_as_ref(ref)), trust_pickle=trust_pickle)

    def reproduce(
        self,
        ref: str | Reference | Version,
        *,
        tolerance: float = 1e-6,
        from_source: bool = False,
        timeout: float | None = None,
    ) -> Report:
        """Re-run the version's training from its recorded commit; a new run of it."""
        from dmv.reproduce import reproduce

        return reproduce(
            self, str(_as_ref(ref)), tolerance=tolerance, from_source=from_source, timeout=timeout
        )

    # -- aliases ------------------------------------------------------------

    def set_alias(self, ref: str | Reference | Version, alias: str) -> AliasInfo:
        """Point ``alias`` (e.g. ``production``) at the version ``ref`` resolves to."""
        # Resolved in the same write transaction that moves the alias.
        return self.registry.set_alias(_as_ref(ref), alias)

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
        check_name(model)
        self._refuse_archived(model)
        exact = self._explicit_version(model, version, data) if version is not None else None
        if exact is None:
            if data is None:
                raise InvalidInput(
                    "a derived version needs data='DATA.SPLIT'",
                    hint="pass the stored split the model trains on, or version='X.Y.Z-D.S'",
                )
            d, s = _parse_data(data)
            from dmv.data.catalog import require_stored

            require_stored(self, model, d, s)
        else:
            d, s = exact.data, exact.split
        from dmv.runs import Run

        run = Run(
            model=model,
            kind="training",
            store=self.artifacts,
            project=self,
            version=exact,
            data=d,
            split=s,
            params=params,
        )
        from dmv.integrations import lineage

        with lineage.track(self, "training", model, f"{model}.train") as lin:
            yield from self._finish(run, entry_point, code, interface, allow_dirty)
            # Nothing read through run.dataset: the whole split it names is its input.
            if lin:  # off: not even the records it would read
                lineage.hook(
                    lambda: lin.parts(self._stored(run), output=False, only=run.parts_read or None)
                )
            if lin:  # off: not even the records it would read
                lineage.hook(lambda: lin.version(self._registered(run), run.id, output=True))

    @contextmanager
    def experiment(
        self,
        model: str,
        *,
        data: str | None = None,
        params: Mapping[str, Any] | None = None,
        code: Sequence[str | os.PathLike[str]] | None = None,
        interface: Any = None,
        entry_point: str | None = None,
    ) -> Iterator[Run]:
        """An unnumbered experiment run, shown as ``x.x.x-DATA.SPLIT``; see :meth:`promote`."""
        check_name(model)
        self._refuse_archived(model)
        d, s = _parse_data(data) if data else (None, None)
        from dmv.runs import Run

        run = Run(
            model=model,
            kind="experiment",
            store=self.artifacts,
            project=self,
            data=d,
            split=s,
            params=params,
        )
        yield from self._finish(run, entry_point, code, interface, True)

    def _registered(self, run: Run) -> VersionInfo:
        assert run.info is not None and run.info.version is not None
        return self.show(run.info.version)

    def _stored(self, run: Run) -> SplitInfo:
        assert run.data is not None and run.split is not None
        return self.split_info(run.model, run.data, run.split)

    def _explicit_version(self, model: str, version: str | Version, data: str | None) -> Version:
        if isinstance(version, Version):
            exact = version
        elif " " in version or "@" in version:
            exact = Version.parse(version)
        else:
            exact = Version.parse_number(model, version)
        if exact.name != model:
            raise InvalidInput(f"version {exact} belongs to {exact.name}, not {model}")
        if exact.released:
            raise InvalidInput(
                f"{exact} is a release: runs register prereleases (X = 0)",
                hint=f"release a prerelease with 'dmv release {model}@0.{exact.y}.{exact.z}'",
            )
        if data is not None and _parse_data(data) != (exact.data, exact.split):
            raise InvalidInput(f"data={data!r} disagrees with version {exact.number}")
        return exact

    def _finish(
        self,
        run: Run,
        entry_point: str | None,
        code: Sequence[str | os.PathLike[str]] | None,
        interface: Any,
        allow_dirty: bool | None,
    ) -> Iterator[Run]:
        from dmv.gitlink import check_clean, git_info, git_patch
        from dmv.logic import capture_environment, logic_info
        from dmv.registry import NewArtifact, NewRun

        paths = [os.fspath(p) for p in code or ()]
        # The code is fingerprinted as it is when training starts.
        logic = logic_info(paths, self.root, {}, self.config["logic_components"])
        git = git_info(self.root, paths)
        allowed = self.config["allow_dirty"] if allow_dirty is None else allow_dirty
        dirty = check_clean(git, paths, allowed)
        if dirty:
            blob = self.artifacts.put_bytes(git_patch(self.root, paths))
            run.add_artifact(NewArtifact("code.patch", "patch", blob.digest, blob.size))
        new = NewRun(
            model=run.model,
            kind=run.kind,
            params=run.params,
            metrics=run.metrics,
            started_at=run.started_at,
            ended_at=run.started_at,
            version=run.version,
            data=run.data,
            split=run.split,
            entry_point=entry_point or _entry_point(),
            artifacts=run.artifacts,
            environment=capture_environment().to_dict(),
            code={
                **(git.to_dict() if git else {}),
                "paths": paths,
                "files": dict(logic.files),
                "cwd": os.path.relpath(os.getcwd(), self.root),
            },
            dirty=bool(dirty),
            meta=_run_meta_from_env(),
        )
        try:
            yield run
            self._complete(new, run, logic, interface)
        except BaseException as exc:
            new.status, new.version, new.derive = "failed", None, None
            new.intended = run.version.number if run.version else None
            new.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            new.ended_at = time.time()
            if isinstance(exc, Exception | KeyboardInterrupt):
                run.info = self.registry.commit_run(new)
            run.status = "failed"
            raise
        run.info = self.registry.commit_run(new)
        run.id, run.status = run.info.id, "finished"
        run.version = run.info.version

    def _complete(self, new: NewRun, run: Run, logic: LogicInfo, declared: Any) -> None:
        """Fill in what only the end of the block knows: params, interface, logic, version."""
        from dataclasses import replace

        from dmv.logic import hyperparameters_fingerprint
        from dmv.runs import deriver, interface_of

        new.params, new.metrics, new.ended_at = run.params, run.metrics, time.time()
        paths = list((new.code or {}).get("paths") or [])
        extra = [p for p in run.model_code if p not in paths]
        if extra:  # code stored with a model is logic too: it moves Z
            from dmv.logic import logic_info

            paths += extra
            logic = logic_info(paths, self.root, {}, self.config["logic_components"])
            new.code = {**(new.code or {}), "paths": paths, "files": dict(logic.files)}
        final = replace(logic, params=hyperparameters_fingerprint(run.params))
        iface = interface_of(run, declared)
        from dmv.flavors._check import check_logged

        for pending in run.pending_checks:  # before anything is registered
            check_logged(pending, iface)
        new.logic, new.logic_fp = final.to_dict(), final.fingerprint
        if iface is not None:
            new.interface, new.interface_fp = iface.to_dict(), iface.fingerprint
        if run.kind == "experiment":
            new.meta = {
                **(new.meta or {}),
                "interface": new.interface,
                "interface_fp": new.interface_fp,
                "logic": new.logic,
                "logic_fp": new.logic_fp,
            }
            return
        if run.version is None:
            if iface is None:
                raise InvalidInput(
                    f"cannot derive a version of {run.model}: its interface is unknown",
                    hint="pass interface=… to project.run, or call "
                    "run.log_model(model, sample_input=frame)",
                )
            assert run.data is not None and run.split is not None
            new.derive = deriver(run.model, iface, final.fingerprint, run.data, run.split)

    def promote(self, model: str, experiment: str | RunInfo) -> RunInfo:
        """Number an experiment: register it as a training run of its derived version."""
        from dmv.interface import Interface
        from dmv.registry import NewArtifact, NewRun
        from dmv.runs import deriver

        self._refuse_archived(check_name(model))
        ex = experiment
        if isinstance(ex, str):
            ex = self.registry.get_run(check_name(model), ex)
        if ex.kind != "experiment" or ex.status != "finished":
            raise InvalidInput(f"{ex.id} is not a finished experiment run")
        meta = ex.meta or {}
        if not ex.data or not ex.split:
            raise InvalidInput(
                f"experiment {ex.id} recorded no data: a version needs DATA.SPLIT",
                hint="run experiments with data='DATA.SPLIT' to promote them",
            )
        if not meta.get("interface"):
            raise InvalidInput(
                f"experiment {ex.id} recorded no interface",
                hint="log its model with sample_input=, or pass interface= to the experiment",
            )
        iface = Interface.from_dict(meta["interface"])
        new = NewRun(
            model=ex.model,
            kind="training",
            params=ex.params,
            metrics=ex.metrics,
            started_at=ex.started_at,
            ended_at=ex.ended_at or ex.started_at,
            data=ex.data,
            split=ex.split,
            environment=ex.environment,
            code=ex.code,
            entry_point=ex.entry_point,
            artifacts=[NewArtifact(a.name, a.kind, a.digest, a.size, a.meta) for a in ex.artifacts],
            interface=meta["interface"],
            interface_fp=meta["interface_fp"],
            logic=meta["logic"],
            logic_fp=meta["logic_fp"],
            meta={"promoted_from": ex.id},
            derive=deriver(ex.model, iface, meta["logic_fp"], ex.data, ex.split),
        )
        return self.registry.commit_run(new)

    # -- integrations: MLflow, model cards -------------------------------------

    def export_model(
        self,
        ref: str | Reference | Version,
        out: str | os.PathLike[str],
        *,
        format: str = "mlflow",
        trust_pickle: bool | None = None,
    ) -> dict[str, Any]:
        """Write the version as an MLflow model directory ``out`` (see docs/integrations.md)."""
        from dmv.integrations._about import about
        from dmv.integrations.mlflow_export import export_mlflow

        if format != "mlflow":
            raise InvalidInput(f"unknown export format {format!r}", hint="use mlflow")
        trust = "pickle" in self.config["trust"] if trust_pickle is None else trust_pickle
        return export_mlflow(about(self, ref), self.artifacts, out, trust_pickle=trust)

    def import_mlflow(
        self, tracking_uri: str, *, model: str | None = None, python: str | None = None
    ) -> dict[str, Any]:
        """Copy an MLflow registry's models, versions and aliases into this project."""
        from dmv.integrations.mlflow_import import import_registry

        return import_registry(self, tracking_uri, model=model, python=python)

    def card(self, ref: str | Reference | Version, *, format: str = "md") -> str:
        """A model card (Hugging Face-style YAML metadata + sections) for the version."""
        from dmv.integrations.card import render_card

        return render_card(self, ref, format=format)

    # -- models files ---------------------------------------------------------

    def load_model(
        self,
        ref: str | Reference | Version,
        run_id: str | None = None,
        *,
        trust_pickle: bool | None = None,
    ) -> Any:
        """The model object a version serves (or of one run), loaded after its hash is verified.

        The library's own object: a scikit-learn estimator, a LightGBM
        ``Booster``, an XGBoost model, a TorchScript module, or an object whose
        ``predict`` runs an ONNX model. A pickled model (``unsafe-format``) is
        loaded only with ``trust_pickle`` (default: the project's ``trust``).
        """
        return self.served_model(ref, run_id, trust_pickle=trust_pickle).native

    def model_file(
        self, ref: str | Reference | Version, run_id: str | None = None
    ) -> dict[str, Any]:
        """The served model file's kind: flavor, format and whether it is ``unsafe-format``."""
        from dmv.flavors import is_unsafe

        info = self.show(ref)
        run, art = self._model_artifact(info, run_id)
        meta = art.meta or {}
        return {
            "run": run.id,
            "name": art.name,
            "flavor": meta.get("flavor", "pickle"),
            "format": meta.get("format", "pickle"),
            "unsafe_format": is_unsafe(meta),
            "outputs": list(meta.get("outputs") or []),
        }

    def served_model(
        self,
        ref: str | Reference | Version,
        run_id: str | None = None,
        *,
        trust_pickle: bool | None = None,
    ) -> Any:
        """A :class:`dmv.flavors.Model`: the version's model as the server runs it."""
        from dmv.flavors._store import load_stored

        info = self.show(ref)
        run, art = self._model_artifact(info, run_id)
        trust = "pickle" in self.config["trust"] if trust_pickle is None else trust_pickle
        return load_stored(self.artifacts, info, run.id, art, trust_pickle=trust)

    def _model_artifact(self, info: VersionInfo, run_id: str | None) -> tuple[RunInfo, Any]:
        runs = self.registry.list_runs(info.version)
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


def _run_meta_from_env() -> dict[str, Any] | None:
    """Metadata a parent dmv process passes to runs it starts (``dmv reproduce``)."""
    import json

    from dmv.reproduce import RUN_META_ENV

    raw = os.environ.get(RUN_META_ENV)
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        raise InvalidInput(f"{RUN_META_ENV} is not JSON: {raw[:60]!r}") from None
    return meta if isinstance(meta, dict) else None


def _entry_point() -> str:
    """How this process was started, as a command line."""
    import shlex
    import sys

    argv = list(sys.argv)
    if argv and argv[0].endswith(".py"):
        argv = ["python", os.path.relpath(argv[0]), *argv[1:]]
    return shlex.join(argv) if argv and argv[0] else "python"


def _as_ref(ref: str | Reference | Version) -> Reference:
    if isinstance(ref, Reference):
        return ref
    if isinstance(ref, Version):
        return Reference.exact(ref)
    return Reference.parse(ref)


def _model_of(ref: str | Reference | Version) -> str:
    return _as_ref(ref).name
