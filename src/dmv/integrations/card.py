"""Model cards (``dmv card REF``): Hugging Face-style YAML metadata and sections from the records.

Everything on the card comes from what dmv recorded: the model's purpose and
function, the version part by part, the interface, the data (the retrieval
without credentials, the split rule, part sizes, the leakage check), every
training run with the spread of its metrics, the environment and the release
history from the audit log. The card is Markdown with YAML front matter (what
the Hugging Face Hub reads) or the same content as one HTML page.
"""

from __future__ import annotations

import html
import statistics
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput
from dmv.flavors import is_unsafe
from dmv.integrations.about import about
from dmv.interface import Field

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.integrations.about import About
    from dmv.registry import RegistryStore

__all__ = ["CARD_STYLE", "card_blocks", "card_metadata", "render_card", "style_hash"]

#: A block: ("h", text), ("p", text), ("table", (headers, rows)) or ("code", text).
Block = tuple[str, Any]
_LIBRARIES = {
    "sklearn": "sklearn",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "torch": "pytorch",
    "onnx": "onnx",
    "python": "python",
}


def card_metadata(ab: About) -> dict[str, Any]:
    """The YAML front matter: library, tags, datasets (the split tables) and the model-index."""
    meta = (ab.model_artifact.meta or {}) if ab.model_artifact is not None else {}
    tables = {p.get("name"): p.get("table") for p in ab.split.parts} if ab.split else {}
    results = []
    for split, metrics in sorted((ab.run.metrics if ab.run else {}).items()):
        dataset = tables.get(split) or f"{ab.info.name}__{ab.version.data}__{ab.version.split}"
        results.append(
            {
                "task": {"type": ab.model.function or "prediction"},
                "dataset": {"name": dataset, "type": dataset, "split": split},
                "metrics": [{"type": k, "name": k, "value": v} for k, v in sorted(metrics.items())],
            }
        )
    out: dict[str, Any] = {
        "library_name": _LIBRARIES.get(str(meta.get("flavor")), "other"),
        "tags": ["dmv", ab.info.state, *(t for t in [ab.model.function] if t)],
        "datasets": [t for t in tables.values() if t],
        "model-index": [{"name": f"{ab.info.name} {ab.version.number}", "results": results}],
        "dmv": {
            "version": str(ab.version),
            "interface_fp": ab.info.interface_fp,
            "logic_fp": ab.info.logic_fp,
            "flags": ab.info.flags,
        },
    }
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def card_blocks(ab: About, audit: list[Any]) -> list[Block]:
    """The card's sections, in order."""
    v, info, model = ab.version, ab.info, ab.model
    b: list[Block] = [("h1", f"{v.name} {v.number}")]
    if info.flags:
        b.append(
            (
                "p",
                f"Provenance warning: {', '.join(info.flags).upper()}. "
                + ("Trained from uncommitted code. " if info.dirty else "")
                + (
                    "Released past a check by the project's [release] policy (dmv.toml)."
                    if info.released_from
                    else ""
                ),
            )
        )
    b.append(("h", "Purpose and function"))
    b.append(
        (
            "p",
            f"Purpose: {model.purpose or '(not recorded)'}. "
            f"Function: {model.function or '(not recorded)'}.",
        )
    )
    if model.description:
        b.append(("p", model.description))
    b.append(("h", "The version, part by part"))
    b.append(
        (
            "table",
            (
                ["part", "value", "meaning"],
                [
                    [
                        "X (release)",
                        v.x,
                        "prerelease (development)" if v.x == 0 else f"release generation {v.x}",
                    ],
                    ["Y (interface)", v.y, f"interface fingerprint {_fmt(info.interface_fp)}"],
                    ["Z (logic)", v.z, f"logic fingerprint {_fmt(info.logic_fp)}"],
                    ["DATA", v.data, "the data retrieval method"],
                    ["SPLIT", v.split, "the stored train/valid/test split"],
                ],
            ),
        )
    )
    b.append(
        (
            "p",
            f"State: {info.state}. Aliases: {', '.join(info.aliases) or 'none'}."
            + (f" Released from {info.released_from}." if info.released_from else ""),
        )
    )
    sig = ab.extra.get("signature")
    if sig is not None:
        text = f"Signature: {sig['status']}."
        if sig.get("signer"):
            text = (
                f"Signature: {sig['status']}: signed by {sig['signer']} at {sig['signed_at']} "
                f"with key {sig.get('key') or 'unknown'} ({str(sig['key_id'])[:16]}…)."
                + (f" {sig['problem']}." if sig.get("problem") else "")
                + " The provenance (SLSA v1, DSSE) is printed by 'dmv provenance'."
            )
        b.append(("p", text))
    b.append(("h", "Interface"))
    if info.interface:
        for side in ("inputs", "outputs"):
            rows = [
                [
                    f["name"],
                    Field.from_dict(f).type_text,
                    "yes" if f.get("required", True) else "no",
                    "yes" if f.get("nullable") else "no",
                    f.get("description", "") or ", ".join(map(str, f.get("values", []))),
                ]
                for f in info.interface.get(side, [])
            ]
            b.append(("h3", side.capitalize()))
            b.append(("table", (["field", "type", "required", "nullable", "notes"], rows)))
    else:
        b.append(("p", "No interface was recorded for this version."))
    b.append(("h", "Data"))
    if ab.query is not None:
        lineage = ab.lineage()["retrieval"]
        sql = lineage["definition"].get("sql")
        b.append(("p", f"Retrieval {v.data} ({ab.query.kind})."))
        if sql:
            b.append(("code", str(sql)))
        source = lineage["definition"].get("source")
        if source:
            b.append(("p", f"Source: {source}"))
    else:
        b.append(("p", f"Retrieval {v.data} is not recorded in this project."))
    if ab.split is not None:
        b.append(("p", f"Split rule: {_fmt(ab.split.spec)}"))
        b.append(
            (
                "table",
                (
                    ["part", "table", "rows", "fingerprint"],
                    [
                        [p.get("name"), p.get("table"), p.get("rows"), p.get("fingerprint")]
                        for p in ab.split.parts
                    ],
                ),
            )
        )
        leak = ab.split.leakage or {}
        b.append(
            (
                "p",
                f"Leakage check: {'passed' if _leak_ok(leak) else 'FAILED'}"
                + "".join(
                    f"; {c.get('kind')} on {c.get('column')}: {c.get('count')} "
                    f"({'ok' if c.get('ok') else 'LEAK'})"
                    for c in leak.get("checks") or []
                ),
            )
        )
    b.append(("h", "Training runs"))
    runs = [r for r in ab.runs if r.status == "finished"]
    keys = sorted({(s, k) for r in runs for s, m in r.metrics.items() for k in m})
    b.append(
        (
            "table",
            (
                ["run", *[f"{s}.{k}" for s, k in keys]],
                [
                    [
                        r.id + (" (served)" if ab.run and r.id == ab.run.id else ""),
                        *[r.metrics.get(s, {}).get(k) for s, k in keys],
                    ]
                    for r in runs
                ],
            ),
        )
    )
    if len(runs) > 1 and keys:
        spread = []
        for s, k in keys:
            vals = [r.metrics[s][k] for r in runs if k in r.metrics.get(s, {})]
            spread.append(
                [f"{s}.{k}", min(vals), max(vals), statistics.fmean(vals), statistics.pstdev(vals)]
            )
        b.append(("h3", "Metric spread across runs"))
        b.append(("table", (["metric", "min", "max", "mean", "std"], spread)))
    if ab.run is not None and ab.run.params:
        b.append(("h3", "Hyperparameters"))
        b.append(
            ("table", (["param", "value"], [[k, v] for k, v in sorted(ab.run.params.items())]))
        )
    b.append(("h", "Environment"))
    model_meta = (ab.model_artifact.meta or {}) if ab.model_artifact else {}
    if ab.model_artifact is not None and is_unsafe(model_meta):
        b.append(
            (
                "p",
                f"Model file format: {model_meta.get('format', 'pickle')} (unsafe-format): "
                "loading it can run code; dmv serves it only with --trust-pickle.",
            )
        )
    env = (ab.run.environment or {}) if ab.run else {}
    if env:
        dists = env.get("distributions") or {}
        flavor = str(model_meta.get("flavor", ""))
        wanted = [
            "numpy",
            "pandas",
            "scikit-learn",
            "skops",
            "lightgbm",
            "xgboost",
            "torch",
            "onnxruntime",
            "dmv",
        ]
        rows = [
            ["python", (env.get("python") or {}).get("version")],
            ["os", (env.get("os") or {}).get("platform")],
            *[[k, dists[k]] for k in wanted if k in dists],
        ]
        b.append(("p", f"Model kind: {flavor or 'none'}."))
        b.append(("table", (["component", "version"], rows)))
    else:
        b.append(("p", "No environment was recorded."))
    b.append(("h", "Release history"))
    rows = [
        [e.to_dict()["at"], e.actor, e.action, e.target]
        for e in audit
        if e.target and (v.number in str(e.target) or e.action.startswith(("release", "alias")))
    ]
    b.append(
        ("table", (["when", "who", "what", "target"], rows))
        if rows
        else ("p", "No release or alias events recorded.")
    )
    return b


