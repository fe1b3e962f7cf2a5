"""The docs' examples run: each page's fenced blocks marked ``test`` are executed in order,
in a fresh project folder, with the real ``dmv`` command and real files.

A block is marked in its info string, after the language: ```` ```console test ```` or
```` ```python test ````; ```` ```console test postgres ```` needs the PostgreSQL at
127.0.0.1:5432 and is skipped, with the page's later blocks, when it is not there.

* ``console``: each line starting with ``$ `` is a shell command (a line ending with ``\\``
  continues it); the lines after it, up to the next command, are its output. Every line
  shown must appear in what the command prints, in that order (lines not shown are
  allowed); ``…`` in a line matches anything, and runs of spaces match any spacing. A
  command must exit 0 unless its output shows an ``error:`` line.
* ``python``: the block runs as a script in a fresh interpreter; it must exit 0, so an
  ``assert`` in it is checked.

The blocks of one page share one folder, so a page reads as one session.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w+)([^\n`]*)\n(.*?)^```\s*$", re.M | re.S)
RUNNABLE = ("sources.md", "interface.md", "reproduce.md", "ui.md")
COMMAND_TIMEOUT = 300


@dataclass
class Block:
    page: str
    line: int
    lang: str
    needs: set[str]
    text: str


@dataclass
class Command:
    line: int
    text: str
    expected: list[str] = field(default_factory=list)


def blocks(page: Path) -> list[Block]:
    """The blocks of ``page`` marked ``test``, in order."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        words = m.group(2).split()
        if words[:1] == ["test"]:
            line = text.count("\n", 0, m.start()) + 1
            out.append(Block(page.name, line, m.group(1), set(words[1:]), m.group(3)))
    return out


def commands(block: Block) -> list[Command]:
    out: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            cmd, start = line[2:], i
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd += "\n" + lines[i]  # bash joins them
            out.append(Command(block.line + 1 + start, cmd))
        elif out and line.strip():
            out[-1].expected.append(line.rstrip())
        elif line.strip():
            raise AssertionError(f"{block.page}:{block.line}: output before any command: {line}")
        i += 1
    return out


def _pattern(line: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in re.split(r"…|\.\.\.", line.strip())]
    body = ".*".join(re.sub(r"(\\ )+", r"\\s+", p) for p in parts)
    return re.compile(rf"^\s*{body}\s*$")


def missing_lines(expected: list[str], actual: str) -> list[str]:
    """The expected lines not found, in order, among ``actual``'s lines."""
    got = [line.rstrip() for line in actual.splitlines()]
    at, missing = 0, []
    for want in expected:
        pattern = _pattern(want)
        for j in range(at, len(got)):
            if pattern.match(got[j]):
                at = j + 1
                break
        else:
            missing.append(want)
    return missing


def postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def environment(home: Path) -> dict[str, str]:
    """What a user's shell would have: this interpreter's ``dmv`` first on PATH, this
    checkout's ``src`` importable, a git identity, and nothing of the caller's dmv settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMV_")}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(ROOT / "src"),
        HOME=str(home),
        DMV_USER_CONFIG=str(home / "no-user-config.toml"),
        GIT_AUTHOR_NAME="Ada",
        GIT_AUTHOR_EMAIL="ada@example.org",
        GIT_COMMITTER_NAME="Ada",
        GIT_COMMITTER_EMAIL="ada@example.org",
        NO_COLOR="1",
        COLUMNS="200",
    )
    return env


def run_page(name: str, folder: Path) -> None:
    home = folder.parent / "home"
    home.mkdir(exist_ok=True)
    env = environment(home)
    found = blocks(DOCS / name)
    assert found, f"docs/{name} has no block marked test"
    for n, block in enumerate(found):
        where = f"docs/{name}:{block.line}"
        if "postgres" in block.needs and not postgres_up():
            pytest.skip(f"{where} needs PostgreSQL at 127.0.0.1:5432")
        if block.lang == "python":
            script = folder / f".doc-block-{n}.py"
            script.write_text(block.text, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, script.name],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            script.unlink()
            assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
            continue
        assert block.lang == "console", f"{where}: cannot run a {block.lang} block"
        for cmd in commands(block):
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", cmd.text],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            output = done.stdout + done.stderr
            shows_error = any(line.startswith("error:") for line in cmd.expected)
            assert (done.returncode != 0) == shows_error, (
                f"docs/{name}:{cmd.line}: `{cmd.text}` exited {done.returncode}:\n{output}"
            )
            missing = missing_lines(cmd.expected, output)
            assert not missing, (
                f"docs/{name}:{cmd.line}: `{cmd.text}` did not print {missing}; it printed:\n"
                f"{output}"
            )


# -- the runner itself ---------------------------------------------------------------------


def test_expected_output_matches_in_order_with_wildcards() -> None:
    printed = "fujpev\n  columns: flight_id BIGINT, origin VARCHAR\nstorage: 826 row(s)\n"
    assert missing_lines(["…", "  columns: flight_id BIGINT, …"], printed) == []
    assert missing_lines(["columns:   flight_id BIGINT, origin VARCHAR"], printed) == []
    assert missing_lines(["storage: …", "columns: …"], printed) == ["columns: …"]
    assert missing_lines(["columns: flight_id INTEGER, …"], printed) != []


def test_commands_continue_over_backslashes_and_collect_their_output() -> None:
    block = Block("x.md", 10, "console", set(), "$ dmv a \\\n    --b c\nout 1\n\nout 2\n$ ls\n")
    got = commands(block)
    assert [(c.line, c.text, c.expected) for c in got] == [
        (11, "dmv a \\\n    --b c", ["out 1", "out 2"]),
        (16, "ls", []),
    ]


# -- the pages -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNNABLE)
def test_the_pages_examples_run(name: str, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    folder = tmp_path / "project"
    folder.mkdir()
    run_page(name, folder)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", readme))
    pages = {p.name for p in DOCS.glob("*.md")}
    assert pages - linked == set(), "pages the README does not link"


def test_relative_links_in_the_docs_lead_to_files() -> None:
    broken = []
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []
