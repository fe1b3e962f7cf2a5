"""Signed releases: key pairs, signing a release, its provenance."""

from __future__ import annotations

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, when

__all__ = ["keys", "provenance", "sign"]


@click.group()
def keys() -> None:
    """Signing keys: releases are signed with [signing] key in dmv.toml (docs/signing.md)."""


@keys.command("generate")
@click.argument("name")
@click.option(
    "--dir",
    "folder",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to write NAME.pem and NAME.pub.pem in.",
)
@json_option
def generate(name: str, folder: str, as_json: bool) -> None:
    """Write an ECDSA P-256 key pair: DIR/NAME.pem (private, mode 0600) and DIR/NAME.pub.pem.

    Keep the private key out of the repository and the registry; list the public key
    under [signing] trusted_keys wherever releases are verified or served.
    """
    from dmv.integrations.signing import generate_keys  # lazy: cryptography

    paths = generate_keys(name, folder)
    emit(as_json, paths, f"private key: {paths['private']}\npublic key:  {paths['public']}")


@click.command()
@click.argument("ref")
@pass_ctx
@json_option
def sign(ctx: Context, ref: str, as_json: bool) -> None:
    """Sign the released version REF (again) with the project's current key.

    Adds a signature (its model files and its provenance) and keeps every earlier one;
    audited as version.sign. Use it after rotating keys, or for a release made unsigned.
    """
    record = ctx.project.sign(ref)
    status = ctx.project.signature(record.version)
    emit(
        as_json,
        {**record.to_dict(), **status.to_dict()},
        f"signed {record.version} with key {status.key or record.key_id[:16]} "
        f"({record.key_id[:16]}…) at {when(record.signed_at)}: {status.status}",
    )


@click.command()
@click.argument("ref")
@json_option
@pass_ctx
def provenance(ctx: Context, ref: str, as_json: bool) -> None:
    """Print REF's signed provenance: a DSSE envelope holding an in-toto Statement v1
    with an SLSA Provenance v1 predicate (always JSON; --json is accepted for scripts)."""
    emit(True, ctx.project.provenance(ref), "")
