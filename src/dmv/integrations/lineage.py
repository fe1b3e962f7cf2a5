"""OpenLineage run events for retrievals, splits, training runs and releases.

On when ``OPENLINEAGE_URL`` is set, or an ``openlineage.yml`` (``OPENLINEAGE_CONFIG``,
the current folder, ``~/.openlineage/``) or ``OPENLINEAGE__TRANSPORT__*`` variables
configure the client; ``OPENLINEAGE_DISABLED=true`` turns it off. Each operation
emits START when it begins and COMPLETE or FAIL when it ends, through
``openlineage-python`` (``pip install 'dmv[lineage]'``).

Emission never slows or fails the operation it describes: events are built and
sent by one background thread from a bounded queue (full: the event is dropped
and logged), every error is logged on the ``dmv.lineage`` logger and drops the
events of the next :data:`BACKOFF_SECONDS` (a dead backend never builds a backlog), and at exit
the queue gets at most :data:`EXIT_FLUSH_SECONDS` to drain. When lineage is off
nothing is imported and each hook costs a few environment look-ups.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dmv._urls import database_url, redact_text, source_url
from dmv.errors import DmvError
from dmv.integrations.about import redacted_definition

if TYPE_CHECKING:
    from dmv.config import Config

__all__ = ["EXIT_FLUSH_SECONDS", "Tracker", "enabled", "flush", "track"]

log = logging.getLogger("dmv.lineage")


class Configured(Protocol):
    """What events are located by: the project's settings (a project has them)."""

    @property
    def config(self) -> Config: ...


QUEUE_SIZE = 1000
EXIT_FLUSH_SECONDS = 2.0
#: After a failed send, events are dropped for this long instead of queueing behind it.
BACKOFF_SECONDS = 30
NAMESPACE_ENV = "OPENLINEAGE_NAMESPACE"


def enabled() -> bool:
    """Whether the OpenLineage client is configured in this environment."""
    env = os.environ
    if env.get("OPENLINEAGE_DISABLED", "").lower() in ("1", "true", "yes"):
        return False
    if env.get("OPENLINEAGE_URL") or any(k.startswith("OPENLINEAGE__TRANSPORT") for k in env):
        return True
    config = env.get("OPENLINEAGE_CONFIG")
    if config:
        return Path(config).is_file()
    return (
        Path("openlineage.yml").is_file()
        or (Path.home() / ".openlineage" / "openlineage.yml").is_file()
    )


