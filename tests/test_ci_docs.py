"""docs/ci.md stays honest: its YAML blocks parse, and every ``dmv …`` command the CI
jobs run exists in the click command tree with the options it is given."""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path
from typing import Any

import click
import pytest

from dmv.cli.commands import cli

yaml = pytest.importorskip("yaml")

PAGE = Path(__file__).resolve().parent.parent / "docs" / "ci.md"
FENCE = re.compile(r"^```yaml\n(.*?)^```\s*$", re.M | re.S)
#: Where one shell command ends and the next begins (redirections end the arguments).
_SEPARATORS = re.compile(r"\|\||&&|;|\||>>|>|2>&1|<")


def yaml_blocks() -> list[Any]:
    return [yaml.safe_load(block) for block in FENCE.findall(PAGE.read_text(encoding="utf-8"))]


def shell_lines(doc: Any) -> list[str]:
    """Every shell script a GitHub workflow (``run:``) or a GitLab job (``script:``) runs."""
    out: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "run" and isinstance(value, str):
                out.append(value)
            elif key in ("script", "before_script", "after_script"):
                out += [v for v in (value if isinstance(value, list) else [value]) if v]
            else:
                out += shell_lines(value)
    elif isinstance(doc, list):
        for value in doc:
            out += shell_lines(value)
    return out


def dmv_commands(script: str) -> list[list[str]]:
    """The argument lists of the ``dmv`` commands in a shell script."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        for part in _SEPARATORS.split(line):
            words = shlex.split(part, comments=True)
            if words and words[0] == "dmv":
                found.append(words[1:])
    return found


def _unparsed(ctx: click.Context) -> list[str]:
    """A group context's subcommand and its arguments (click 8 splits them in two)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # protected_args, until click 9
        return [*getattr(ctx, "protected_args", []), *ctx.args]


def parse(args: list[str]) -> click.Command:
    """Parse ``args`` as the dmv CLI would, down to the leaf command; raises on an unknown
    command, option or choice. Nothing is run."""
    group_ctx = cli.make_context("dmv", list(args), resilient_parsing=False)
    command: click.Command = cli
    ctx = group_ctx
    rest = _unparsed(ctx)
    while isinstance(command, click.Group):
        assert rest, f"dmv {' '.join(args)}: a group needs a command"
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"dmv {' '.join(args)}: no command {name!r}"
        command = sub
        ctx = command.make_context(name, list(rest), parent=ctx)
        rest = _unparsed(ctx)
    assert not rest, f"dmv {' '.join(args)}: unexpected arguments {rest}"
    return command


def test_the_yaml_blocks_parse_into_a_github_workflow_and_a_gitlab_job() -> None:
    docs = yaml_blocks()
    assert len(docs) == 2
    github, gitlab = docs
    # PyYAML reads the key 'on' as True (YAML 1.1); GitHub reads it as 'on'.
    assert "pull_request" in (github.get("on") or github.get(True))
    steps = github["jobs"]["check"]["steps"]
    assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in steps)
    job = gitlab["model-review"]
    assert job["rules"][0]["if"] == '$CI_PIPELINE_SOURCE == "merge_request_event"'
    assert isinstance(job["script"], list)


def test_every_dmv_command_the_jobs_run_exists_with_those_options() -> None:
    commands = [c for doc in yaml_blocks() for s in shell_lines(doc) for c in dmv_commands(s)]
    assert commands, "the jobs run no dmv command"
    names = set()
    for args in commands:
        names.add(parse(args).name)
    assert "check" in names
    # Both jobs post the Markdown report.
    assert ["check", "disease-progress", "--format", "markdown"] in commands


def test_the_checker_catches_a_command_or_option_that_does_not_exist() -> None:
    with pytest.raises(AssertionError, match="no command 'chek'"):
        parse(["chek", "m"])
    with pytest.raises(click.UsageError):
        parse(["check", "m", "--formatt", "markdown"])
    with pytest.raises(click.UsageError):
        parse(["check", "m", "--format", "html"])
    with pytest.raises(click.UsageError):
        parse(["policy", "show", "--nope"])
    assert parse(["policy", "show", "--json"]).name == "show"
    assert dmv_commands('set +e\ndmv check m --format markdown > "$X" || s=$?') == [
        ["check", "m", "--format", "markdown"]
    ]
