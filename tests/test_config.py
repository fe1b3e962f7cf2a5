"""Settings: declared once, looked up flag → environment → dmv.toml → default."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import dmv
from dmv import ConfigError
from dmv.cli import main
from dmv.config import SETTINGS, Config


def test_lookup_order(tmp_path: Path) -> None:
    (tmp_path / "dmv.toml").write_text(
        '[dmv]\nwarehouse = "from-file.duckdb"\nid_style = "timestamp"\n'
    )
    env = {"DMV_WAREHOUSE": "from-env.duckdb"}
    assert Config(tmp_path, environ={})["warehouse"] == "from-file.duckdb"
    assert Config(tmp_path, environ=env)["warehouse"] == "from-env.duckdb"
    assert Config(tmp_path, {"warehouse": "flag.duckdb"}, environ=env)["warehouse"] == "flag.duckdb"
    assert Config(tmp_path, environ={})["registry"] == ".dmv/registry.db"  # the default
    assert Config(tmp_path, environ={}).location("warehouse") == str(tmp_path / "from-file.duckdb")
    assert Config(tmp_path, environ={"DMV_ALLOW_DIRTY": "yes"})["allow_dirty"] is True


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("[dmv]\nregistr = 'x'\n", {}, "unknown setting(s) registr"),
        ("[dmv]\nid_style = 'uuid'\n", {}, "'uuid' is not one of hash, timestamp"),
        ("[dmv\n", {}, "not valid TOML"),
        ("", {"DMV_ALLOW_DIRTY": "maybe"}, "environment variable DMV_ALLOW_DIRTY"),
        # The bound a server states for serving a change is at most one second.
        ("[dmv]\nserve_refresh = 5\n", {}, "5 is not between 0 and 1"),
        ("", {"DMV_SERVE_REFRESH": "-0.1"}, "'-0.1' is not between 0 and 1"),
    ],
)
def test_bad_settings_are_named(
    tmp_path: Path, text: str, env: dict[str, str], fragment: str
) -> None:
    (tmp_path / "dmv.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        Config(tmp_path, environ=env)
    assert fragment in str(info.value)


def test_every_setting_has_help_and_an_env_name() -> None:
    for setting in SETTINGS:
        assert setting.help and setting.env == "DMV_" + setting.name.upper()


def test_init_writes_the_stores_it_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "p"
    code = main(
        [
            "init",
            str(target),
            "--warehouse",
            "data/dwh.duckdb",
            "--artifacts",
            str(tmp_path / "blobs"),
        ]
    )
    assert code == 0
    written = tomllib.loads((target / "dmv.toml").read_text())["dmv"]
    assert written["warehouse"] == "data/dwh.duckdb"
    assert written["artifacts"] == str(tmp_path / "blobs")
    project = dmv.open(target)
    assert project.config.location("warehouse") == str(target / "data" / "dwh.duckdb")
    # an existing dmv.toml is left alone
    assert main(["init", str(target), "--warehouse", "other.duckdb"]) == 0
    assert tomllib.loads((target / "dmv.toml").read_text())["dmv"]["warehouse"] == (
        "data/dwh.duckdb"
    )
    capsys.readouterr()


@pytest.mark.postgres
def test_a_project_on_postgres_remembers_it(tmp_path: Path, pg_database: str) -> None:
    project = dmv.init(tmp_path / "p", registry=pg_database)
    project.create_model("m")
    project.close()
    reopened = dmv.open(tmp_path / "p")
    assert reopened.registry.engine.dialect.name == "postgresql"
    assert [m.name for m in reopened.models()] == ["m"]
    reopened.close()
