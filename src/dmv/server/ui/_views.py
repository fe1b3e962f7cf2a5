"""What each page shows, gathered from the :class:`~dmv.project.Project` facade.

Every function here returns plain data for a template; none renders HTML. Parts
another engineer may add later (stored-split lookups, ``Project.diff``) are
looked up with ``getattr`` so the pages work with and without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dmv._urls import database_url as redact_url
from dmv.errors import DmvError, InvalidInput, NotFound
from dmv.interface import Interface, diff_interfaces
from dmv.registry.records import ModelInfo, RunInfo, VersionInfo
from dmv.reports.explain import metric_summary, split_rule
from dmv.server.ui._chart import fmt, metric_names, pick_split, split_order, trend
from dmv.version import Reference, Version, check_name

if TYPE_CHECKING:
    from dmv.project import Project

__all__ = [
    "STATES",
    "DiffRow",
    "ModelRow",
    "diff_rows",
    "environment_summary",
    "lineage",
    "model_rows",
    "parse_ref",
    "pick_run",
    "version_url",
]

STATES = ("prerelease", "released", "deprecated")
PARTS = ("x", "y", "z", "data", "split")
PART_NAMES = {
    "name": "model name",
    "x": "X release",
    "y": "Y interface",
    "z": "Z logic",
    "data": "DATA retrieval",
    "split": "SPLIT stored split",
}
#: Packages worth showing from a run's environment when present.
KEY_PACKAGES = (
    "scikit-learn",
    "numpy",
    "pandas",
    "scipy",
    "pyarrow",
    "duckdb",
    "torch",
    "tensorflow",
    "xgboost",
    "lightgbm",
    "catboost",
    "onnxruntime",
    "dmv",
)
PREFERRED_SPLITS = ("test", "valid", "validation", "val", "all")


def version_url(v: Version) -> str:
    return f"/ui/models/{v.name}/versions/{quote(v.number)}"


def parse_ref(name: str, ref: str) -> Reference:
    """``ref`` is what follows ``name@``: an exact number, ``1.1``, ``latest`` or an alias."""
    check_name(name)
    return Reference.parse(f"{name}@{ref}")


def parse_full_ref(text: str, what: str) -> Reference:
    """A reference typed into the diff form: ``name@ref`` (or ``name X.Y.Z-DATA.SPLIT``)."""
    text = text.strip()
    if not text:
        raise InvalidInput(f"{what} is empty", hint="write e.g. price-model@0.1.0-0123.efgh")
    return Reference.parse(text)


def pick_run(info: VersionInfo, runs: Sequence[RunInfo]) -> RunInfo | None:
    """The run a version serves, or else its newest run."""
    for run in runs:
        if run.id == info.serving_run:
            return run
    return runs[-1] if runs else None


def headline_metric(run: RunInfo | None, metric: str) -> tuple[float, str] | None:
    """``metric`` of ``run`` on its most telling split (test, then valid, then any)."""
    if run is None:
        return None
    splits = [s for s in PREFERRED_SPLITS if s in run.metrics] + sorted(run.metrics)
    for split in splits:
        if metric in run.metrics.get(split, {}):
            return run.metrics[split][metric], split
    return None


# -- the models page ------------------------------------------------------------

PAGE_SIZE = 50


def page_number(text: str) -> int:
    """``?page=`` as a number ≥ 1, or one clear error."""
    if not text.strip().isdigit() or int(text) < 1:
        raise InvalidInput(f"page {text!r} is not a page number", hint="pages count from 1")
    return int(text)


@dataclass(frozen=True)
class Pages:
    """Which slice of the models one page shows, and the links to its neighbours."""

    number: int
    count: int
    start: int
    stop: int
    prev_href: str | None
    next_href: str | None

    @classmethod
    def of(cls, total: int, number: int, keep: Mapping[str, str]) -> Pages:
        from urllib.parse import urlencode

        count = max(1, -(-total // PAGE_SIZE))
        if number > count:
            raise NotFound(
                f"there is no page {number}: {total} model(s) make {count} page(s)",
                hint="go back to the first page",
            )
        params = {k: v for k, v in keep.items() if v}

        def href(n: int) -> str:
            return "/?" + urlencode({**params, "page": n})

        return cls(
            number,
            count,
            (number - 1) * PAGE_SIZE,
            number * PAGE_SIZE,
            href(number - 1) if number > 1 else None,
            href(number + 1) if number < count else None,
        )


@dataclass
class ModelRow:
    info: ModelInfo
    metric: str | None = None  # the formatted value of the chosen metric
    metric_where: str = ""  # "test, 1.1.0-0123.efgh tr0"


def model_rows(
    project: Project, q: str, state: str, metric: str, only: str | None = None
) -> tuple[list[ModelRow], list[str]]:
    """Models matching the filters, and every metric name seen (for the metric picker).

    ``q`` matches a name or an alias (substring, any case); ``state`` keeps models
    with at least one version in that state; ``metric`` keeps models whose current
    version (newest release, else newest prerelease) recorded it, and shows it.
    ``only`` (a token limited to one model) leaves every other model out, its
    metric names included.
    """
    if state and state not in STATES:
        raise InvalidInput(
            f"unknown release state {state!r}", hint=f"choose one of {', '.join(STATES)}"
        )
    needle = q.strip().lower()
    rows: list[ModelRow] = []
    seen_metrics: set[str] = set()
    for info in project.models():
        if only is not None and info.name != only:
            continue
        current = info.latest_release or info.latest_prerelease
        run = None
        if current is not None:
            version = Version.parse_number(info.name, current)
            vinfo = project.show(version)
            run = pick_run(vinfo, project.runs(version))
            if run is not None:
                seen_metrics.update(m for vals in run.metrics.values() for m in vals)
        if needle and not (
            needle in info.name.lower() or any(needle in a.lower() for a in info.aliases)
        ):
            continue
        if state and not project.versions(info.name, state=state):
            continue
        row = ModelRow(info)
        if metric:
            found = headline_metric(run, metric)
            if found is None:
                continue
            row.metric = fmt(found[0])
            row.metric_where = f"{found[1]}, {current} {run.id if run else ''}"
        rows.append(row)
    return rows, sorted(seen_metrics)


# -- the model page -------------------------------------------------------------


@dataclass
class MetricView:
    """The model page's metric: its chart across versions and the versions table's column."""

    metric: str | None
    split: str | None
    names: list[str]
    summaries: dict[str, dict[str, dict[str, Any]]]  # version number → metric summary

    def cell(self, number: str) -> dict[str, Any] | None:
        """``{median, n, …}`` of the metric for one version, or None."""
        if not self.metric or not self.split:
            return None
        found: dict[str, Any] | None = (
            self.summaries.get(number, {}).get(self.split, {}).get(self.metric)
        )
        return found


def metric_view(
    project: Project, model: ModelInfo, versions: Sequence[VersionInfo], chosen: str
) -> MetricView:
    """Each version's runs summarised, and the metric to show (``chosen``, else the
    model's primary metric, else the first one recorded) on its most telling split."""

    summaries = {v.version.number: metric_summary(project.runs(v.version)) for v in versions}
    names = metric_names(list(summaries.values()))
    metric = chosen or model.primary_metric or (names[0] if names else None)
    if chosen and chosen not in names:
        raise NotFound(
            f"no version of {model.name} recorded the metric {chosen!r}",
            hint=f"recorded: {', '.join(names) or 'none'}",
        )
    split = pick_split(list(summaries.values()), metric) if metric else None
    return MetricView(metric, split, names, summaries)


@dataclass
class SameRows:
    """Which versions the model page's chart compares: only those measured on one
    ``DATA.SPLIT`` (their own split, or an evaluation on it), and the others, each with
    the ``dmv evaluate`` that would bring it in."""

    on: str | None
    summaries: dict[str, dict[str, dict[str, Any]]]  # version number → metric summary
    others: list[tuple[str, str]] = field(default_factory=list)  # (version, command)


def _single(value: float, label: str) -> dict[str, Any]:
    return {"median": value, "min": value, "max": value, "n": 1, "runs": {label: value}}


def same_rows(project: Project, versions: Sequence[VersionInfo], view: MetricView) -> SameRows:
    """The versions whose ``view.metric`` on ``view.split`` was measured on the same rows
    as the newest one's: the same DATA.SPLIT, by training or by ``dmv evaluate``."""
    metric, part = view.metric, view.split
    if not metric or not part:
        return SameRows(None, {})
    recorded = [v for v in versions if view.cell(v.version.number) is not None]
    if not recorded:
        return SameRows(None, {})
    newest = recorded[-1].version
    on = f"{newest.data}.{newest.split}"
    summaries: dict[str, dict[str, dict[str, Any]]] = {}
    others: list[tuple[str, str]] = []
    for info in versions:
        v = info.version
        if f"{v.data}.{v.split}" == on and view.cell(v.number) is not None:
            summaries[v.number] = view.summaries[v.number]
            continue
        evaluated = [
            e
            for e in project.evaluations(v)
            if f"{e.data}.{e.split}" == on and e.part == part and metric in e.metrics
        ]
        if evaluated:
            summaries[v.number] = {part: {metric: _single(evaluated[-1].metrics[metric], "eval")}}
        elif view.cell(v.number) is not None:
            others.append((v.number, f"dmv evaluate {v.ref} --on {on} --part {part}"))
    return SameRows(on, summaries, others)


