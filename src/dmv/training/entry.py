"""``dmv train``: run a model's declared training entry, and find the run it logged.

A model declares its training entry in ``dmv.toml``::

    [models.price-model]
    train = "python train.py {data} --lr {lr}"

:func:`train` substitutes ``{data}`` (the stored split, ``DATA.SPLIT``) and one
``{NAME}`` per ``--param NAME=VALUE``, each value shell-quoted, splits the line as a
shell would *without running a shell* (no pipes, globs or expansions: a value can
never become a second command), and starts it in the project's folder with the
project's stores in its environment (``DMV_REGISTRY``, ``DMV_ARTIFACTS``,
``DMV_WAREHOUSE``), ``DMV_DATA`` and ``DMV_PARAMS`` (a JSON object, read by
:func:`dmv.params`). Its output is handed line by line to the caller as it comes.
The runs it logs carry ``trained_by`` in their metadata (the entry, the command
line, the data and params, and a token naming this invocation), which is how the
run is found afterwards and how ``dmv reproduce`` runs the same entry again.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.data.catalog import require_stored
from dmv.errors import InvalidInput, NotFound, TrainingFailed
from dmv.training import DATA_ENV, PARAMS_ENV, RUN_META_ENV
from dmv.training.lifecycle import refuse_archived
from dmv.version import check_name, parse_data_split

if TYPE_CHECKING:
    from dmv.registry import RunInfo
    from dmv.stores import Stores

__all__ = [
    "TrainResult",
    "command_line",
    "entry_environment",
    "parse_params",
    "run_command",
    "train",
]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: The most --param pairs, and the longest value (a bound on the command line).
MAX_PARAMS = 100
MAX_VALUE = 4096
#: Seconds a stopped entry gets to unwind (record its failed run) before it is killed.
STOP_GRACE = 30.0


@dataclass(frozen=True)
class TrainResult:
    """What ``dmv train`` ran and the runs it logged (the last one is *the* run)."""

    model: str
    data: str
    command: str
    exit_code: int
    seconds: float
    runs: list[RunInfo] = field(default_factory=list)

    @property
    def run(self) -> RunInfo:
        return self.runs[-1]

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "model": self.model,
            "data": self.data,
            "command": self.command,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "version": run.version.number if run.version else None,
            "label": run.label,
            "run": run.id,
            "runs": [r.to_dict() for r in self.runs],
        }


def parse_params(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["lr=0.1", "name=x"]`` → ``{"lr": 0.1, "name": "x"}``.

    A value that reads as a JSON number, ``true``, ``false`` or ``null`` is passed as
    that; any other value is text. The command line gets the text as typed.
    """
    if len(pairs) > MAX_PARAMS:
        raise InvalidInput(f"at most {MAX_PARAMS} --param pairs", hint="pass fewer parameters")
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _PARAM_NAME.fullmatch(name):
            raise InvalidInput(
                f"--param {pair!r} is not NAME=VALUE",
                hint="e.g. --param lr=0.1 (a name of letters, digits and _)",
            )
        if name == "data":
            raise InvalidInput(
                "--param data=… is reserved: {data} is the stored split",
                hint="pass the split with --data DATA.SPLIT; name the parameter otherwise",
            )
        if len(value) > MAX_VALUE or "\x00" in value:
            raise InvalidInput(
                f"--param {name}: the value is too long or holds a NUL byte",
                hint=f"pass at most {MAX_VALUE} characters",
            )
        if name in out:
            raise InvalidInput(f"--param {name} is given twice", hint="give each name once")
        out[name] = _typed(value)
    return out


