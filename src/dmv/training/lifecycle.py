"""The life of a training or experiment run: start, finish, register; promotion.

:func:`start` checks what the run names and builds its :class:`~dmv.training.run.Run`;
:func:`finish` is the body of ``with project.run(...)``: it fingerprints the
code when the block starts, yields the run, and registers it (or a failed run)
when the block ends. :func:`promote` numbers a finished experiment.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dmv.data.catalog import require_stored
from dmv.errors import ConflictError, InvalidInput
from dmv.flavors.check import check_logged
from dmv.interface import Interface
from dmv.logic.fingerprint import capture_environment, hyperparameters_fingerprint, logic_info
from dmv.logic.git import (
    BranchWarning,
    branch_mismatch,
    check_clean,
    git_identity,
    git_info,
    git_patch,
)
from dmv.registry import NewArtifact, NewRun
from dmv.training import RUN_META_ENV
from dmv.training.registration import deriver, interface_of
from dmv.training.run import Run
from dmv.version import Version, check_name, parse_data_split

if TYPE_CHECKING:
    from dmv.logic.fingerprint import LogicInfo
    from dmv.registry import RegistryStore, RunInfo
    from dmv.stores import Stores

__all__ = [
    "explicit_version",
    "finish",
    "promote",
    "refuse_archived",
    "split_of",
    "start",
    "version_of",
]


def refuse_archived(registry: RegistryStore, model: str) -> None:
    if registry.is_archived(model):
        raise ConflictError(
            f"model {model} is archived: it takes no new runs",
            hint=f"bring it back first: dmv model unarchive {model}",
        )


def start(
    stores: Stores,
    model: str,
    kind: str,
    *,
    version: str | Version | None = None,
    data: str | None = None,
    params: Mapping[str, Any] | None = None,
    read_part: Callable[[str, str, str, str, int | None], Any] | None = None,
) -> Run:
    """A new run of ``model``: checked, not yet registered.

    A training run needs an explicit ``version`` or ``data`` naming a stored
    split (refused unless it is stored); an experiment's data is optional.
    """

    check_name(model)
    refuse_archived(stores.registry, model)
    exact = explicit_version(model, version, data) if version is not None else None
    d: str | None
    s: str | None
    if exact is not None:
        d, s = exact.data, exact.split
    elif data is None:
        if kind == "training":
            raise InvalidInput(
                "a derived version needs data='DATA.SPLIT'",
                hint="pass the stored split the model trains on, or version='X.Y.Z-D.S'",
            )
        d, s = None, None
    else:
        d, s = parse_data_split(data)
        if kind == "training":
            require_stored(stores, model, d, s)
    reader: Callable[[str, str, int | None], Any] | None = None
    if read_part is not None and d is not None and s is not None:
        ref, read = f"{d}.{s}", read_part

        def reader(part: str, format: str, batch_size: int | None) -> Any:
            return read(model, ref, part, format, batch_size)

    return Run(
        model=model,
        kind=kind,
        store=stores.artifacts,
        root=stores.root,
        trust_pickle=stores.trusts_pickle,
        read_part=reader,
        version=exact,
        data=d,
        split=s,
        params=params,
    )


def explicit_version(model: str, version: str | Version, data: str | None) -> Version:
    """The prerelease ``version`` names for ``model`` (which ``data`` must agree with)."""
    if isinstance(version, Version):
        exact = version
    elif " " in version or "@" in version:
        exact = Version.parse(version)
    else:
        exact = Version.parse_number(model, version)
    if exact.name != model:
        raise InvalidInput(
            f"version {exact} belongs to {exact.name}, not {model}",
            hint=f"name a version of {model}, or run under model {exact.name!r}",
        )
    if exact.released:
        raise InvalidInput(
            f"{exact} is a release: runs register prereleases (X = 0)",
            hint=f"release a prerelease with 'dmv release {model}@0.{exact.y}.{exact.z}'",
        )
    if data is not None and parse_data_split(data) != (exact.data, exact.split):
        raise InvalidInput(
            f"data={data!r} disagrees with version {exact.number}",
            hint=f"leave data= out, or pass data='{exact.data}.{exact.split}'",
        )
    return exact


def finish(
    stores: Stores,
    run: Run,
    entry_point: str | None,
    code: Sequence[str | os.PathLike[str]] | None,
    interface: Any,
    allow_dirty: bool | None,
) -> Iterator[Run]:
    """Yield ``run`` to the training block, then register what it logged."""

    root = stores.root
    paths = [os.fspath(p) for p in code or ()]
    # The code is fingerprinted as it is when training starts.
    logic = logic_info(paths, root, {}, stores.config["logic_components"])
    git = git_info(root, paths)
    allowed = stores.config["allow_dirty"] if allow_dirty is None else allow_dirty
    dirty = check_clean(git, paths, allowed)
    if dirty:
        blob = stores.artifacts.put_bytes(git_patch(root, paths))
        run.add_artifact(NewArtifact("code.patch", "patch", blob.digest, blob.size))
    new = NewRun(
        model=run.model,
        kind=run.kind,
        params=run.params,
        metrics=run.metrics,
        history=run.history,
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
            # Who trained it: the one person who may not approve its release.
            **({"trainer": trainer} if git and (trainer := git_identity(root)) else {}),
            "paths": paths,
            "files": dict(logic.files),
            "cwd": os.path.relpath(os.getcwd(), root),
        },
        dirty=bool(dirty),
        meta=_run_meta_from_env(),
    )
    registry = stores.registry
    try:
        yield run
        _complete(stores, new, run, logic, interface)
    except BaseException as exc:
        new.status, new.version, new.derive = "failed", None, None
        new.intended = run.version.number if run.version else None
        new.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        new.ended_at = time.time()
        if isinstance(exc, Exception | KeyboardInterrupt):
            run.info = registry.commit_run(new)
        run.status = "failed"
        raise
    run.info = registry.commit_run(new)
    run.id, run.status = run.info.id, "finished"
    run.version = run.info.version
    _warn_on_another_versions_branch(stores, git.branch if git else None, run.info.version)


def _warn_on_another_versions_branch(stores: Stores, branch: str | None, v: Version | None) -> None:
    """Say so when the branch trained on is named for another version ([git] branch_pattern)."""
    if v is None or not branch_mismatch(branch, v, stores.config.branch_pattern):
        return
    warnings.warn(
        f"trained {v} on branch {branch!r}, which is named for another version; "
        "a version's branch holds the code it was trained from: train on a feature branch",
        BranchWarning,
        stacklevel=4,
    )


def _complete(stores: Stores, new: NewRun, run: Run, logic: LogicInfo, declared: Any) -> None:
    """Fill in what only the end of the block knows: params, interface, logic, version."""
    for stream in run.streams:  # a streamed part not read to its end is proven now
        stream.prove()
    new.params, new.metrics, new.ended_at = run.params, run.metrics, time.time()
    new.history = run.history
    paths = list((new.code or {}).get("paths") or [])
    extra = [p for p in run.model_code if p not in paths]
    if extra:  # code stored with a model is logic too: it moves Z
        paths += extra
        logic = logic_info(paths, stores.root, {}, stores.config["logic_components"])
        new.code = {**(new.code or {}), "paths": paths, "files": dict(logic.files)}
    final = replace(logic, params=hyperparameters_fingerprint(run.params))
    iface = interface_of(run, declared)
    nullable: list[str] | None = None
    for pending in run.pending_checks:  # before anything is registered
        probed = check_logged(pending, iface)
        if pending.sample_input is run.sample_input:  # the model the interface is of
            nullable = probed
    if iface is not None and declared is None and nullable is not None:
        # Required-ness is the model's answer, not the sample's: a declared interface wins.
        iface = iface.with_nullable(set(nullable))
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


def split_of(run: Run) -> tuple[str, str, str]:
    """The stored split a training run trains on: ``(model, DATA, SPLIT)``."""
    assert run.data is not None and run.split is not None
    return run.model, run.data, run.split


def version_of(run: Run) -> Version:
    """The version a finished run registered."""
    assert run.info is not None and run.info.version is not None
    return run.info.version


def promote(registry: RegistryStore, model: str, experiment: str | RunInfo) -> RunInfo:
    """Number an experiment: register it as a training run of its derived version."""

    refuse_archived(registry, check_name(model))
    ex = experiment
    if isinstance(ex, str):
        ex = registry.get_run(check_name(model), ex)
    if ex.kind != "experiment" or ex.status != "finished":
        raise InvalidInput(
            f"{ex.id} is not a finished experiment run",
            hint=f"list the experiments with 'dmv runs {model}'; promote one that finished",
        )
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
    return registry.commit_run(new)


def _run_meta_from_env() -> dict[str, Any] | None:
    """Metadata a parent dmv process passes to runs it starts (``dmv reproduce``)."""
    raw = os.environ.get(RUN_META_ENV)
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        raise InvalidInput(
            f"{RUN_META_ENV} is not JSON: {raw[:60]!r}",
            hint=f"set {RUN_META_ENV} to a JSON object, or unset it",
        ) from None
    return meta if isinstance(meta, dict) else None


def _entry_point() -> str:
    """How this process was started, as a command line."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(".py"):
        argv = ["python", os.path.relpath(argv[0]), *argv[1:]]
    return shlex.join(argv) if argv and argv[0] else "python"
