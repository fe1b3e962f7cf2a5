"""One local Spark Connect server for the whole test session (imported by Spark tests).

Started from the pyspark package (``sbin/start-connect-server.sh``, ``local[2]``,
warehouse and logs in a temporary folder; its executors' Python is this interpreter,
with the dmv source the tests import) on a free port the first time a test
asks for it, stopped when the session ends. Tests skip, saying why, only where
Java is missing.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmv.data.engines import open_warehouse
from dmv.data.warehouse import Warehouse

START_TIMEOUT = 180.0
_server: dict[str, str] = {}


def java_missing() -> str | None:
    if shutil.which("java") or os.environ.get("JAVA_HOME"):
        return None
    return "Java is not installed (a local Spark Connect server needs a JVM)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(root: Path, python: str | None = None) -> dict[str, str]:
    import pyspark

    import dmv

    home = os.path.dirname(pyspark.__file__)
    env = dict(os.environ)
    # The executors run Python sent by the client (dmv predict's scoring): this
    # interpreter, and the dmv source the tests import (the worktree's, not an install).
    src = str(Path(dmv.__file__).resolve().parent.parent)
    env.update(
        SPARK_HOME=home,
        SPARK_PID_DIR=str(root / "pid"),
        SPARK_LOG_DIR=str(root / "log"),
        SPARK_IDENT_STRING=f"dmvtest{os.getpid()}",
        PYSPARK_PYTHON=python or sys.executable,
        PYTHONPATH=os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p),
    )
    return env


def _stop(root: Path) -> None:
    env = _env(root)
    script = Path(env["SPARK_HOME"]) / "sbin" / "stop-connect-server.sh"
    with contextlib.suppress(Exception):
        subprocess.run([str(script)], env=env, timeout=60, capture_output=True, check=False)
    for pid_file in (root / "pid").glob("*.pid"):  # a server that would not stop
        with contextlib.suppress(Exception):
            os.kill(int(pid_file.read_text().strip()), 9)
    shutil.rmtree(root, ignore_errors=True)


def start_server(
    *, driver_memory: str = "1g", shuffle_partitions: int = 2, python: str | None = None
) -> str:
    """``sc://127.0.0.1:PORT`` of the session's server (started on first use).

    ``python``: the executors' interpreter (default: this one); it must import dmv.
    """
    if "url" in _server:
        return _server["url"]
    root = Path(tempfile.mkdtemp(prefix="dmv-spark-"))
    port = _free_port()
    env = _env(root, python)
    script = Path(env["SPARK_HOME"]) / "sbin" / "start-connect-server.sh"
    args = [
        str(script),
        "--master",
        "local[2]",
        "--conf",
        f"spark.sql.warehouse.dir={root / 'warehouse'}",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        f"spark.sql.shuffle.partitions={shuffle_partitions}",
        "--driver-memory",
        driver_memory,
        "--driver-java-options",
        f"-Dderby.system.home={root / 'derby'}",
    ]
    subprocess.run(args, env=env, timeout=60, capture_output=True, check=True, cwd=root)
    _server["root"] = str(root)
    atexit.register(stop_server)  # even when the session is interrupted
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    else:
        logs = "".join(p.read_text()[-2000:] for p in (root / "log").glob("*.out"))
        _stop(root)
        raise RuntimeError(f"the Spark Connect server did not listen within 180 s:\n{logs}")
    _server["url"] = f"sc://127.0.0.1:{port}"
    return _server["url"]


def stop_server() -> None:
    root = _server.pop("root", None)
    _server.pop("url", None)
    if root:
        _stop(Path(root))


@pytest.fixture(scope="session")
def spark_url() -> Iterator[str]:
    why = java_missing()
    if why:
        pytest.skip(why)
    url = start_server()
    yield url
    stop_server()


def spark_database_url(base: str) -> str:
    """A Spark warehouse URL in a database of its own."""
    return f"{base}/;database=t_{secrets.token_hex(4)}"


@pytest.fixture
def spark(spark_url: str) -> Iterator[Warehouse]:
    url = spark_database_url(spark_url)
    wh = open_warehouse(url)
    try:
        yield wh
    finally:
        with contextlib.suppress(Exception):
            database = url.rsplit("=", 1)[1]
            wh.execute(f'DROP NAMESPACE IF EXISTS "{database}" CASCADE')
        wh.close()