def _typed(value: str) -> Any:
    if value in ("true", "false", "null") or re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", value):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def command_line(template: str, data: str, params: Mapping[str, Any]) -> str:
    """The entry with ``{data}`` and each ``{NAME}`` replaced by its shell-quoted value.

    ``{{`` and ``}}`` stand for literal braces. A placeholder without a value is refused.
    """
    values = {"data": data, **{k: _text(v) for k, v in params.items()}}

    def sub(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("{{", "}}"):
            return text[0]
        name = match.group(1)
        if name not in values:
            raise InvalidInput(
                f"the training entry uses {{{name}}}, which no --param gives",
                hint=f"pass --param {name}=VALUE, or write {{{{{name}}}}} for the literal text",
            )
        return shlex.quote(values[name])

    return _PLACEHOLDER.sub(sub, template)


def entry_environment(
    stores: Stores, data: str, params: Mapping[str, Any], meta: Mapping[str, Any]
) -> dict[str, str]:
    """The environment an entry runs in: the project's stores, its data and params."""
    return {
        **os.environ,
        "DMV_REGISTRY": stores.config.location("registry"),
        "DMV_ARTIFACTS": stores.config.location("artifacts"),
        "DMV_WAREHOUSE": stores.config.location("warehouse"),
        DATA_ENV: data,
        PARAMS_ENV: json.dumps(dict(params)),
        RUN_META_ENV: json.dumps(dict(meta)),
    }


def _argv(command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InvalidInput(
            f"the training entry is not a command line: {exc}",
            hint="check the quotes of train = … in dmv.toml",
        ) from None
    if not argv:
        raise InvalidInput("the training entry is empty", hint='train = "python train.py {data}"')
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the Python dmv runs in, with the same packages
    return argv


def run_command(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    on_output: Callable[[str], None] | None = None,
) -> int:
    """Run ``command`` (split, no shell), hand each output line to ``on_output``; its exit code.

    Interrupted (Ctrl-C, SIGTERM: :class:`KeyboardInterrupt` here), the entry is sent
    SIGINT and given :data:`STOP_GRACE` seconds to record its failed run, then killed;
    the interrupt goes on up.
    """
    argv = _argv(command)
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            # its own process group: a Ctrl-C at the terminal reaches dmv alone, which
            # passes exactly one SIGINT on (a second one would cut the entry's cleanup)
            start_new_session=True,
        )
    except OSError as exc:
        raise InvalidInput(
            f"cannot start the training entry {argv[0]!r}: {exc.strerror or exc}",
            hint="check the program named by train = … in dmv.toml",
        ) from None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_output is not None:
                on_output(line)
        return proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop the entry as Ctrl-C would, then for good."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except KeyboardInterrupt:  # a second interrupt: do not wait any more
        proc.kill()
        raise


def train(
    stores: Stores,
    model: str,
    data: str,
    params: Mapping[str, Any],
    *,
    on_output: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run ``model``'s declared training entry on the stored split ``data``; see the module."""
    check_name(model)
    d, s = parse_data_split(data)
    template = stores.config.models.get(model, {}).get("train")
    if template is None:
        raise NotFound(
            f"model {model} declares no training entry",
            hint=f'add it to dmv.toml:\n[models.{model}]\ntrain = "python train.py {{data}}"',
        )
    refuse_archived(stores.registry, model)
    require_stored(stores, model, d, s)
    ref = f"{d}.{s}"
    command = command_line(template, ref, params)
    token = uuid.uuid4().hex
    meta = {
        "trained_by": {
            "entry": template,
            "command": command,
            "data": ref,
            "params": dict(params),
            "token": token,
        }
    }
    env = entry_environment(stores, ref, params, meta)
    started = time.time()
    code = run_command(command, stores.root, env, on_output)
    seconds = time.time() - started
    runs = [
        r
        for r in stores.registry.list_model_runs(model)
        if ((r.meta or {}).get("trained_by") or {}).get("token") == token
    ]
    if code != 0:
        kept = [f"{r.label} {r.id}" for r in runs if r.status == "finished"]
        raise TrainingFailed(
            f"the training entry of {model} exited with code {code}: "
            + (
                f"it registered {', '.join(kept)} before it failed"
                if kept
                else "no version was registered"
                + (", its run was recorded as failed" if runs else "")
            ),
            hint=f"its output above says why; fix it and run 'dmv train {model} --data {ref}' "
            "again",
            exit_code=code,
            command=command,
            runs=[r.id for r in runs],
        )
    finished = [r for r in runs if r.status == "finished" and r.kind == "training"]
    if not finished:
        raise TrainingFailed(
            f"the training entry of {model} exited 0 but registered no training run",
            hint="the entry must train inside 'with project.run(…)' (dmv.open() finds the "
            "project); experiments and failed runs are not versions",
            exit_code=code,
            command=command,
            runs=[r.id for r in runs],
        )
    return TrainResult(model, ref, command, code, seconds, finished)
