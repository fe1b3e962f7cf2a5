"""Project settings, each declared once as data.

Lookup order, first hit wins: an explicit override (a CLI flag or keyword
argument), the environment (``DMV_<NAME>``), the project's ``dmv.toml``, the
default. Relative paths in ``dmv.toml`` are relative to the project root.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from dmv.errors import ConfigError

__all__ = [
    "BRANCH_PATTERN",
    "CONFIG_FILE",
    "RELEASE_POLICY",
    "SETTINGS",
    "WEBHOOK_EVENTS",
    "Config",
    "ModelServing",
    "ReleasePolicy",
    "Setting",
    "SigningConfig",
    "TrustedKey",
    "Webhook",
    "find_root",
    "write_config",
]

CONFIG_FILE = "dmv.toml"


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if str(value) not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    return parse


def _parse_size(value: Any) -> int:
    """A positive byte count: ``16777216``, ``16MB``, ``512kB``."""
    text = str(value).strip().upper().removesuffix("B")
    factor = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    number = int(text[:-1] if factor > 1 else text)
    if number <= 0:
        raise ValueError(f"{value!r} is not a positive size")
    return number * factor


def _parse_count(value: Any) -> int:
    number = int(str(value).strip().replace("_", ""))
    if number <= 0:
        raise ValueError(f"{value!r} is not a positive number")
    return number


def _parse_refresh(value: Any) -> float:
    seconds = float(str(value).strip())
    if not 0 <= seconds <= 1:
        raise ValueError(f"{value!r} is not between 0 and 1 (seconds)")
    return seconds


def _parse_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    raise ValueError(f"{value!r} is not a list")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = str

    @property
    def env(self) -> str:
        return "DMV_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "registry",
        ".dmv/registry.db",
        "Model repository: a SQLite file path or a SQLAlchemy URL (postgresql://…).",
    ),
    Setting(
        "artifacts",
        ".dmv/artifacts",
        "Artifact store: a folder or an fsspec URL (s3://bucket/prefix).",
    ),
    Setting(
        "warehouse",
        ".dmv/warehouse.duckdb",
        "Data warehouse for splits: a DuckDB file path or a SQLAlchemy URL.",
    ),
    Setting(
        "id_style",
        "hash",
        "How DATA and SPLIT ids are made: 'hash' (short, derived) or 'timestamp'.",
        _parse_choice("hash", "timestamp"),
    ),
    Setting(
        "allow_dirty",
        False,
        "Allow versioned runs from a git tree with uncommitted changes to the code.",
        _parse_bool,
    ),
    Setting(
        "logic_components",
        ("code", "libraries", "python", "params"),
        "Which parts count toward the logic version (Z).",
        _parse_list,
    ),
    Setting("actor", "", "Who is recorded in the audit log (default: $USER)."),
    Setting(
        "split_min_share",
        0.5,
        "A split part must hold at least this fraction of its ratio's rows (else refused).",
        float,
    ),
    Setting(
        "source_timeout",
        3600.0,
        "Seconds one retrieval statement may run on a PostgreSQL source or Spark (0: no limit).",
        float,
    ),
    Setting(
        "max_request_size",
        16 * 1024**2,
        "The largest request body the server accepts (bytes, or 16MB, 512kB); larger is 413.",
        _parse_size,
    ),
    Setting(
        "max_rows_per_request",
        100_000,
        "The most rows one predict request may carry; more is 413.",
        _parse_count,
    ),
    Setting(
        "serve_refresh",
        0.25,
        "Seconds a server may answer from memory before re-checking the registry for moved "
        "aliases, releases and deprecations (at most 1; 0: ask on every request).",
        _parse_refresh,
    ),
    Setting(
        "allowed_hosts",
        (),
        "Host names the server answers besides loopback (e.g. dmv.example.org, *.corp).",
        _parse_list,
    ),
    Setting(
        "trust",
        (),
        "Model formats that can run code this project writes: 'pickle' (see docs/models.md).",
        _parse_list,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}

_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")


def _parse_metric_name(value: Any) -> str:
    text = str(value)
    if text and not _METRIC_NAME.fullmatch(text):
        raise ValueError(f"{value!r} is not a metric name (letters, digits, _ . -)")
    return text


def _parse_tolerance(value: Any) -> float | None:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} is not a finite number >= 0")
    return number


def _parse_approvals(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a whole number")
    number = int(value)
    if not 0 <= number <= 100:
        raise ValueError(f"{value!r} is not between 0 and 100")
    return number


#: The ``[release]`` table of ``dmv.toml``: what ``dmv release`` may let through.
#: Each key is off by default; a release let through is flagged with the reason
#: wherever it appears, and the override is recorded in the audit log.
RELEASE_POLICY: tuple[Setting, ...] = (
    Setting(
        "allow_dirty",
        False,
        "Release versions trained from uncommitted code (flagged 'dirty').",
        _parse_bool,
    ),
    Setting(
        "allow_unverified_data",
        False,
        "Release versions whose stored split fails its check: tampered or missing parts "
        "(flagged 'unverified data').",
        _parse_bool,
    ),
    Setting(
        "allow_failed_behaviour",
        False,
        "Release versions whose model fails the behaviour check: does not load in a fresh "
        "process or answers its recorded sample differently (flagged 'failed behaviour').",
        _parse_bool,
    ),
    Setting(
        "metric",
        "",
        "The metric the gate compares, candidate against the current alias on the same rows "
        "(default: the model's primary metric; no gate when neither is set).",
        _parse_metric_name,
    ),
    Setting(
        "must_not_regress_by",
        None,
        "How much worse than the baseline the candidate's metric may be on the same rows "
        "(absolute, in the metric's units; 0: no worse at all; unset: no metric gate).",
        _parse_tolerance,
    ),
    Setting(
        "breaking_interface",
        "allow",
        "A candidate whose interface breaks the baseline's clients: 'allow', 'major-only' "
        "(only as a major release) or 'refuse'.",
        _parse_choice("allow", "major-only", "refuse"),
    ),
    Setting(
        "approvals",
        0,
        "How many distinct people (not the one who trained it) must approve a version "
        "before it is released ('dmv approve REF').",
        _parse_approvals,
    ),
)

_POLICY_BY_NAME = {s.name: s for s in RELEASE_POLICY}


@dataclass(frozen=True)
class ReleasePolicy:
    """What the project lets ``dmv release`` through (``[release]`` in ``dmv.toml``)."""

    allow_dirty: bool = False
    allow_unverified_data: bool = False
    allow_failed_behaviour: bool = False
    metric: str = ""
    must_not_regress_by: float | None = None
    breaking_interface: str = "allow"
    approvals: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Every key, with its value in effect (the defaults included)."""
        return {s.name: getattr(self, s.name) for s in RELEASE_POLICY}

    @classmethod
    def from_table(cls, table: Any, path: Path) -> ReleasePolicy:
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: [release] must be a table", hint="[release]\nallow_dirty = false"
            )
        unknown = set(table) - set(_POLICY_BY_NAME)
        if unknown:
            raise ConfigError(
                f"{path}: unknown [release] key(s) {', '.join(sorted(unknown))}",
                hint="known [release] keys: " + ", ".join(_POLICY_BY_NAME),
            )
        values = {}
        for name, raw in table.items():
            setting = _POLICY_BY_NAME[name]
            try:
                values[name] = setting.parse(raw)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{path}: [release] {name}: {exc}", hint=setting.help) from None
        return cls(**values)


#: What a ``[[webhooks]]`` entry may subscribe to (``events = [...]``), and what fires it.
WEBHOOK_EVENTS: dict[str, str] = {
    "version": "a new version is registered (its first training run)",
    "release": "a prerelease is released as N.Y.Z-DATA.SPLIT",
    "alias": "an alias is set, moved or removed",
    "deprecate": "a version is deprecated",
    "delete": "a prerelease is deleted",
    "verify_failed": "a verify (dmv verify, or the one a release runs) finds a failing check",
    "check": "dmv check records its verdict on a candidate",
    "approve": "a version is approved for release",
}

#: ``[git] branch_pattern``: the branch ``dmv branch`` creates for a version.
BRANCH_PATTERN = "{model}/{x}.{y}.{z}-{data}"
_BRANCH_FIELDS = ("model", "x", "y", "z", "data", "split")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HOOK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_WEBHOOK_KEYS = ("name", "url", "events", "secret_env", "timeout", "max_attempts")


@dataclass(frozen=True)
class Webhook:
    """One ``[[webhooks]]`` entry: where events go, which ones, and the secret's variable.

    The secret itself is never in the file, in a record or in output: only the name
    of the environment variable that holds it (``secret_env``).
    """

    name: str
    url: str
    events: frozenset[str]
    secret_env: str
    timeout: float = 10.0
    max_attempts: int = 20

    @classmethod
    def from_table(cls, table: Any, index: int, path: Path) -> Webhook:
        where = f"{path}: [[webhooks]] #{index + 1}"
        example = (
            '[[webhooks]]\nurl = "https://deploy.example.org/dmv"\n'
            'events = ["release", "alias"]\nsecret_env = "DMV_WEBHOOK_SECRET"'
        )
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table", hint=example)
        if unknown := set(table) - set(_WEBHOOK_KEYS):
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                hint="the keys are " + ", ".join(_WEBHOOK_KEYS),
            )
        url = table.get("url")
        if (
            not isinstance(url, str)
            or not re.match(r"https?://[^/\s]+", url)
            or any(ord(c) < 33 or ord(c) == 127 for c in url)  # no header injection
        ):
            raise ConfigError(f"{where}: url must be an http:// or https:// URL", hint=example)
        events = table.get("events")
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events or [0]):
            raise ConfigError(f"{where}: events must be a non-empty list", hint=example)
        if bad := set(events) - set(WEBHOOK_EVENTS) - {"*"}:
            raise ConfigError(
                f"{where}: unknown event(s) {', '.join(sorted(bad))}",
                hint="the events are " + ", ".join(WEBHOOK_EVENTS) + ", or '*' for all",
            )
        secret_env = table.get("secret_env")
        if not isinstance(secret_env, str) or not _ENV_NAME.fullmatch(secret_env):
            raise ConfigError(
                f"{where}: secret_env must name the environment variable holding the secret",
                hint='secret_env = "DMV_WEBHOOK_SECRET" (the name, never the secret itself)',
            )
        import hashlib

        name = table.get("name") or "hook-" + hashlib.sha256(url.encode()).hexdigest()[:12]
        if not isinstance(name, str) or not _HOOK_NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: name {name!r} must be [a-z0-9][a-z0-9_-]*, at most 64 characters",
                hint='name = "deploy"',
            )
        try:
            timeout = float(table.get("timeout", 10.0))
            attempts = int(table.get("max_attempts", 20))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}", hint="timeout = 10.0\nmax_attempts = 20") from None
        if not 0 < timeout <= 300 or not 1 <= attempts <= 1000:
            raise ConfigError(
                f"{where}: timeout must be in (0, 300] seconds and max_attempts in [1, 1000]",
                hint="timeout = 10.0\nmax_attempts = 20",
            )
        return cls(name, url, frozenset(events), secret_env, timeout, attempts)


