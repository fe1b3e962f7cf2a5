"""Ctrl-C and SIGTERM as a normal outcome: cancel the running queries, then unwind.

A query runs inside an engine's own threads, where Python's signal handler cannot
reach it: DuckDB notices a pending signal only between steps (seconds apart), a
PostgreSQL query runs on the server. So every open engine connection registers
here (:func:`register`, an object with an ``interrupt()`` method), and
:func:`handle_signals` (the CLI's, around every command) does two things on
SIGINT or SIGTERM:

* a watcher thread, woken through :func:`signal.set_wakeup_fd` the moment the
  signal arrives, calls ``interrupt()`` on every registered connection (DuckDB
  ``interrupt()``, PostgreSQL's cancel request, Spark Connect ``interruptAll()``);
* the main thread raises :class:`KeyboardInterrupt` as soon as it runs Python
  again, so transactions roll back on the way out and :func:`requested` tells the
  front end that whatever error surfaced is the interrupt's doing.

A second signal while the first unwinds stops the process at once (exit 130): what
that leaves behind is what a killed process leaves, which ``dmv fsck`` knows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["EXIT_CODE", "Interruptible", "handle_signals", "register", "requested", "unregister"]

#: The exit code of an interrupted command (128 + SIGINT, as shells report Ctrl-C).
EXIT_CODE = 130


class Interruptible(Protocol):
    """A connection whose running statement can be cancelled from another thread."""

    def interrupt(self) -> None: ...


_lock = threading.Lock()
_open: set[Any] = set()  # registered until closed (each close unregisters)
_state: dict[str, Any] = {"signal": None, "pid": None}


def register(connection: Interruptible) -> None:
    """Cancel ``connection``'s statement when the process is interrupted, until
    :func:`unregister` (which its ``close`` calls)."""
    with _lock:
        _open.add(connection)


def unregister(connection: Interruptible) -> None:
    """Forget ``connection`` (closed; unknown ones are fine)."""
    with _lock:
        _open.discard(connection)


def requested() -> int | None:
    """The signal that interrupted this process (None: not interrupted)."""
    return _state["signal"] if _state["pid"] == os.getpid() else None


def interrupt_all() -> None:
    """Cancel the running statement of every registered connection (errors ignored)."""
    with _lock:
        connections = list(_open)
    for connection in connections:
        with contextlib.suppress(Exception):
            connection.interrupt()


def _on_signal(signum: int, frame: Any) -> None:
    if _state["pid"] != os.getpid():  # a forked child: Python's own behaviour
        raise KeyboardInterrupt
    if _state["signal"] is not None:  # a second signal: stop now
        os.write(2, _FORCED)
        os._exit(EXIT_CODE)
    _state["signal"] = signum
    interrupt_all()  # the watcher has most likely done it already
    raise KeyboardInterrupt


_WATCHED = {int(signal.SIGINT), int(signal.SIGTERM)}
_FORCED = b"interrupted again: stopped at once; 'dmv fsck --repair' removes what was left\n"


def _watch(read_fd: int) -> None:
    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        if not data:
            return
        if _WATCHED & set(data):
            interrupt_all()


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT and SIGTERM cancel registered queries and raise KeyboardInterrupt (see above).

    Only in the main thread of the main interpreter; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not the main interpreter
        os.close(read_fd)
        os.close(write_fd)
        yield
        return
    old = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    _state.update(signal=None, pid=os.getpid())
    watcher = threading.Thread(target=_watch, args=(read_fd,), name="dmv-interrupts", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(old_fd)
        os.close(write_fd)  # the watcher reads end-of-file and returns
        watcher.join(timeout=1.0)
        os.close(read_fd)
