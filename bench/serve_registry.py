"""Alias-resolved serving on a PostgreSQL registry against the SQLite registry, in one run.

    .venv/bin/python bench/serve_registry.py                # table: req/s, p50, p99, PG/SQLite
    .venv/bin/python bench/serve_registry.py --no-cache     # every request asks the registry
    .venv/bin/python bench/serve_registry.py --json --check # JSON; exit 1 below the target

Two projects with the same model (iris ``LogisticRegression``, four float inputs
behind an interface, so every request is validated), released to
``iris@production``: one on the embedded SQLite registry, one on a fresh
database of the PostgreSQL server at ``--pg`` (dropped afterwards). Each is
served by ``dmv serve iris@production`` (one worker) and measured with the same
load generator as ``bench/serve.py``: ``--clients`` processes, each with one
keep-alive connection, send ``--requests`` predictions of one row each to
``/models/iris/versions/production/predict`` after ``--warmup`` untimed ones.
Both servers run side by side and are measured in ``--rounds`` alternating rounds
(which registry goes first alternates); each row is the round of median
throughput, so a burst of other work on a shared machine moves neither side alone.
Every request names the alias, so every request resolves ``@production``.

The server answers a reference from memory re-checked at most every
``serve_refresh`` seconds (``--refresh``, default the setting's 0.25);
``--no-cache`` sets it to 0, the registry round trip on every request that was
the figure before. The target: the PostgreSQL registry serves at least 0.9x the
SQLite registry's requests per second.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

TARGET = 0.9
PG_ADMIN = os.environ.get("DMV_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = [5.1, 3.5, 1.4, 0.2]
VERSION = "0.0.1-0123.abcd"
PATH = "/models/iris/versions/production/predict"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the registries and the servers ---------------------------------------------------


def create_pg_database(admin: str) -> str:
    import psycopg

    name = f"dmv_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(admin: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_project(folder: Path, registry: str | None) -> Path:
    """A project with iris@production, on ``registry`` (None: the SQLite default)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import dmv
    from dmv.interface import Interface

    settings = {} if registry is None else {"registry": registry}
    project = dmv.init(folder, **settings)
    iface = Interface.from_dict(
        {"inputs": dict.fromkeys(FEATURES, "float64"), "outputs": {"species": "int64"}}
    )
    project.registry.create_version(
        dmv.Version.parse_number("iris", VERSION),
        interface=iface.to_dict(),
        interface_fp=iface.fingerprint,
    )
    x, y = load_iris(return_X_y=True)
    with project.run("iris", version=VERSION) as run:
        run.log_model(LogisticRegression(max_iter=300).fit(x, y))
    project.set_alias(f"iris@{VERSION}", "production")
    root = project.root
    project.close()
    return root


def start_server(root: Path, port: int, refresh: float | None, logfile: Path) -> Any:
    env = dict(os.environ)
    if refresh is not None:
        env["DMV_SERVE_REFRESH"] = str(refresh)
    cmd = [sys.executable, "-m", "dmv", "-C", str(root), "serve", "iris@production"]
    err = logfile.open("wb")  # a file, not a pipe nobody drains
    return subprocess.Popen([*cmd, "--port", str(port)], stderr=err, env=env)


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def wait_ready(proc: Any, port: int, body: bytes, logfile: Path) -> bytes:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = logfile.read_text(errors="replace")
            sys.exit(f"error: the server exited ({proc.returncode}):\n{err[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status, answer = post(conn, body)
            conn.close()
            if status == 200:
                return answer
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"error: no answer on port {port} within 120 s")


# -- the load generator (as bench/serve.py's) -------------------------------------------


def _client(args: tuple[int, bytes, int, int, Any]) -> list[float]:
    port, body, count, warmup, barrier = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(warmup):
        status, _ = post(conn, body)
        if status != 200:
            raise RuntimeError(f"warm-up request failed with {status}")
    barrier.wait()
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        status, _ = post(conn, body)
        times.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"request failed with {status}")
    conn.close()
    return times


