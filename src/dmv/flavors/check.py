"""The servability check: load a stored model in a fresh process, as a server would.

The parent writes the model file, its metadata, the stored code and the sample
rows into a temporary folder and starts ``python -P -m dmv.flavors.check DIR``
there, with nothing of the project on ``sys.path`` but the stored code. The child
loads the model through its flavor, builds the request frame from the JSON rows
and prints the served outputs as JSON; the parent compares them with what the
model answered in the training process and with the output interface.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dmv._meta
from dmv.errors import DmvError, IntegrityError, NotServable
from dmv.flavors import load
from dmv.flavors._frame import json_rows
from dmv.interface import Interface, validate_rows

__all__ = ["compare", "run_check", "write_code"]

#: How long the fresh process may take to load and predict (seconds).
TIMEOUT = 300.0


def write_code(files: Mapping[str, bytes], dest: Path) -> None:
    """Write stored code files under ``dest``, refusing paths that leave it."""
    root = dest.resolve()
    for rel, content in files.items():
        target = (root / rel).resolve()
        if rel.startswith("/") or not target.is_relative_to(root):
            raise IntegrityError(
                f"a stored code path leaves its folder: {rel!r}",
                hint="the registry row or stored code was altered: run 'dmv fsck' and restore "
                "from a backup",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _child_env() -> dict[str, str]:
    # dmv itself and what the server's environment adds, never the project's folder.
    here = str(Path(dmv._meta.__file__).resolve().parents[1])
    cwd = Path.cwd().resolve()
    extra = [
        str(Path(p).resolve())
        for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if p and not Path(p).resolve().is_relative_to(cwd)
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([here, *extra]))
    env.pop("PYTHONSTARTUP", None)
    return env


def run_check(
    data: bytes,
    meta: Mapping[str, Any],
    code: Mapping[str, bytes],
    rows: Sequence[Mapping[str, Any]] | None,
    *,
    interface: Mapping[str, Any] | None,
    trust_pickle: bool,
    probe: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Load (and predict ``rows``) in a fresh process: ``{"ok", "outputs"|"error", "seconds"}``.

    ``probe`` is ``[{"field": name, "row": row}, …]``, each a sample row with that
    input set to null; the answer's ``nullable`` lists the fields the model
    answered finite values for.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dmv-check-") as tmp:
        folder = Path(tmp)
        (folder / "model.bin").write_bytes(data)
        write_code(code, folder / "code")
        request = {
            "meta": dict(meta),
            "rows": list(rows) if rows is not None else None,
            "interface": interface,
            "trust_pickle": trust_pickle,
            "probe": list(probe) if probe is not None else None,
        }
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        answer = _run_in_fresh_process(folder, str(meta.get("flavor", "")))
    answer["seconds"] = round(time.perf_counter() - started, 3)
    return answer


def _answer(folder: Path, returncode: int | None) -> dict[str, Any]:
    """What the child wrote to ``answer.json``, or why it wrote nothing."""
    try:
        answer: dict[str, Any] = json.loads((folder / "answer.json").read_text("utf-8"))
        return answer
    except (OSError, ValueError):
        pass
    tail: list[str] = []
    for name in ("stderr", "stdout"):
        try:
            tail = (folder / name).read_text("utf-8", errors="replace").strip().splitlines()[-3:]
        except OSError:
            continue
        if tail:
            break
    return {"ok": False, "error": f"the process exited with {returncode}: " + " | ".join(tail)}


def _run_in_fresh_process(folder: Path, flavor: str) -> dict[str, Any]:
    """Run the check of ``folder`` in a process that never saw the caller's modules."""
    env = _child_env()
    if hasattr(os, "fork"):
        try:
            return _forker(env).check(folder, flavor, env)
        except _ForkerGone:
            pass  # the fork server died: one plain process instead
    try:
        with (folder / "stdout").open("wb") as out, (folder / "stderr").open("wb") as err:
            done = subprocess.run(
                [sys.executable, "-P", "-m", "dmv.flavors.check", str(folder)],
                cwd=folder,
                env=env,
                stdout=out,
                stderr=err,
                timeout=TIMEOUT,
                check=False,
            )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"loading took longer than {TIMEOUT:.0f} s"}
    return _answer(folder, done.returncode)


# -- the fork server -------------------------------------------------------------
#
# Importing a model library (skops imports most of scikit-learn) takes seconds; a
# check per logged model would pay that every time. A fork server is a fresh
# interpreter that imports only dmv and model libraries, never the caller's code,
# and forks one child per check: each child starts as fresh as a new process (no
# ``__main__`` classes, no project modules) but with the libraries already loaded.

#: Libraries the fork server imports before forking a check of that flavor.
_PRELOAD = {"sklearn": "skops.io", "lightgbm": "lightgbm", "xgboost": "xgboost"}


