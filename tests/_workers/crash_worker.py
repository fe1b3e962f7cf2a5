"""Fork server for tests/test_crash.py: run one dmv operation in a child, SIGKILL it.

Usage: ``crash_worker.py ROOT``. Imports everything once, then reads one JSON
command a line from stdin, ``{"kind", "trial", "delay"}``, and for each forks a
child that opens the project, prepares, says "ready", runs the operation and
says "done". ``delay`` seconds after "ready" the child gets SIGKILL (``null``:
it runs to the end). One JSON line answers each command:
``{"trial", "kind", "outcome": "finished" | "killed" | "failed", "seconds", "error"}``;
``seconds`` is how long the operation took when it finished.

Forking a warm process keeps each trial to milliseconds, so a hundred kills fit
in a CI budget; the child never returns into this loop (``os._exit``).
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import duckdb  # noqa: F401 - imported once, before any fork
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import dmv
import dmv.data.catalog  # imported once, before any fork
import dmv.data.split
import dmv.release.releases
import dmv.training.run
from dmv.logic.fingerprint import capture_environment, logic_info

MODEL = "crash-model"
UPLOAD_BYTES = 8 * 1024 * 1024  # two of the artifact store's 4 MiB chunks


def version_of(kind: str, trial: int) -> str:
    """The prerelease a trial writes (run, upload) or releases (release)."""
    y = {"release": 1, "run": 2, "upload": 3}[kind]
    return f"0.{y}.{trial}-0123.abcd"


def upload_bytes(trial: int) -> bytes:
    return random.Random(trial).randbytes(UPLOAD_BYTES)


def operation(project: dmv.Project, kind: str, trial: int, model: Any) -> Any:
    """Prepare the trial's operation; returns it as a function to call once "ready"."""
    if kind == "run":
        fitted = copy.copy(model)
        fitted.trial_ = trial  # a model file of its own: the upload is never skipped

        def run() -> None:
            with project.run(MODEL, version=version_of(kind, trial)) as r:
                r.log_model(fitted)
                r.log_metrics({"trial": trial})

        return run
    if kind == "upload":
        path = project.root.parent / "uploads" / f"weights-{trial}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(upload_bytes(trial))

        def upload() -> None:
            with project.run(MODEL, version=version_of(kind, trial)) as r:
                r.log_artifact(path, name="weights.bin")

        return upload
    if kind == "split":
        return lambda: project.data_split(MODEL, "0123", by="key:patient_id", salt=f"t{trial}")
    if kind == "release":
        return lambda: project.release(f"{MODEL}@{version_of(kind, trial)}")
    raise ValueError(kind)


def child(root: str, kind: str, trial: int, model: Any, say: int) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # stdout is the protocol's: nothing else may write to it
        project = dmv.open(root)
        project.models()  # the registry is open: the kill window is the operation's own
        run = operation(project, kind, trial, model)
        os.write(say, b"ready\n")
        t0 = time.perf_counter()
        run()
        os.write(say, f"done {time.perf_counter() - t0}\n".encode())
        os._exit(0)
    except BaseException:
        os.write(say, b"error " + json.dumps(traceback.format_exc()).encode() + b"\n")
        os._exit(1)


def trial(root: str, kind: str, number: int, delay: float | None, model: Any) -> dict[str, Any]:
    sys.stdout.flush()  # the child must not inherit unflushed output
    read, say = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        child(root, kind, number, model, say)
    os.close(say)
    buffer = b""
    while b"\n" not in buffer:
        chunk = os.read(read, 4096)
        if not chunk:
            break
        buffer += chunk
    killed = False
    if buffer.startswith(b"ready") and delay is not None:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        killed = True
    _, status = os.waitpid(pid, 0)
    while chunk := os.read(read, 4096):
        buffer += chunk
    os.close(read)
    lines = buffer.decode().splitlines()
    answer: dict[str, Any] = {"trial": number, "kind": kind, "delay": delay, "error": None}
    done = next((line for line in lines if line.startswith("done ")), None)
    error = next((line for line in lines if line.startswith("error ")), None)
    if error is not None:
        answer.update(outcome="failed", error=json.loads(error[6:]))
    elif done is not None:
        answer.update(outcome="finished", seconds=float(done[5:]))
    elif killed and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        answer.update(outcome="killed")
    else:
        answer.update(outcome="failed", error=f"child ended with status {status}: {lines}")
    return answer


def main() -> None:
    root = sys.argv[1]
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    # What a first run imports and caches, done once here instead of in every child.
    capture_environment()
    logic_info([], Path(root), {}, dmv.open(root).config["logic_components"])
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        answer = trial(root, command["kind"], command["trial"], command["delay"], model)
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