class _Emitter:
    """One daemon thread that builds and sends events, in order, from a bounded queue."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[Any, Callable[[], Any]]] = queue.Queue(maxsize=QUEUE_SIZE)
        self.client: Any = None
        self.key: tuple[tuple[str, str], ...] = ()
        self.down_until = 0.0
        self.dropped = 0
        self.thread = threading.Thread(target=self._loop, name="dmv-lineage", daemon=True)
        self.thread.start()

    def put(self, build: Callable[[], Any]) -> None:
        try:
            # Sent with the configuration in force when the operation ran.
            self.queue.put_nowait((_config_key(), build))
        except queue.Full:
            log.warning("OpenLineage queue is full (%d events): an event was dropped", QUEUE_SIZE)

    def _loop(self) -> None:
        while True:
            key, build = self.queue.get()
            if time.monotonic() < self.down_until:  # the backend just failed: do not pile up
                self.dropped += 1
                self.queue.task_done()
                continue
            try:
                if self.client is None or key != self.key:  # the configuration changed
                    from openlineage.client import OpenLineageClient

                    _redact_client_logs()
                    with _environment(dict(key)):
                        self.client = OpenLineageClient()
                    self.key = key
                self.client.emit(build())
            except Exception:
                log.exception(
                    "could not emit an OpenLineage event; events of the next %d s are dropped",
                    BACKOFF_SECONDS,
                )
                self.down_until = time.monotonic() + BACKOFF_SECONDS
            finally:
                self.queue.task_done()

    def flush(self, timeout: float) -> bool:
        done = threading.Event()

        def wait() -> None:
            self.queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)


class _RedactingFilter(logging.Filter):
    """Hides the secrets of every URL in a record (the client logs its endpoint's URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = redact_text(message)
        if shown != message:
            record.msg, record.args = shown, None
        return True


_FILTER = _RedactingFilter()


def _redact_client_logs() -> None:
    """Put the filter on dmv's lineage logger and every logger of the OpenLineage client."""
    import pkgutil

    import openlineage.client.transport as transports  # lazy: openlineage

    names = {"openlineage", "openlineage.client", "openlineage.client.client", log.name}
    names |= {f"{transports.__name__}.{m.name}" for m in pkgutil.iter_modules(transports.__path__)}
    names |= {n for n in logging.root.manager.loggerDict if n.startswith("openlineage")}
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


_emitter: _Emitter | None = None
_lock = threading.Lock()


def _get() -> _Emitter:
    global _emitter
    with _lock:
        if _emitter is None:
            _emitter = _Emitter()
            atexit.register(flush, EXIT_FLUSH_SECONDS)
        return _emitter


def flush(timeout: float = 10.0) -> bool:
    """Wait (at most ``timeout`` s) until every queued event was sent; True if all were."""
    return True if _emitter is None else _emitter.flush(timeout)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The client reads its configuration from the environment: show it the captured one.

    The client also writes to the environment (``OPENLINEAGE_URL`` becomes a
    ``default_http`` transport's variables): every ``OPENLINEAGE*`` variable is put
    back exactly as it was, or a backend configured once would stay configured for
    the rest of the process.
    """
    with _lock:
        saved = {k: v for k, v in os.environ.items() if k.startswith("OPENLINEAGE")}
        for k in saved:
            os.environ.pop(k, None)
        os.environ.update(values)
        try:
            yield
        finally:
            for k in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
                os.environ.pop(k, None)
            os.environ.update(saved)


def _config_key() -> tuple[tuple[str, str], ...]:
    with _lock:  # never the environment a client is being built in
        return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("OPENLINEAGE")))


def _namespace() -> str:
    return os.environ.get(NAMESPACE_ENV) or "dmv"


def _location(project: Configured, name: str) -> str:

    loc = str(project.config.location(name))
    if "://" not in loc:
        return f"file://{Path(loc).resolve()}" if loc else "file"
    return database_url(loc)


class Tracker:
    """One operation's lineage: inputs and outputs are added as they become known."""

    def __init__(self, project: Configured, operation: str, model: str, job: str) -> None:
        self.project, self.operation, self.model, self.job = project, operation, model, job
        self.run_id = str(uuid.uuid4())
        self.inputs: list[Callable[[], list[Any]]] = []
        self.outputs: list[Callable[[], list[Any]]] = []
        self.sql: str | None = None

    def _emit(self, state: str, error: str | None = None) -> None:
        ins, outs = list(self.inputs), list(self.outputs) if state == "COMPLETE" else []
        namespace, job, op, model, sql, run_id = (
            _namespace(),
            self.job,
            self.operation,
            self.model,
            self.sql,
            self.run_id,
        )

        def build() -> Any:
            from dmv.integrations._lineage_events import run_event  # lazy: openlineage

            return run_event(
                state,
                run_id,
                namespace,
                job,
                op,
                model,
                [d for f in ins for d in f()],
                [d for f in outs for d in f()],
                sql=sql,
                error=error,
            )

        _get().put(build)

    # -- what the hooks record ----------------------------------------------------

    def sources(self, query: Any) -> None:
        """The datasets a retrieval reads (its SQL's tables, or its files)."""

        definition = redacted_definition(query.definition)
        self.sql = definition.get("sql")
        namespace = source_url(
            str(definition.get("source") or _location(self.project, "warehouse"))
        )

        def build() -> list[Any]:
            from dmv.integrations._lineage_events import source_datasets  # lazy: openlineage

            return source_datasets(namespace, definition)

        self.inputs.append(build)

    def parts(self, info: Any, *, output: bool, only: list[str] | None = None) -> None:
        """The part tables of a stored split, read (inputs) or written (outputs)."""
        namespace = _location(self.project, "warehouse")
        chosen = [p for p in info.parts if only is None or p.get("name") in only]

        def build() -> list[Any]:
            from dmv.integrations._lineage_events import part_dataset  # lazy: openlineage

            return [part_dataset(namespace, info, p, output) for p in chosen]

        (self.outputs if output else self.inputs).append(build)

    def version(self, info: Any, run_id: str | None, *, output: bool) -> None:
        namespace = _location(self.project, "registry")

        def build() -> list[Any]:
            from dmv.integrations._lineage_events import version_dataset  # lazy: openlineage

            return [version_dataset(namespace, info, run_id, output)]

        (self.outputs if output else self.inputs).append(build)

    def prediction(self, record: Any) -> None:
        """A batch prediction's input (part, query or file) and its output (table or file)."""
        warehouse = _location(self.project, "warehouse")
        if record.input_kind == "part":
            inputs = [(warehouse, str(record.details.get("table") or record.input))]
        elif record.input_kind == "sql":
            where, _, self.sql = record.input.partition(": ")
            ns = warehouse if where == "warehouse" else source_url(where)
            inputs = [(ns, "query")]
        else:
            inputs = [("file", record.input)]
        out_ns = warehouse if record.output_kind == "table" else "file"

        def build_in() -> list[Any]:
            from dmv.integrations._lineage_events import named_dataset  # lazy: openlineage

            return [named_dataset(ns, name, None, output=False) for ns, name in inputs]

        def build_out() -> list[Any]:
            from dmv.integrations._lineage_events import named_dataset  # lazy: openlineage

            return [named_dataset(out_ns, record.output, record.rows_out, output=True)]

        self.inputs.append(build_in)
        self.outputs.append(build_out)


class _Off:
    """The tracker when lineage is off: false, and every hook does nothing."""

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None


@contextmanager
def track(project: Configured, operation: str, model: str, job: str) -> Iterator[Any]:
    """START now, COMPLETE (or FAIL with the error) when the block ends; never raises itself."""
    if not enabled():
        yield _Off()
        return
    tracker = Tracker(project, operation, model, job)
    _safe(tracker._emit, "START")
    try:
        yield tracker
    except BaseException as exc:
        _safe(tracker._emit, "FAIL", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _safe(tracker._emit, "COMPLETE")


def _safe(fn: Callable[..., Any], *args: Any) -> None:

    try:
        fn(*args)
    except DmvError as exc:  # e.g. a version registered without a stored split
        log.debug("no lineage for this part: %s", exc)
    except Exception:
        log.exception("could not queue an OpenLineage event")


def hook(fn: Callable[[], Any]) -> None:
    """Run a recording step; a failure is logged, never raised into the operation."""
    _safe(fn)