def load(port: int, body: bytes, requests: int, clients: int, warmup: int) -> dict[str, Any]:
    """Throughput and latency of ``requests`` POSTs from ``clients`` processes."""
    per = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(clients + 1)
        with multiprocessing.Pool(clients) as pool:
            pending = pool.map_async(
                _client, [(port, body, n, warmup // clients, barrier) for n in per]
            )
            barrier.wait()
            t0 = time.perf_counter()
            results = pending.get(timeout=900)
            wall = time.perf_counter() - t0
    latencies = sorted(t for r in results for t in r)
    return {
        "requests": len(latencies),
        "seconds": wall,
        "rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


# -- main --------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    refresh = 0.0 if args.no_cache else args.refresh
    body = json.dumps({"inputs": [dict(zip(FEATURES, ROW, strict=True))]}).encode()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dmv-bench-registry-") as tmp:
        folder = Path(tmp)
        pg_url = create_pg_database(args.pg)
        procs = []
        try:
            roots = {
                "sqlite": make_project(folder / "sqlite", None),
                "postgresql": make_project(folder / "postgresql", pg_url),
            }
            servers = {}
            for name, root in roots.items():
                port = free_port()
                logfile = folder / f"{name}.log"
                proc = start_server(root, port, refresh, logfile)
                procs.append(proc)
                servers[name] = (proc, port, logfile)
            answers = {}
            for name, (proc, port, logfile) in servers.items():
                answers[name] = json.loads(wait_ready(proc, port, body, logfile))["outputs"]
                log(f"{name} registry: served on port {port}")
            if answers["sqlite"] != answers["postgresql"]:
                sys.exit(f"error: the two servers disagree: {answers}")
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            for i in range(args.rounds):
                # Alternate which goes first: a machine shared with other work drifts.
                order = list(servers) if i % 2 == 0 else list(reversed(servers))
                for name in order:
                    port = servers[name][1]
                    log(f"round {i + 1}: the {name} registry, {args.requests} requests")
                    measured = load(port, body, args.requests, args.clients, args.warmup)
                    log(f"  {measured['rps']:.0f} req/s, p50 {measured['p50_ms']:.2f} ms")
                    rounds[name].append(measured)
            for name, runs in rounds.items():  # the round of median throughput
                results[name] = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            drop_pg_database(args.pg, pg_url)
    ratio = results["postgresql"]["rps"] / results["sqlite"]["rps"]
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "load": {
            "requests": args.requests,
            "clients": args.clients,
            "rows": 1,
            "rounds": args.rounds,
        },
        "serve_refresh": "default" if refresh is None else refresh,
        "sqlite": results["sqlite"],
        "postgresql": results["postgresql"],
        "ratio": ratio,
        "target": TARGET,
        "pass": ratio >= TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="timed requests per registry")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests first")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per registry, alternating; the median"
    )
    parser.add_argument("--pg", default=PG_ADMIN, help="a PostgreSQL URL to create a database on")
    parser.add_argument(
        "--refresh", type=float, default=None, help="serve_refresh in seconds (default: dmv's)"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="serve_refresh = 0: the registry on every request"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 below the target")
    args = parser.parse_args(argv)
    report = measure(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"alias-resolved predict (iris@production), 1 row/request, {args.clients} clients, "
            f"{args.requests} requests (median of {args.rounds} rounds), {os.cpu_count()} CPUs, "
            f"serve_refresh {report['serve_refresh']}"
        )
        print(f"{'registry':<11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for name in ("sqlite", "postgresql"):
            r = report[name]
            print(f"{name:<11} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
        verdict = "PASS" if report["pass"] else "MISS"
        print(f"ratio PostgreSQL/SQLite: {report['ratio']:.2f}x (target >= {TARGET}x) {verdict}")
    return 1 if args.check and not report["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
