"""What webhooks cost: the outbox row on each change, and delivery to a local receiver.

    .venv/bin/python bench/webhooks.py              # table
    .venv/bin/python bench/webhooks.py --json       # the same figures as JSON
    .venv/bin/python bench/webhooks.py --n 100      # fewer alias moves, quicker

Two fresh ``dmv.init(tmp)`` projects (SQLite registry), one without and one with a
``[[webhooks]]`` entry subscribed to ``alias``: each moves an alias N times (the
median of the moves is reported), then the second delivers its N events with
``deliver_webhooks()`` to an ``http.server`` receiver on loopback that verifies every
signature with ``hmac.compare_digest``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import dmv

SECRET = b"bench-secret"


class Receiver(BaseHTTPRequestHandler):
    verified: ClassVar[list[bool]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        self.verified.append(hmac.compare_digest(expected, self.headers["X-Dmv-Signature-256"]))
        self.send_response(204)
        self.end_headers()


def project(folder: Path, port: int | None) -> dmv.Project:
    p = dmv.init(folder)
    if port is not None:
        with (folder / "dmv.toml").open("a", encoding="utf-8") as f:
            f.write(
                f'\n[[webhooks]]\nurl = "http://127.0.0.1:{port}/"\nevents = ["alias"]\n'
                'secret_env = "DMV_BENCH_WEBHOOK_SECRET"\n'
            )
        p.close()
        p = dmv.Project(folder)
    with p.run("bench-model", version="0.1.0-a.b") as run:
        run.log_metrics({"rmse": 1.0}, split="test")
    return p


def moves(p: dmv.Project, n: int) -> float:
    """The median seconds of one alias move, over ``n`` moves."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        p.set_alias("bench-model@0.1.0-a.b", f"a{i % 20}")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="alias moves (and events)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    os.environ["DMV_BENCH_WEBHOOK_SECRET"] = SECRET.decode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        plain = project(Path(tmp) / "plain", None)
        hooked = project(Path(tmp) / "hooked", server.server_port)
        without, with_hook = moves(plain, args.n), moves(hooked, args.n)
        started = time.perf_counter()
        summary = hooked.deliver_webhooks()
        took = time.perf_counter() - started
        plain.close()
        hooked.close()
    server.shutdown()
    figures = {
        "alias_moves": args.n,
        "move_ms_without_webhooks": round(without * 1000, 3),
        "move_ms_with_webhooks": round(with_hook * 1000, 3),
        "delivered": summary.delivered,
        "deliver_seconds": round(took, 3),
        "deliveries_per_second": round(summary.delivered / took, 1),
        "signatures_verified": sum(Receiver.verified),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
