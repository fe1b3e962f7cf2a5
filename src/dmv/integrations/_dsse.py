"""Keys, DSSE envelopes and OpenSSF Model Signing bundles, on ``cryptography`` alone.

Two signed documents per release, both DSSE (``application/vnd.in-toto+json``):

- the **model signature**, in the OpenSSF Model Signing v1.0 format (a Sigstore
  bundle v0.3 holding a DSSE envelope over an in-toto statement whose predicate
  lists each file's SHA-256): what ``model_signing verify key`` checks;
- the **provenance**, an in-toto Statement v1 with an SLSA Provenance v1
  predicate, in a plain DSSE envelope any DSSE library verifies.

Keys are ECDSA P-256 (``ecdsa-sha2-nistp256``); a key's id is the SHA-256 of its
public PEM (SubjectPublicKeyInfo), as OpenSSF Model Signing records it. A private
key is read, used and dropped: it is never written anywhere but the file
:func:`generate_key_pair` creates, and never put into an error message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dmv.errors import ConfigError, ConflictError, SignatureError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "IN_TOTO_PAYLOAD",
    "MODEL_SIGNING_PREDICATE",
    "PrivateKey",
    "generate_key_pair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "model_bundle",
    "open_dsse",
    "pae",
    "public_pem",
    "sign_dsse",
    "verify_bundle",
]

IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
PrivateKey = Any  # cryptography's EllipticCurvePrivateKey (lazy: cryptography)


def _ec() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ec  # lazy: cryptography
    except ImportError:
        raise ConfigError(
            "signing needs the 'cryptography' package, which is not installed",
            hint="pip install 'dmv[signing]'",
        ) from None
    return ec


def generate_key_pair(name: str, folder: Path) -> tuple[Path, Path]:
    """Write ``NAME.pem`` (mode 0600, created so) and ``NAME.pub.pem`` in ``folder``."""
    _ec()  # a clear error when cryptography is missing
    from cryptography.hazmat.primitives import serialization  # lazy: cryptography

    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    for path in (private, public):
        if path.exists():
            raise ConflictError(
                f"{path} exists already; a key file is never overwritten",
                hint="pick another NAME or --dir, or move the old key away first",
            )
    folder.mkdir(parents=True, exist_ok=True)
    key = _ec().generate_private_key(_ec().SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL and 0600 from the first byte: no moment where another user can read it.
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public.write_bytes(public_pem(key).encode())
    return private, public


def load_private_key(pem: bytes, origin: str) -> PrivateKey:
    """An ECDSA P-256 private key from PEM; ``origin`` names where it came from (not it)."""
    _ec()  # a clear error when cryptography is missing
    from cryptography.hazmat.primitives import serialization  # lazy: cryptography

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"the signing key from {origin} is not an unencrypted PEM private key",
            hint="generate one with 'dmv keys generate NAME' and point [signing] key at it",
        ) from None
    if not isinstance(key, _ec().EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError(
            f"the signing key from {origin} is not an ECDSA P-256 key",
            hint="generate one with 'dmv keys generate NAME'",
        )
    return key


def load_public_key(pem: bytes, origin: str) -> Any:
    """An ECDSA P-256 public key from PEM (ConfigError naming ``origin`` otherwise)."""
    _ec()  # a clear error when cryptography is missing
    from cryptography.hazmat.primitives import serialization  # lazy: cryptography

    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, _ec().EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError(
            f"{origin} is not an ECDSA P-256 public key in PEM",
            hint="use the NAME.pub.pem file 'dmv keys generate NAME' wrote",
        )
    return key


def public_pem(key: Any) -> str:
    """The PEM (SubjectPublicKeyInfo) of a public key, or of a private key's public half."""
    from cryptography.hazmat.primitives import serialization  # lazy: cryptography

    public = key.public_key() if hasattr(key, "public_key") else key
    raw: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return raw.decode()


def key_id(key: Any) -> str:
    """The SHA-256 of the key's public PEM, hex (OpenSSF Model Signing's key hint)."""
    return hashlib.sha256(public_pem(key).encode()).hexdigest()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _sign(key: PrivateKey, payload: bytes) -> str:
    from cryptography.hazmat.primitives import hashes  # lazy: cryptography

    der = key.sign(pae(IN_TOTO_PAYLOAD, payload), _ec().ECDSA(hashes.SHA256()))
    return base64.b64encode(der).decode()