def _webhooks(tables: Any, path: Path) -> tuple[Webhook, ...]:
    if not isinstance(tables, list):
        raise ConfigError(
            f"{path}: webhooks must be an array of tables ([[webhooks]])",
            hint='[[webhooks]]\nurl = "https://…"\nevents = ["release"]\nsecret_env = "NAME"',
        )
    hooks = tuple(Webhook.from_table(t, i, path) for i, t in enumerate(tables))
    names = [h.name for h in hooks]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"{path}: two [[webhooks]] share a name (or a url)",
            hint='give each webhook its own name = "…"',
        )
    return hooks


def _branch_pattern(table: Any, path: Path) -> str:
    if not isinstance(table, dict) or set(table) - {"branch_pattern"}:
        raise ConfigError(
            f"{path}: [git] takes one key, branch_pattern",
            hint=f'[git]\nbranch_pattern = "{BRANCH_PATTERN}"',
        )
    pattern = table.get("branch_pattern", BRANCH_PATTERN)
    fields = re.findall(r"{([^{}]*)}", pattern) if isinstance(pattern, str) else []
    if (
        not isinstance(pattern, str)
        or not {"model", "x", "y", "z"} <= set(fields)
        or (set(fields) - set(_BRANCH_FIELDS))
    ):
        raise ConfigError(
            f"{path}: [git] branch_pattern {pattern!r} must name {{model}}, {{x}}, {{y}}, {{z}} "
            f"and may name {{data}}, {{split}}",
            hint=f'branch_pattern = "{BRANCH_PATTERN}"',
        )
    return pattern


@dataclass(frozen=True)
class TrustedKey:
    """A public key the project trusts (or once trusted: ``revoked``), by name."""

    name: str
    path: Path
    revoked: bool = False


_SIGNING_KEYS = ("key", "key_env", "trusted_keys", "require_signed")
_SIGNING_HINT = (
    '[signing]\nkey = "keys/release.pem"            # or key_env = "DMV_SIGNING_KEY"\n'
    'trusted_keys = { release = "keys/release.pub.pem", '
    'old = { path = "keys/old.pub.pem", revoked = true } }\nrequire_signed = true'
)


@dataclass(frozen=True)
class SigningConfig:
    """How releases are signed and which keys are trusted (``[signing]`` in ``dmv.toml``).

    ``key`` is the path of a PEM private key (relative to the project root) and
    ``key_env`` the name of an environment variable holding one; neither the key nor
    its path ever reaches the registry. ``trusted_keys`` maps a name to a public PEM
    path, or to ``{path = …, revoked = true}`` for a key whose signatures are no longer
    trusted. ``require_signed`` refuses a release without a key, and serving a version
    that is not signed by a trusted key.
    """

    key: Path | None = None
    key_env: str | None = None
    trusted_keys: tuple[TrustedKey, ...] = ()
    require_signed: bool = False

    @property
    def has_key(self) -> bool:
        return self.key is not None or self.key_env is not None

    @classmethod
    def from_table(cls, table: Any, path: Path) -> SigningConfig:
        def bad(what: str) -> ConfigError:
            return ConfigError(f"{path}: [signing] {what}", hint=_SIGNING_HINT)

        if not isinstance(table, dict):
            raise bad("must be a table")
        if unknown := set(table) - set(_SIGNING_KEYS):
            raise bad(
                f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(_SIGNING_KEYS)})"
            )
        if "key" in table and "key_env" in table:
            raise bad("sets both key and key_env: name one place the private key comes from")
        key = table.get("key")
        if key is not None and (not isinstance(key, str) or not key):
            raise bad("key must be the path of a PEM private key")
        key_env = table.get("key_env")
        if key_env is not None and (not isinstance(key_env, str) or not key_env):
            raise bad("key_env must name an environment variable")
        try:
            required = _parse_bool(table.get("require_signed", False))
        except ValueError as exc:
            raise bad(f"require_signed: {exc}") from None
        trusted = table.get("trusted_keys", {})
        if not isinstance(trusted, dict):
            raise bad("trusted_keys must be a table of name = public key path")
        keys = []
        for name, entry in trusted.items():
            revoked = False
            if isinstance(entry, dict):
                if set(entry) - {"path", "revoked"}:
                    raise bad(f"trusted_keys.{name} takes only path and revoked")
                revoked, entry = entry.get("revoked", False), entry.get("path")
                if not isinstance(revoked, bool):
                    raise bad(f"trusted_keys.{name}.revoked must be true or false")
            if not isinstance(entry, str) or not entry:
                raise bad(f"trusted_keys.{name} must be the path of a PEM public key")
            keys.append(TrustedKey(str(name), _under(path.parent, entry), revoked))
        return cls(
            key=_under(path.parent, key) if key else None,
            key_env=key_env,
            trusted_keys=tuple(keys),
            require_signed=required,
        )


def _under(root: Path, value: str) -> Path:
    given = Path(value).expanduser()
    return given if given.is_absolute() else root / given


def find_root(start: str | os.PathLike[str] = ".") -> Path | None:
    """The nearest folder at or above ``start`` holding ``dmv.toml``."""
    path = Path(start).resolve()
    for folder in (path, *path.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


_MODEL_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")
_MODEL_KEYS = ("train", "serving")
_SERVING_EXAMPLE = (
    "[models.price-model.serving]\nbatching = true\nmax_batch_size = 64\nmax_batch_wait_us = 0"
)


@dataclass(frozen=True)
class ModelServing:
    """``[models.NAME.serving]``: how the server batches one model's requests.

    ``batching`` None means the flavor's default: on, except for ``python`` models (the
    user's own code may look at a whole request) and ``torch`` ones (see
    docs/serving.md). ``max_batch_size`` counts rows; ``max_batch_wait_us`` is how long
    the first request of a batch may wait for others (0: not at all).
    """

    batching: bool | None = None
    max_batch_size: int = 64
    max_batch_wait_us: int = 0


def _serving(table: Any, where: str) -> ModelServing:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}.serving must be a table", hint=_SERVING_EXAMPLE)
    known = {"batching", "max_batch_size", "max_batch_wait_us"}
    if unknown := set(table) - known:
        raise ConfigError(
            f"{where}.serving: unknown key(s) {', '.join(sorted(unknown))}",
            hint="the keys are " + ", ".join(sorted(known)),
        )
    batching = table.get("batching")
    if batching is not None and not isinstance(batching, bool):
        raise ConfigError(f"{where}.serving: batching must be true or false", hint=_SERVING_EXAMPLE)
    limits = {"max_batch_size": (1, 100_000), "max_batch_wait_us": (0, 1_000_000)}
    values = {}
    for key, (low, high) in limits.items():
        value = table.get(key, getattr(ModelServing, key))
        if type(value) is not int or not low <= value <= high:
            raise ConfigError(
                f"{where}.serving: {key} must be a whole number from {low:,} to {high:,}, "
                f"got {value!r}",
                hint=_SERVING_EXAMPLE,
            )
        values[key] = value
    return ModelServing(batching, values["max_batch_size"], values["max_batch_wait_us"])


def _model_entries(
    table: Any, path: Path
) -> tuple[dict[str, dict[str, str]], dict[str, ModelServing]]:
    """``[models.NAME]`` tables: each model's pipeline entries (``train``) and ``serving``."""
    example = '[models.price-model]\ntrain = "python train.py {data}"'
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [models] must hold one table per model", hint=example)
    out: dict[str, dict[str, str]] = {}
    serving: dict[str, ModelServing] = {}
    for name, entry in table.items():
        where = f"{path}: [models.{name}]"
        if not _MODEL_NAME.fullmatch(name):
            raise ConfigError(f"{where}: {name!r} is not a model name", hint=example)
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table", hint=example)
        if unknown := set(entry) - set(_MODEL_KEYS):
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                hint="the keys are " + ", ".join(_MODEL_KEYS),
            )
        train = entry.get("train")
        if train is not None and (not isinstance(train, str) or not train.strip()):
            raise ConfigError(f"{where}: train must be a command line", hint=example)
        if "serving" in entry:
            serving[name] = _serving(entry["serving"], where)
        out[name] = {k: v for k, v in entry.items() if isinstance(v, str)}
    return out, serving


class _Tables(NamedTuple):
    """What ``dmv.toml`` holds besides the settings: each table, parsed and checked."""

    settings: dict[str, Any]
    release_policy: ReleasePolicy
    webhooks: tuple[Webhook, ...]
    branch_pattern: str
    signing: SigningConfig
    models: dict[str, dict[str, str]]
    serving: dict[str, ModelServing]


