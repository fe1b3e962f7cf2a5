"""The URL redaction rules (dmv._urls): what each kind of URL keeps and loses."""

from __future__ import annotations

import pytest

from dmv._urls import database_url, git_url, source_url
from dmv.data.credentials import strip_credentials
from dmv.logic.git import strip_credentials as git_strip
from dmv.registry.engine import database_url as redact_url

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


# One rule for every URL: each kind of secret a URL can carry, and where it sits.
SECRETS = [
    # userinfo
    ("postgresql://ann:S1@db/x", "postgresql://ann@db/x"),
    ("postgresql://ann:p?ss#w@db/x", "postgresql://ann@db/x"),  # raw ? and # in the password
    # libpq query parameters
    ("postgresql://db/x?password=S1", "postgresql://db/x"),
    ("postgresql://db/x?sslmode=require&sslpassword=S1", "postgresql://db/x?sslmode=require"),
    ("postgresql://db/x?passwd=S1&pwd=S2&PWD=S3", "postgresql://db/x"),
    (
        "postgresql://db/x?sslkey=/home/ann/.pg/key.pem&sslmode=verify-full",
        "postgresql://db/x?sslmode=verify-full",
    ),
    # credentials inside libpq options=, an ODBC string, fsspec storage options
    ("postgresql://db/x?options=-c%20password%3DS1", "postgresql://db/x"),
    (
        "postgresql://db/x?options=-cstatement_timeout%3D5&sslmode=disable",
        "postgresql://db/x?options=-cstatement_timeout%3D5&sslmode=disable",
    ),
    ("mssql+pyodbc://?odbc_connect=DRIVER%3Dx%3BUID%3Dann%3BPWD%3DS1", "mssql+pyodbc://"),
    ('s3://b/k?storage_options={"token":"S1"}', "s3://b/k"),
    # tokens and keys over HTTP
    ("http://lineage:5000/api?token=S1", "http://lineage:5000/api"),
    ("http://lineage/api?access_token=S1&x=1", "http://lineage/api?x=1"),
    ("http://lineage/api?api_key=S1", "http://lineage/api"),
    ("http://lineage/api?apikey=S1&secret=S2&client_secret=S3", "http://lineage/api"),
    ("http://h/?credential=S1&credentials=S2&auth=S3&Authorization=S4", "http://h/"),
    ("http://h/?jwt=S1&bearer=S2&cookie=S3", "http://h/"),
    ("http://h/app#access_token=S1&state=x", "http://h/app"),
    ("http://h/app#section-2", "http://h/app#section-2"),
    # presigned object URLs: S3 v2 and v4, Azure SAS, GCS
    (
        "https://b.s3.amazonaws.com/k?AWSAccessKeyId=A&Expires=1&Signature=S1",
        "https://b.s3.amazonaws.com/k?Expires=1",
    ),
    (
        "https://b/k?X-Amz-Algorithm=a&X-Amz-Credential=S1&X-Amz-Signature=S2"
        "&X-Amz-Security-Token=S3",
        "https://b/k?X-Amz-Algorithm=a",
    ),
    (
        "https://acct.blob.core.windows.net/c/k?sv=2020&sig=S1",
        "https://acct.blob.core.windows.net/c/k?sv=2020",
    ),
    (
        "https://storage.googleapis.com/b/k?X-Goog-Signature=S1",
        "https://storage.googleapis.com/b/k",
    ),
    # Spark Connect parameters, also inside a value
    ("sc://spark:15002/;token=S1", "sc://spark:15002"),
    ("sc://spark:15002/;user_id=ann;x-api-key=S1;token=S2", "sc://spark:15002/;user_id=ann"),
]


@pytest.mark.parametrize(("url", "shown"), SECRETS)
def test_every_kind_of_url_secret_is_hidden_by_every_rule(url: str, shown: str) -> None:
    assert source_url(url) == shown
    assert database_url(url) == shown
    assert "S1" not in git_url(url) and "S2" not in git_url(url)
    # Redaction is stable: what is shown is shown again unchanged.
    assert source_url(shown) == shown


def test_a_git_remote_loses_query_secrets_too() -> None:
    assert git_url("https://tok@host/o/r.git?private_token=S1") == "https://host/o/r.git"


KEPT = [
    # Not secrets: what a connection needs stays, so the shown URL still connects alike.
    "postgresql://host:5432/db?user=ann@corp.example&sslmode=require",
    "postgresql://db/x?target_session_attrs=read-write&application_name=etl",
    "postgresql://db/x?sslrootcert=/etc/keys/root.crt",
    "sc://spark:15002/;session_id=0d2d6e5c;user_id=ann",
    "s3://bucket/prefix/part-0.parquet?versionId=3",
]


@pytest.mark.parametrize("url", KEPT)
def test_what_is_not_a_secret_stays_as_written(url: str) -> None:
    assert source_url(url) == url
    assert database_url(url) == url


def test_urls_and_query_strings_inside_a_message_are_redacted() -> None:
    from dmv._urls import redact_text

    message = (
        "API request to http://h:5000/?token=S1 failed: Max retries exceeded with url: "
        "/?token=S2/api/2.0/search&max_results=10 (HttpConfig(url='http://h?api_key=S3'))"
    )
    shown = redact_text(message)
    assert not {"S1", "S2", "S3"} & set(shown.replace("=", " ").replace("/", " ").split())
    assert "S1" not in shown and "S2" not in shown and "S3" not in shown
    assert "max_results=10" in shown and "http://h:5000/" in shown
    assert redact_text("no url here? none") == "no url here? none"
