"""The URL redaction rules (dmv._urls): what each kind of URL keeps and loses."""

from __future__ import annotations

import pytest

from dmv._urls import database_url, git_url, source_url
from dmv.data.sources import strip_credentials
from dmv.gitlink import strip_credentials as git_strip
from dmv.registry.engine import redact_url

SOURCES = [
    # (url, shown)
    ("postgresql://ann:s3cret@db:5432/sales", "postgresql://ann@db:5432/sales"),
    ("postgresql://ann:p/ss@db/sales", "postgresql://ann@db/sales"),  # a raw / in the password
    ("postgresql://db/sales?sslmode=require&password=x", "postgresql://db/sales?sslmode=require"),
    ("s3://bucket/key.parquet?X-Amz-Signature=abc&X-Amz-Credential=k", "s3://bucket/key.parquet"),
    ("snowflake://ann@acct/db?token=t0k", "snowflake://ann@acct/db"),
    ("sqlite:////abs/path.db", "sqlite:////abs/path.db"),
    ("data/*.parquet", "data/*.parquet"),
    # Spark Connect: parameters after "/;", user information before the host.
    ("sc://spark:15002/;token=t0k;database=ml", "sc://spark:15002/;database=ml"),
    ("sc://spark:15002/;x-api-key=k;user_id=ann", "sc://spark:15002/;user_id=ann"),
    ("sc://ann:pw@spark:15002", "sc://spark:15002"),
    ("sc://127.0.0.1:15002", "sc://127.0.0.1:15002"),
]


@pytest.mark.parametrize(("url", "shown"), SOURCES)
def test_a_source_url_loses_its_password_and_secret_query_values(url: str, shown: str) -> None:
    assert source_url(url) == shown
    # The data layer's own name for the rule gives the same answer.
    assert strip_credentials(url) == shown


GIT = [
    ("https://ann:ghp_tok@github.com/o/r.git", "https://github.com/o/r.git"),
    ("https://tok@github.com/o/r", "https://github.com/o/r"),
    ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
    ("ssh://git:pw@host/o/r", "ssh://git@host/o/r"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("https://github.com/o/r", "https://github.com/o/r"),
]


@pytest.mark.parametrize(("url", "shown"), GIT)
def test_a_git_remote_loses_all_user_information_but_an_ssh_account(url: str, shown: str) -> None:
    assert git_url(url) == shown
    assert git_strip(url) == shown


def test_the_git_and_source_rules_differ_where_they_must() -> None:
    # A source keeps its user name (it selects the account that reads the data);
    # a git remote over https keeps none (it is often the token itself).
    assert source_url("https://tok@host/x") == "https://tok@host/x"
    assert git_url("https://tok@host/x") == "https://host/x"


DATABASES = [
    ("postgresql://ann:s3cret@db:5432/registry", "postgresql://ann@db:5432/registry"),
    ("postgresql+psycopg://ann:s@db/registry", "postgresql+psycopg://ann@db/registry"),
    ("sqlite:////abs/registry.db", "sqlite:////abs/registry.db"),
    ("not a url with a:secret@host", "host"),
]


@pytest.mark.parametrize(("url", "shown"), DATABASES)
def test_a_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert database_url(url) == shown
    assert redact_url(url) == shown
    assert "s3cret" not in database_url(url)
