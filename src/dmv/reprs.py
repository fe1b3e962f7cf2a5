"""HTML for notebooks: what Jupyter shows for versions, runs, splits and diffs.

The records call these from their ``_repr_html_``; everything shown is escaped,
so a field name or a parameter value cannot inject markup into a notebook.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Html", "diff_html", "interface_diff_html", "run_html", "split_html", "version_html"]

_STYLE = "border-collapse:collapse;font-family:monospace;font-size:90%"
_CELL = 'style="border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top"'


class Html:
    """Any dmv result as a notebook cell shows it (``Html(project.diff(a, b))``)."""

    def __init__(self, body: str) -> None:
        self.body = body

    def _repr_html_(self) -> str:
        return self.body


def _v(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, default=str, sort_keys=True)
        return html.escape(text if len(text) <= 200 else text[:197] + "…")
    return html.escape("" if value is None else str(value))


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str] | None = None) -> str:
    out = [f'<table style="{_STYLE}">']
    if headers:
        out.append(
            "<tr>" + "".join(f"<th {_CELL}>{html.escape(h)}</th>" for h in headers) + "</tr>"
        )
    out += ["<tr>" + "".join(f"<td {_CELL}>{_v(c)}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</table>")
    return "".join(out)


def _title(text: str) -> str:
    return f"<div><strong>{html.escape(text)}</strong></div>"


def version_html(info: Any) -> str:
    v = info.version
    parts = [
        ["X release", v.x, "prerelease" if v.x == 0 else f"release generation {v.x}"],
        ["Y interface", v.y, info.interface_fp],
        ["Z logic", v.z, info.logic_fp],
        ["DATA", v.data, "retrieval"],
        ["SPLIT", v.split, "stored split"],
    ]
    rows = [
        ["state", info.state],
        ["aliases", ", ".join(info.aliases) or "—"],
        ["runs", info.run_count],
        ["serving run", info.serving_run or "—"],
    ]
    return _title(str(v)) + _table(parts, ["part", "value", "meaning"]) + _table(rows)


def run_html(run: Any) -> str:
    metrics = [[s, k, val] for s, m in sorted(run.metrics.items()) for k, val in sorted(m.items())]
    head = [
        ["status", run.status],
        ["data", f"{run.data}.{run.split}" if run.data else "—"],
        ["params", run.params or "—"],
        ["artifacts", ", ".join(a.name for a in run.artifacts)],
    ]
    if run.error:
        head.append(["error", run.error])
    body = _title(f"{run.id} of {run.label}") + _table(head)
    return body + (_table(metrics, ["split", "metric", "value"]) if metrics else "")


def split_html(info: Any) -> str:
    parts = [
        [p.get("name"), p.get("table"), p.get("rows"), p.get("fingerprint")] for p in info.parts
    ]
    leak = info.leakage or {}
    rows = [["rule", info.spec], ["leakage check", "passed" if leak.get("ok", True) else "FAILED"]]
    return (
        _title(f"{info.model} split {info.ref}")
        + _table(parts, ["part", "table", "rows", "fingerprint"])
        + _table(rows)
    )


def interface_diff_html(diff: Any) -> str:
    rows = [[c.side, c.field, c.kind.value, c.compat.value] for c in diff.changes]
    title = _title(f"interface: {diff.compat.value}" if diff.changed else "interface: no change")
    return title + (_table(rows, ["side", "field", "change", "compat"]) if rows else "")


def diff_html(d: Mapping[str, Any]) -> str:
    """``project.diff(a, b)``: one row per component that changed."""
    rows = [[k, v] for k, v in d.items() if k not in ("a", "b")]
    return _title(f"{d.get('a', '')} → {d.get('b', '')}") + _table(rows, ["component", "change"])