class Config:
    """Resolved settings for one project."""

    def __init__(
        self,
        root: Path,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        tables = self._read_file(root / CONFIG_FILE)
        self._file = tables.settings
        self.release_policy = tables.release_policy
        self.webhooks = tables.webhooks
        self.branch_pattern = tables.branch_pattern
        self.signing = tables.signing
        #: ``[models.NAME]``: each model's declared entries, e.g. ``{"train": "python …"}``.
        self.models = tables.models
        #: ``[models.NAME.serving]``: each model's batching settings (absent: the defaults).
        self.serving = tables.serving
        self._values: dict[str, Any] = {}
        env = os.environ if environ is None else environ
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = set(overrides) - set(_BY_NAME)
        if unknown:
            raise ConfigError(
                f"unknown setting(s): {', '.join(sorted(unknown))}",
                hint=f"the settings are {', '.join(sorted(_BY_NAME))}",
            )
        for setting in SETTINGS:
            if setting.name in overrides:
                raw, origin = overrides[setting.name], "argument"
            elif setting.env in env:
                raw, origin = env[setting.env], f"environment variable {setting.env}"
            elif setting.name in self._file:
                raw, origin = self._file[setting.name], f"{CONFIG_FILE}"
            else:
                self._values[setting.name] = setting.default
                continue
            try:
                self._values[setting.name] = setting.parse(raw)
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"setting {setting.name!r} from {origin}: {exc}", hint=setting.help
                ) from None

    @staticmethod
    def _read_file(path: Path) -> _Tables:
        if not path.is_file():
            return _Tables({}, ReleasePolicy(), (), BRANCH_PATTERN, SigningConfig(), {}, {})
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{path} is not valid TOML: {exc}",
                hint=f"fix the TOML syntax in {path} at the place named",
            ) from None
        policy = ReleasePolicy.from_table(data.pop("release", {}), path)
        hooks = _webhooks(data.pop("webhooks", []), path)
        pattern = _branch_pattern(data.pop("git", {}), path)
        signing = SigningConfig.from_table(data.pop("signing", {}), path)
        models, serving = _model_entries(data.pop("models", {}), path)
        section = data.get("dmv", data)
        if not isinstance(section, dict):
            raise ConfigError(
                f"{path}: [dmv] must be a table",
                hint="write the settings under a [dmv] table: a line [dmv], then NAME = VALUE",
            )
        unknown = set(section) - set(_BY_NAME)
        if unknown:
            raise ConfigError(
                f"{path}: unknown setting(s) {', '.join(sorted(unknown))}",
                hint="known settings: "
                + ", ".join(_BY_NAME)
                + ", the [release], [git], [signing] and [models.NAME] tables and [[webhooks]]",
            )
        return _Tables(section, policy, hooks, pattern, signing, models, serving)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def location(self, name: str) -> str:
        """A setting that names a store, made absolute against the project root."""
        value = str(self._values[name])
        if "://" in value:
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else self.root / path)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(json.dumps(str(v)) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(root: Path, settings: Mapping[str, Any] | None = None) -> bool:
    """Create ``dmv.toml`` in ``root`` atomically; False when one exists already.

    ``settings`` (e.g. ``registry="postgresql://…"``) are written instead of the
    defaults, so that every later ``dmv.open`` finds them.

    The file appears whole or not at all (write, then hard-link into place), so
    several processes initialising the same folder at once never see half a file.
    """
    target = root / CONFIG_FILE
    if target.exists():
        return False
    lines = ["# dmv project settings; environment variables DMV_<NAME> override them.", "[dmv]"]
    given = {k: v for k, v in (settings or {}).items() if v is not None}
    if unknown := set(given) - set(_BY_NAME):
        raise ConfigError(
            f"unknown setting(s): {', '.join(sorted(unknown))}",
            hint=f"the settings are {', '.join(sorted(_BY_NAME))}",
        )
    for setting in SETTINGS:
        if setting.name in ("registry", "artifacts", "warehouse") or setting.name in given:
            value = given.get(setting.name, setting.default)
            lines.append(f"# {setting.help}")
            lines.append(f"{setting.name} = {_toml_value(value)}")
    tmp = root / f".{CONFIG_FILE}.{os.getpid()}.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True
