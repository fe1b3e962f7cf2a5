"""One process of tests/test_load.py: a random mix of registry writes until a deadline.

Usage: ``load_worker.py ROOT INDEX RENDEZVOUS SEED``. The registry comes from the
project (or ``DMV_REGISTRY``). The worker writes ``RENDEZVOUS/ready-INDEX``, waits
for ``RENDEZVOUS/go`` (which holds the start and end times), works until the end
time, and prints one JSON report of everything it made, so that the test can
compare it with what the registry holds. Every exception is recorded, not raised:
the test asserts there are none (except the one refusal a race must produce).
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

import dmv
import dmv.release.releases  # imported before the start, not while timed
import dmv.training.run
from dmv.errors import ConflictError
from dmv.logic.fingerprint import capture_environment, logic_info

MODEL = "load-model"
DATA = "0123.abcd"
SHARED_RUN_Z = (1, 2, 3, 4)  # every worker logs runs into 0.0.1 … 0.0.4
SHARED_REGISTER_Z = (50, 51)  # every worker registers these (idempotent)
ALIASES = ("production", "staging", "canary")
OPS = {
    "run-shared": 30,
    "run-own": 20,
    "register": 10,
    "register-shared": 5,
    "alias": 18,
    "release-own": 8,
    "release-shared": 4,
    "release-major": 1,
}


def main() -> None:
    root, index, rendezvous, seed = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    rng = random.Random(f"{seed}:{index}")
    project = dmv.open(root)
    project.models()  # connect, and fill the caches a first run fills, before the start
    capture_environment()
    logic_info([], project.root, {}, project.config["logic_components"])
    (rendezvous / f"ready-{index}").write_text("")
    go = rendezvous / "go"
    while not go.exists():
        time.sleep(0.005)
    start, end = json.loads(go.read_text())
    while time.time() < start:
        time.sleep(0.001)

    y = index + 1  # this worker's own prereleases are 0.<y>.<z>
    runs: list[tuple[str, str]] = []  # (version number, run id)
    created: list[str] = []  # versions this worker registered without a run
    releases: list[tuple[str, str]] = []  # (released number, prerelease number)
    refused: list[str] = []  # releases a race lost, with dmv's message
    moves: Counter[str] = Counter()
    errors: list[str] = []  # "<op>: <exception>", then the traceback
    ops: Counter[str] = Counter()
    latency: dict[str, list[float]] = defaultdict(list)
    known: list[str] = []  # versions this worker knows exist (alias targets)
    own_unreleased: list[str] = []
    own_released: list[str] = []
    my_shared: set[str] = set()
    own_z = register_z = 0
    names, weights = list(OPS), list(OPS.values())

    def run(number: str) -> None:
        with project.run(MODEL, version=number, params={"w": 0}) as r:
            r.log_metrics({"i": len(runs), "worker": index})
        runs.append((number, str(r.id)))

    def release(number: str, *, major: bool = False) -> None:
        info = project.release(f"{MODEL}@{number}", major=major)
        releases.append((info.version.number, number))
        known.append(info.version.number)

    while time.time() < end:
        op = rng.choices(names, weights)[0]
        t0 = time.perf_counter()
        try:
            if op == "run-shared":
                number = f"0.0.{rng.choice(SHARED_RUN_Z)}-{DATA}"
                run(number)
                my_shared.add(number)
                known.append(number)
            elif op == "run-own":
                number = f"0.{y}.{own_z}-{DATA}"
                own_z += 1
                run(number)
                own_unreleased.append(number)
                known.append(number)
            elif op == "register":
                number = f"0.{100 + index}.{register_z}-{DATA}"
                register_z += 1
                project.registry.create_version(dmv.Version.parse(f"{MODEL} {number}"))
                created.append(number)
                known.append(number)
            elif op == "register-shared":
                number = f"0.0.{rng.choice(SHARED_REGISTER_Z)}-{DATA}"
                project.registry.create_version(dmv.Version.parse(f"{MODEL} {number}"))
                created.append(number)
                known.append(number)
            elif op == "alias":
                if not known:
                    continue
                alias = rng.choice(ALIASES)
                project.set_alias(f"{MODEL}@{rng.choice(known)}", alias)
                moves[alias] += 1
            elif op == "release-own":
                if not own_unreleased:
                    continue
                number = own_unreleased.pop(rng.randrange(len(own_unreleased)))
                release(number)
                own_released.append(number)
            elif op == "release-shared":
                if not my_shared:
                    continue
                number = rng.choice(sorted(my_shared))
                try:
                    release(number)
                except ConflictError as exc:
                    # Another worker released it in this generation first: the
                    # one refusal a race must produce, and the only one allowed.
                    if "is released already as" not in exc.message:
                        raise
                    refused.append(exc.message)
            elif op == "release-major":
                # A prerelease is released once; a major release takes a fresh one.
                if not own_unreleased:
                    continue
                number = own_unreleased.pop(rng.randrange(len(own_unreleased)))
                release(number, major=True)
                own_released.append(number)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            errors.append(f"{op}: {type(exc).__name__}: {first}\n{traceback.format_exc()}")
        ops[op] += 1
        latency[op].append(time.perf_counter() - t0)

    project.close()
    print(
        json.dumps(
            {
                "index": index,
                "ops": ops,
                "errors": errors,
                "runs": runs,
                "created": created,
                "releases": releases,
                "refused": refused,
                "moves": moves,
                "latency": latency,
            }
        )
    )


if __name__ == "__main__":
    main()
