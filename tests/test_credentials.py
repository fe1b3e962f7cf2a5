"""Source credentials at run time: the user's ``[sources]`` config, never the registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dmv.data.credentials import connect_url
from dmv.data.sources import Source
from dmv.errors import ConfigError

STORED = "postgresql://analyst@dwh.internal:5432/sales"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("DMV_USER_CONFIG", str(path))
    return path


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def test_a_stored_source_gets_its_password_from_the_environment_through_the_config(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        config,
        f'[sources]\n"{STORED}" = "postgresql://analyst:${{DWH_PASSWORD}}@dwh.internal:5432/sales"\n',
    )
    monkeypatch.setenv("DWH_PASSWORD", "s3cret")
    assert connect_url(STORED) == "postgresql://analyst:s3cret@dwh.internal:5432/sales"
    source = Source.from_url(STORED)
    assert source.url.endswith("analyst:s3cret@dwh.internal:5432/sales")
    assert source.identity() == STORED  # what the registry keeps has no password
    # a password typed on the command line wins over the config
    typed = "postgresql://analyst:typed@dwh.internal:5432/sales"
    assert connect_url(typed) == typed
    # other sources are untouched
    assert connect_url("postgresql://other@h/db") == "postgresql://other@h/db"


def test_without_a_config_the_url_is_left_to_the_driver(config: Path) -> None:
    assert not config.exists()
    assert connect_url(STORED) == STORED  # PGPASSWORD / ~/.pgpass apply in libpq


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        (
            f'[sources]\n"{STORED}" = "postgresql://analyst:x@evil.example/sales"\n',
            0o600,
            "another source",
        ),
        (
            f'[sources]\n"{STORED}" = "postgresql://analyst:${{NOPE}}@dwh.internal:5432/sales"\n',
            0o600,
            "NOPE",
        ),
        (
            f'[sources]\n"{STORED}" = "postgresql://analyst:x@dwh.internal:5432/sales"\n',
            0o644,
            "chmod 600",
        ),
        ("[sources\n", 0o600, "not valid TOML"),
        ("[sources]\nx = 1\n", 0o600, "must map source URLs"),
    ],
)
def test_a_bad_config_is_one_clear_error(
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    mode: int,
    message: str,
) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    _write(config, text, mode)
    with pytest.raises(ConfigError) as info:
        connect_url(STORED)
    assert message in (info.value.message + " " + (info.value.hint or ""))