class _ForkerGone(Exception):
    pass


class _Forker:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        # One check at a time: the server answers requests in order over one
        # pipe, so two threads interleaving would read each other's lines.
        self.lock = threading.Lock()
        self.serial = 0
        self.home = tempfile.mkdtemp(prefix="dmv-forker-")
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "dmv.flavors.check", "--server"],
            cwd=self.home,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        # What the server wrote and no caller has read yet. The pipe is read raw:
        # a buffered reader could swallow the next line, and a select() on the
        # pipe would then wait for bytes that already arrived.
        self.pending = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _line(self, deadline: float) -> str:
        import selectors

        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.pending:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise _ForkerGone
                self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode("utf-8", errors="replace").strip()

    def check(self, folder: Path, flavor: str, env: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            return self._check(folder, flavor, env)

    def _expect(self, word: str, serial: int, deadline: float) -> int:
        """The number in the server's next line ``WORD SERIAL NUMBER``; else the server is gone."""
        parts = self._line(deadline).split()
        if len(parts) != 3 or parts[0] != word or parts[1] != str(serial):
            raise _ForkerGone  # out of step: never guess whose answer this is
        return int(parts[2])

    def _check(self, folder: Path, flavor: str, env: dict[str, str]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        deadline = time.monotonic() + TIMEOUT
        self.serial += 1
        serial = self.serial
        try:
            request = {"serial": serial, "folder": str(folder), "flavor": flavor, "env": env}
            data = memoryview((json.dumps(request) + "\n").encode("utf-8"))
            while data:  # an unbuffered pipe may take part of a long request
                data = data[self.proc.stdin.write(data) or 0 :]
            pid = self._expect("started", serial, deadline)
        except (OSError, ValueError, TimeoutError, _ForkerGone):
            self.close()
            raise _ForkerGone from None
        try:
            code = self._expect("exit", serial, deadline)
        except TimeoutError:
            self._kill(pid)
            return {"ok": False, "error": f"loading took longer than {TIMEOUT:.0f} s"}
        except (OSError, ValueError, _ForkerGone):
            self._kill(pid)
            raise _ForkerGone from None
        return _answer(folder, code)

    def _kill(self, pid: int) -> None:
        """Stop a forked check and the server that forked it."""
        import signal

        if pid > 0:
            with _suppress_os_error():
                os.kill(pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        import shutil

        with _suppress_os_error():
            if self.proc.stdin:
                self.proc.stdin.close()
        with _suppress_os_error():
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def _suppress_os_error() -> contextlib.suppress:
    return contextlib.suppress(OSError)


_FORKER: _Forker | None = None
_FORKER_LOCK = threading.Lock()


def _forker(env: dict[str, str]) -> _Forker:
    """The fork server for this environment (started, or restarted, when needed)."""
    global _FORKER
    with _FORKER_LOCK:
        # sys.path is fixed when the server starts; the rest of the environment
        # travels with each request.
        path = env.get("PYTHONPATH")
        if _FORKER is None or not _FORKER.alive() or _FORKER.env.get("PYTHONPATH") != path:
            if _FORKER is not None:
                _FORKER.close()
            _FORKER = _Forker(env)
            import atexit

            atexit.register(_FORKER.close)
        return _FORKER


def _serve_forks() -> None:  # pragma: no cover - runs in the fork server
    """Read one check request per line; fork a child for each; say how it ended."""
    import importlib

    import pandas  # noqa: F401  (every flavor's frame needs it)

    for line in sys.stdin:
        request = json.loads(line)
        folder = Path(request["folder"])
        module = _PRELOAD.get(request.get("flavor", ""))
        if module:
            with contextlib.suppress(ImportError):  # the child reports it itself
                importlib.import_module(module)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(folder)
                os.environ.clear()
                os.environ.update(request.get("env") or {})
                out = os.open(folder / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                err = os.open(folder / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(out, 1)
                os.dup2(err, 2)
                _write_answer(folder, _main(folder))
                code = 0
            finally:
                os._exit(code)
        serial = request.get("serial", 0)
        print(f"started {serial} {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {serial} {os.waitstatus_to_exitcode(status)}", flush=True)


def _write_answer(folder: Path, result: dict[str, Any]) -> None:
    text = json.dumps(result, allow_nan=False, default=str)
    (folder / "answer.json").write_text(text, encoding="utf-8")


def compare(expected: Any, got: Any, where: str = "") -> str | None:
    """The first difference between two JSON answers (floats within tolerance), or None."""
    if isinstance(expected, float) or isinstance(got, float):
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (expected, got)
        )
        if numbers and math.isclose(expected, got, rel_tol=1e-5, abs_tol=1e-7):
            return None
        return f"{where or 'value'}: {expected!r} in training, {got!r} when served"
    if isinstance(expected, dict) and isinstance(got, dict):
        if expected.keys() != got.keys():
            return f"{where or 'row'}: fields {sorted(expected)} in training, {sorted(got)} served"
        for key in expected:
            found = compare(expected[key], got[key], f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{where or 'outputs'}: {len(expected)} values in training, {len(got)} served"
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            found = compare(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    if expected != got:
        return f"{where or 'value'}: {expected!r} in training, {got!r} when served"
    return None


def _main(folder: Path) -> dict[str, Any]:
    request = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    meta = request["meta"]
    code = folder / "code"
    for root in meta.get("code_roots") or ["."]:
        sys.path.insert(0, str((code / root).resolve()))
    iface = None
    if request.get("interface"):
        iface = Interface.from_dict(request["interface"])
    try:
        model = load(
            (folder / "model.bin").read_bytes(),
            meta,
            what="the logged model",
            trust_pickle=bool(request.get("trust_pickle")),
            interface=iface,
        )
        rows = request.get("rows")
        if rows is None:
            return {"ok": True, "outputs": None}
        answer: dict[str, Any] = {"ok": True, "outputs": model.predict_rows(rows)}
        if request.get("probe"):
            answer["nullable"] = _nullable(model, request["probe"])
        return answer
    except DmvError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}


def _finite(value: Any) -> bool:
    """Whether an answer holds a value everywhere (served NaN is null already)."""
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def _nullable(model: Any, probe: Sequence[Mapping[str, Any]]) -> list[str]:
    """The probed fields the model answers finite values for when they are null.

    One batch; when the batch fails (one null the model refuses fails it all),
    each row alone, so one field's refusal does not hide another's acceptance.
    """
    rows = [p["row"] for p in probe]
    try:
        answers: list[Any] = model.predict_rows(rows)
    except Exception:
        answers = []
        for row in rows:
            try:
                answers.append(model.predict_rows([row])[0])
            except Exception:
                answers.append(None)
    return [p["field"] for p, a in zip(probe, answers, strict=True) if a is not None and _finite(a)]


if __name__ == "__main__":  # pragma: no cover - run as a child process
    if sys.argv[1:] == ["--server"]:
        _serve_forks()
    else:
        _write_answer(Path(sys.argv[1]), _main(Path(sys.argv[1])))


#: Sample rows recorded with a version (and predicted by every check).
SAMPLE_ROWS = 20


def check_logged(pending: Any, iface: Any) -> list[str] | None:
    """The servability check of a model a run logged; raises :class:`NotServable`.

    On success the sample rows and the served answers are recorded in the model
    file's metadata, so ``dmv verify`` can ask the stored file the same again.
    Returns the inputs the model answers finite values for when null (each probed
    in the same process, a copy of the first sample row with that input null), or
    None when there were no sample rows to probe with.
    """
    meta = pending.artifact.meta
    what = f"the logged model {pending.artifact.name!r}"
    sample = pending.sample_input
    rows = expected = probe = None
    if sample is not None and hasattr(sample, "columns"):
        sample = sample.head(SAMPLE_ROWS)
        rows = json_rows(sample)
        if rows:
            probe = [{"field": name, "row": {**rows[0], name: None}} for name in rows[0]]
        model = pending.model
        if model is not None:
            model.use_interface(iface)
            expected = model.shape(model.columns(sample), len(sample))
    answer = run_check(
        pending.data,
        meta,
        pending.code,
        rows,
        interface=iface.to_dict() if iface is not None else None,
        trust_pickle=pending.trust_pickle,
        probe=probe,
    )
    if not answer.get("ok"):
        raise NotServable(
            f"{what} cannot be served: {answer.get('error')}",
            hint=answer.get("hint")
            or "a server loads it in a fresh process with only the stored code",
        )
    got = answer.get("outputs")
    if got is not None:
        if expected is not None:
            diff = compare(expected, got)
            if diff:
                raise NotServable(
                    f"{what} answers differently when served than in training: {diff}",
                    hint="the model depends on something the request frame does not carry; "
                    "log it with sample_input= the frame it was trained on",
                )
        if iface is not None:
            problems = validate_rows(iface, got, side="output")
            if problems:
                raise NotServable(
                    f"what {what} serves does not conform to its output interface: "
                    f"{problems[0]['message']}",
                    hint="choose the served outputs with outputs= (e.g. 'label', 'proba') "
                    "and let dmv infer them, or declare the interface they match",
                )
        meta["sample"] = {"inputs": rows, "outputs": got}
    meta["check"] = {"seconds": answer.get("seconds")}
    nullable = answer.get("nullable")
    return [str(n) for n in nullable] if isinstance(nullable, list) and probe else None