# -- the version page -----------------------------------------------------------


def environment_summary(
    run: RunInfo | None, libraries: Mapping[str, str] | None
) -> dict[str, Any] | None:
    """Python, platform and the key packages of a run's recorded environment."""
    env = (run.environment if run else None) or {}
    if not env and not libraries:
        return None
    python = env.get("python")
    if isinstance(python, Mapping):
        python = " ".join(str(python.get(k, "")) for k in ("implementation", "version")).strip()
    platform = env.get("platform")
    osinfo = env.get("os")
    if isinstance(osinfo, Mapping):
        platform = osinfo.get("platform") or osinfo.get("name")
    dists = env.get("distributions") or env.get("packages") or {}
    packages: dict[str, str] = {}
    if isinstance(dists, Mapping):
        lowered = {str(k).lower(): str(v) for k, v in dists.items()}
        packages = {k: lowered[k] for k in KEY_PACKAGES if k in lowered}
    return {
        "python": python or env.get("python_version"),
        "platform": platform,
        "packages": packages,
        "libraries": dict(libraries or {}),
        "run": run.id if run and env else None,
    }


def _as_dict(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def _split_record(project: Project, version: Version) -> Any:
    """The stored split behind ``version`` (None when its DATA.SPLIT is not stored)."""
    try:
        return project.split_info(version).to_dict()
    except NotFound:
        return None


def lineage(project: Project, version: Version) -> dict[str, Any]:
    """DATA → SPLIT → split tables (with row counts) and the leakage result, when recorded."""
    prefix = version.table_prefix
    out: dict[str, Any] = {
        "data": version.data,
        "split": version.split,
        "prefix": prefix,
        "parts": [
            {"name": p, "table": f"{prefix}__{p}", "rows": None} for p in ("train", "valid", "test")
        ],
        "recorded": False,
        "leakage": None,
        "error": None,
        "rule": None,
        "retrieval": retrieval(project, version),
    }
    try:
        record = _split_record(project, version)
    except DmvError as exc:
        out["error"] = exc.message
        return out
    if not isinstance(record, Mapping):
        return out
    split = record.get("split") if isinstance(record.get("split"), Mapping) else record
    parts = split.get("parts") if isinstance(split, Mapping) else None
    if isinstance(parts, Sequence) and parts:
        out["parts"] = [
            {"name": p.get("name"), "table": p.get("table"), "rows": p.get("rows")}
            for p in (_as_dict(p) for p in parts)
            if isinstance(p, Mapping)
        ]
        out["recorded"] = True
    leak = _as_dict(record.get("leakage") or record.get("leakage_report"))
    if isinstance(leak, Mapping):
        out["leakage"] = {
            "ok": bool(leak.get("ok")),
            "checks": [dict(c) for c in leak.get("checks", []) if isinstance(c, Mapping)],
        }
    spec = record.get("spec")
    if isinstance(spec, Mapping):
        out["rule"] = split_rule(spec)
    return out


def retrieval(project: Project, version: Version) -> dict[str, Any] | None:
    """How DATA retrieves its rows: the SQL (or files) and the source, without credentials."""

    try:
        query = project.data_show(version.name, version.data)
    except DmvError:
        return None
    definition = dict(query.definition)
    source = definition.get("source")
    return {
        "kind": query.kind,
        "sql": definition.get("sql"),
        "source": redact_url(source) if isinstance(source, str) else source,
        "paths": definition.get("paths") or definition.get("path"),
    }


# -- the diff page --------------------------------------------------------------


@dataclass
class DiffRow:
    section: str
    label: str
    a: str
    b: str
    part: str = ""  # the colour class of a version part, if it is one

    @property
    def changed(self) -> bool:
        return self.a != self.b


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt(value)
    if isinstance(value, Mapping | list | tuple):
        import json

        return json.dumps(value, sort_keys=True)
    return str(value)


def _field_text(f: Mapping[str, Any]) -> str:
    flags = [str(f.get("type", "?"))]
    flags.append("required" if f.get("required", True) else "optional")
    if f.get("nullable"):
        flags.append("nullable")
    return ", ".join(flags)


def _fields(iface: Mapping[str, Any] | None) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for side in ("inputs", "outputs"):
        raw = (iface or {}).get(side) or []
        items = raw.items() if isinstance(raw, Mapping) else ((f.get("name"), f) for f in raw)
        for fname, f in items:
            spec = f if isinstance(f, Mapping) else {"type": f}
            out[(side[:-1], str(fname))] = _field_text(spec)
    return out


@dataclass
class Side:
    info: VersionInfo
    runs: list[RunInfo]
    run: RunInfo | None = field(init=False)

    def __post_init__(self) -> None:
        self.run = pick_run(self.info, self.runs)


def diff_rows(a: Side, b: Side) -> list[DiffRow]:
    """Two versions compared part by part, component by component, run by run."""
    va, vb = a.info.version, b.info.version
    rows = [DiffRow("Version", PART_NAMES["name"], va.name, vb.name, "name")]
    rows += [
        DiffRow("Version", PART_NAMES[p], str(getattr(va, p)), str(getattr(vb, p)), p)
        for p in PARTS
    ]
    for label, key in (
        ("release state", "state"),
        ("interface fingerprint", "interface_fp"),
        ("logic fingerprint", "logic_fp"),
        ("interface compatibility", "interface_compat"),
        ("dirty working tree", "dirty"),
        ("released from", "released_from"),
        ("serving run", "serving_run"),
    ):
        rows.append(
            DiffRow("Components", label, _text(getattr(a.info, key)), _text(getattr(b.info, key)))
        )
    rows.append(
        DiffRow(
            "Components",
            "aliases",
            ", ".join(a.info.aliases) or "—",
            ", ".join(b.info.aliases) or "—",
        )
    )
    rows.append(DiffRow("Components", "training runs", str(len(a.runs)), str(len(b.runs))))
    fa, fb = _fields(a.info.interface), _fields(b.info.interface)
    for side, fname in sorted(fa.keys() | fb.keys()):
        rows.append(
            DiffRow(
                "Interface",
                f"{side} {fname}",
                fa.get((side, fname), "absent"),
                fb.get((side, fname), "absent"),
            )
        )
    pa = a.run.params if a.run else {}
    pb = b.run.params if b.run else {}
    for key in sorted(pa.keys() | pb.keys()):
        rows.append(DiffRow("Parameters", key, _text(pa.get(key)), _text(pb.get(key))))
    ma = a.run.metrics if a.run else {}
    mb = b.run.metrics if b.run else {}
    va, vb = a.info.version, b.info.version
    if (va.data, va.split) != (vb.data, vb.split) and (ma or mb):
        # Measured on different rows: the numbers say nothing about each other.
        rows.append(
            DiffRow(
                "Metrics",
                "not compared: measured on other rows",
                f"{va.data}.{va.split}",
                f"{vb.data}.{vb.split} (dmv evaluate {va.ref} --on {vb.data}.{vb.split})",
            )
        )
        return rows
    for split in split_order(ma.keys() | mb.keys()):
        names = sorted(set(ma.get(split, {})) | set(mb.get(split, {})))
        for name in names:
            rows.append(
                DiffRow(
                    "Metrics",
                    f"{name} ({split})",
                    _text(ma.get(split, {}).get(name)),
                    _text(mb.get(split, {}).get(name)),
                )
            )
    return rows


def run_overlays(a: Side, b: Side) -> list[Any]:
    """For each metric both versions recorded: their runs side by side, A then B."""

    va, vb = a.info.version, b.info.version
    if (va.data, va.split) != (vb.data, vb.split):
        return []  # measured on other rows: never drawn side by side
    ma, mb = metric_summary(a.runs), metric_summary(b.runs)
    out = []
    for metric in metric_names([ma, mb]):
        split = pick_split([ma, mb], metric)
        if split is None or metric not in ma.get(split, {}) or metric not in mb.get(split, {}):
            continue
        rows = [
            (side.info.version.number, side.info.version.x >= 1, summary, None, i)
            for i, (side, summary) in enumerate(((a, ma), (b, mb)))
        ]
        out.append(trend(rows, metric, split, max_width=240))
    return out


def interface_changes(a: VersionInfo, b: VersionInfo) -> dict[str, Any] | None:
    """dmv's own interface diff with compatibility classes, when both interfaces are known."""
    if not a.interface or not b.interface:
        return None
    try:
        result = diff_interfaces(Interface.from_dict(a.interface), Interface.from_dict(b.interface))
    except DmvError:
        return None
    out: dict[str, Any] = result.to_dict()
    return out


def project_diff(project: Project, a: VersionInfo, b: VersionInfo) -> Any:
    """dmv's own full diff record, as plain data (None if it cannot be made)."""
    try:
        return project.diff(a.version, b.version)
    except DmvError:
        return None
