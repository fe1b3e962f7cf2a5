"""Progress bars: drawn on a terminal, never under --json or into a pipe."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dmv.cli._progress import Bars
from dmv.progress import per_stage


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_draw_each_stage_on_a_terminal() -> None:
    out = _Terminal()
    with Bars(True, out) as bars:
        bars("copying artifacts", 1, 3)
        bars("copying artifacts", 3, 3)
        bars("checking behaviour", 0, 1)
    text = out.getvalue()
    assert "copying artifacts" in text and "3/3" in text
    assert "checking behaviour" in text and "0/1" in text


def test_bars_are_off_under_json_and_off_a_terminal() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for bars in (Bars(False, terminal), Bars(True, pipe)):
        with bars:
            bars("copying artifacts", 1, 3)
    assert terminal.getvalue() == "" and pipe.getvalue() == ""


def test_a_byte_count_reports_as_its_stage() -> None:
    seen: list[tuple[str, int, int | None]] = []
    report = per_stage(lambda *a: seen.append(a), "uploading model.skops")
    assert report is not None
    report(10, 20)
    assert seen == [("uploading model.skops", 10, 20)]
    assert per_stage(None, "x") is None


def _dmv_on_a_terminal(args: list[str], cwd: Path) -> tuple[str, str]:
    """Run ``dmv ARGS`` with stderr on a pseudo-terminal; (stdout, what the terminal got)."""
    master, slave = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dmv", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        text=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not chunk:
            break
        chunks.append(chunk)
    stdout, _ = proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == 0, stdout + b"".join(chunks).decode(errors="replace")
    return stdout, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_backup_shows_a_bar_on_a_terminal_and_none_under_json_or_in_a_pipe(tmp_path: Path) -> None:
    import dmv

    project = dmv.init(tmp_path / "p")
    project.close()
    out, terminal = _dmv_on_a_terminal(["backup", str(tmp_path / "b1")], tmp_path / "p")
    assert "copying artifacts" in terminal and "backed up to" in out
    out, terminal = _dmv_on_a_terminal(["backup", "--json", str(tmp_path / "b2")], tmp_path / "p")
    assert "copying artifacts" not in terminal and json.loads(out)["path"]
    # Not a terminal (a pipe): no bar either.
    done = subprocess.run(
        [sys.executable, "-m", "dmv", "backup", str(tmp_path / "b3")],
        cwd=tmp_path / "p",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
        check=True,
    )
    assert "copying artifacts" not in done.stderr