def _leak_ok(leak: dict[str, Any]) -> bool:
    return bool(leak.get("ok", True))


def _md_cell(v: Any) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def _markdown(meta: dict[str, Any], blocks: list[Block]) -> str:
    import yaml  # type: ignore[import-untyped]

    out = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", ""]
    for kind, body in blocks:
        if kind == "h1":
            out += [f"# {body}", ""]
        elif kind == "h":
            out += [f"## {body}", ""]
        elif kind == "h3":
            out += [f"### {body}", ""]
        elif kind == "p":
            out += [str(body), ""]
        elif kind == "code":
            out += ["```sql", str(body), "```", ""]
        else:
            headers, rows = body
            out.append("| " + " | ".join(headers) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out)


#: The card's only style, inline so that the file stands alone; a server that shows
#: the card allows exactly this text (:func:`style_hash`), not inline style at large.
CARD_STYLE = (
    "body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
    "pre{background:#f4f4f4;padding:.5rem}"
)


def style_hash() -> str:
    """The CSP source that allows the card's inline style: ``'sha256-…'``."""
    import base64
    import hashlib

    digest = hashlib.sha256(CARD_STYLE.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _html(meta: dict[str, Any], blocks: list[Block]) -> str:
    import yaml

    e = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(str(blocks[0][1]))}</title>",
        f"<style>{CARD_STYLE}</style></head><body>",
    ]
    for kind, body in blocks:
        if kind in ("h1", "h", "h3"):
            tag = {"h1": "h1", "h": "h2", "h3": "h3"}[kind]
            out.append(f"<{tag}>{e(str(body))}</{tag}>")
        elif kind == "p":
            out.append(f"<p>{e(str(body))}</p>")
        elif kind == "code":
            out.append(f"<pre><code>{e(str(body))}</code></pre>")
        else:
            headers, rows = body
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr>")
            out += [
                "<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
            ]
            out.append("</table>")
    out.append(
        f"<details><summary>metadata</summary><pre>{e(yaml.safe_dump(meta, sort_keys=False))}"
        "</pre></details></body></html>"
    )
    return "\n".join(out)


def render_card(
    registry: RegistryStore,
    data: ProjectData,
    ref: Any,
    *,
    format: str = "md",
    signature: dict[str, Any] | None = None,
) -> str:
    """The card of the version ``ref`` points at, as Markdown or HTML.

    ``signature``: the release's signature status (``SignatureStatus.to_dict()``).
    """

    if format not in ("md", "html"):
        raise InvalidInput(f"unknown card format {format!r}", hint="use md or html")
    ab = about(registry, data, ref)
    if signature is not None:
        ab.extra["signature"] = signature
    audit = registry.audit_log(model=ab.info.name, action=None, limit=500)
    meta, blocks = card_metadata(ab), card_blocks(ab, audit)
    return _markdown(meta, blocks) if format == "md" else _html(meta, blocks)
