"""make demo: the reference scenario end to end, as a new user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dmv


@pytest.mark.slow
def test_demo_walks_the_reference_scenario(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "dmv.demo", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,  # every logged model passes the servability check in a fresh process
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "x.x.x-0123.abcd ex1",
        "→ disease-progress 0.0.1-0123.abcd tr0",
        "→ disease-progress 0.0.2-0123.abcd tr0",
        "→ disease-progress 0.1.0-0123.abcd tr0",
        "→ disease-progress 0.1.0-0123.efgh tr0",
        "released disease-progress 1.1.0-0123.efgh (serves tr0)",
        "→ disease-progress 0.1.0-0123.efgh tr1",
        "200 X-Model-Version: 1.1.0-0123.efgh",
        "a bad request → 422",
        "dmv verify disease-progress@production: all checks passed",
    ):
        assert line in out, f"{line!r} missing from:\n{out}"
    assert re.search(r"0\.1\.0-0123\.efgh ──release─*▶ 1\.1\.0-0123\.efgh", out), out
    project = dmv.open(folder)
    # the rows of split efgh are printed when it is made, so later counts add up
    efgh = project.split_info("disease-progress", "0123.efgh")
    rows = ", ".join(f"{p['name']} {p['rows']}" for p in efgh.parts)
    assert f"SPLIT efgh: the same rows split again (salt 2) → {rows}" in out
    assert [v.version.number for v in project.versions("disease-progress")] == [
        "0.0.1-0123.abcd",
        "0.0.2-0123.abcd",
        "0.1.0-0123.abcd",
        "0.1.0-0123.efgh",
        "1.1.0-0123.efgh",
    ]
    assert project.resolve("disease-progress@production").number == "1.1.0-0123.efgh"