def _verified(public: Any, payload: bytes, sig: str) -> bool:
    from cryptography.exceptions import InvalidSignature  # lazy: cryptography
    from cryptography.hazmat.primitives import hashes

    try:
        public.verify(
            base64.b64decode(sig, validate=True),
            pae(IN_TOTO_PAYLOAD, payload),
            _ec().ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_dsse(key: PrivateKey, statement: Mapping[str, Any]) -> dict[str, Any]:
    """A DSSE envelope over ``statement`` (an in-toto statement), signed by ``key``."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    return {
        "payloadType": IN_TOTO_PAYLOAD,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id(key), "sig": _sign(key, payload)}],
    }


def open_dsse(envelope: Any, public: Any, what: str) -> dict[str, Any]:
    """The statement in ``envelope`` once its signature verifies with ``public``."""
    try:
        if envelope["payloadType"] != IN_TOTO_PAYLOAD:
            raise ValueError("payloadType")
        payload = base64.b64decode(envelope["payload"], validate=True)
        sigs = [s["sig"] for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError):
        raise SignatureError(
            f"{what} is not a DSSE envelope", hint=_RESIGN_HINT, check="envelope"
        ) from None
    if not any(_verified(public, payload, s) for s in sigs):
        raise SignatureError(
            f"{what}: the signature does not verify with the key it names (altered)",
            hint=_RESIGN_HINT,
            check="envelope",
        )
    try:
        statement = json.loads(payload)
    except ValueError:
        statement = None
    if not isinstance(statement, dict):
        raise SignatureError(f"{what}: the payload is not JSON", hint=_RESIGN_HINT)
    return statement


_RESIGN_HINT = (
    "the stored signature was altered or made by another key; restore it from a backup, or "
    "re-sign the release with 'dmv sign REF' once you have checked it ('dmv verify REF')"
)


def _sort_key(name: str) -> tuple[str, ...]:
    return tuple(name.split("/"))  # model_signing sorts resources as paths


def model_bundle(
    key: PrivateKey, model_name: str, files: Mapping[str, bytes], ignored: list[str]
) -> dict[str, Any]:
    """The OpenSSF Model Signing v1.0 bundle of ``files`` (path → bytes), signed by ``key``.

    ``ignored`` lists paths of the signed folder that are not part of the model
    (``model_signing verify`` skips them as the signature says).
    """
    resources = [
        {"algorithm": "sha256", "name": name, "digest": hashlib.sha256(files[name]).hexdigest()}
        for name in sorted(files, key=_sort_key)
    ]
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": model_name, "digest": {"sha256": root}}],
        "predicateType": MODEL_SIGNING_PREDICATE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": ignored,
            },
            "resources": resources,
        },
    }
    envelope = sign_dsse(key, statement)
    envelope["signatures"][0]["keyid"] = ""  # as model_signing writes it: the hint names the key
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_id(key)}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    }


def verify_bundle(bundle: Any, public: Any, files: Mapping[str, bytes], what: str) -> None:
    """Check ``bundle`` is signed by ``public`` and lists exactly ``files``, byte for byte.

    Raises :class:`SignatureError` naming the first thing that differs.
    """
    try:
        envelope = bundle["dsseEnvelope"]
        hint = bundle["verificationMaterial"]["publicKey"]["hint"]
    except (KeyError, TypeError):
        raise SignatureError(
            f"{what} is not an OpenSSF Model Signing bundle", hint=_RESIGN_HINT, check="model"
        ) from None
    if hint != key_id(public):
        raise SignatureError(
            f"{what} names key {str(hint)[:16]}…, not {key_id(public)[:16]}…",
            hint=_RESIGN_HINT,
            check="model",
        )
    statement = open_dsse(envelope, public, what)
    try:
        listed = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    except (KeyError, TypeError):
        raise SignatureError(f"{what} lists no files", hint=_RESIGN_HINT, check="model") from None
    actual = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    differ = sorted(n for n in set(listed) | set(actual) if listed.get(n) != actual.get(n))
    if differ:
        raise SignatureError(
            f"{what}: the stored model files differ from what was signed: {', '.join(differ)}",
            hint="the model files or their registry rows changed after signing; restore them "
            "from a backup ('dmv restore')",
            check="model",
        )
