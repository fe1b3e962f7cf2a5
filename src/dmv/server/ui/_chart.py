"""Training runs' metrics as small grouped bar charts, one panel per metric.

Each panel has one group per run (``tr0``, ``tr1``…) and one bar per split
(train, valid, test…), each split a series with its own colour. Panels scale
independently: an RMSE and an accuracy share no axis. Pure layout; the
template draws the SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dmv.registry.records import RunInfo
from dmv.reports.explain import PREFERRED_SPLITS, fmt

__all__ = [
    "Bar",
    "Curve",
    "CurvePanel",
    "Panel",
    "Spread",
    "Trend",
    "curve_panels",
    "fmt",
    "metric_names",
    "metric_panels",
    "pick_split",
    "split_order",
    "trend",
]

SPLIT_ORDER = ("train", "valid", "validation", "val", "test", "all")
BAR_W = 16
GROUP_GAP = 18
PLOT_H = 120
PAD_L = 48
PAD_T = 26
PAD_B = 26


@dataclass(frozen=True)
class Bar:
    run: str
    split: str
    series: int  # the split's index: its colour
    value: float
    x: float
    y: float
    h: float

    @property
    def text(self) -> str:
        return fmt(self.value)


@dataclass
class Panel:
    metric: str
    width: float
    height: float
    bars: list[Bar] = field(default_factory=list)
    groups: list[tuple[str, float]] = field(default_factory=list)  # (run id, centre x)
    ticks: list[tuple[str, float]] = field(default_factory=list)  # (label, y)
    zero_y: float = 0.0


def split_order(splits: Sequence[str] | set[str]) -> list[str]:
    """Splits in reading order: train, valid, test, then the rest alphabetically."""
    known = [s for s in SPLIT_ORDER if s in splits]
    return known + sorted(s for s in splits if s not in SPLIT_ORDER)


def _nice_ticks(lo: float, hi: float) -> list[float]:
    if hi == lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / 2))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= 4:
            step *= mult
            break
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    ticks = []
    t = first
    while t <= last + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def metric_panels(runs: Sequence[RunInfo]) -> tuple[list[str], list[Panel]]:
    """The splits (series, in order) and one panel per metric name."""
    splits = split_order({s for r in runs for s in r.metrics})
    metrics = sorted({m for r in runs for vals in r.metrics.values() for m in vals})
    panels = []
    for metric in metrics:
        values = [vals[metric] for r in runs for vals in r.metrics.values() if metric in vals]
        lo, hi = min([0.0, *values]), max([0.0, *values])
        if hi == lo:
            hi = lo + 1
        ticks = _nice_ticks(lo, hi)
        lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        group_w = max(len(splits), 1) * BAR_W + GROUP_GAP
        width = PAD_L + len(runs) * group_w + 10
        panel = Panel(metric, max(width, 160), PAD_T + PLOT_H + PAD_B)

        def y_of(v: float, lo: float = lo, hi: float = hi) -> float:
            return PAD_T + PLOT_H * (hi - v) / (hi - lo)

        panel.zero_y = y_of(0.0)
        panel.ticks = [(fmt(t), y_of(t)) for t in ticks]
        for g, run in enumerate(runs):
            gx = PAD_L + g * group_w + GROUP_GAP / 2
            panel.groups.append((run.id, gx + len(splits) * BAR_W / 2))
            for k, split in enumerate(splits):
                value = run.metrics.get(split, {}).get(metric)
                if value is None:
                    continue
                top, bottom = sorted((y_of(value), panel.zero_y))
                bar = Bar(run.id, split, k, value, gx + k * BAR_W, top, max(bottom - top, 1.0))
                panel.bars.append(bar)
        panels.append(panel)
    return splits, panels


# -- learning curves: a metric's history per run ------------------------------------

CURVE_W = 360
CURVE_H = 140


@dataclass(frozen=True)
class Curve:
    """One run's values of one metric, step by step, as an SVG polyline."""

    run: str
    series: int  # the run's index: its colour
    points: tuple[tuple[int, float, float, float], ...]  # (step, value, x, y)
    last: float
    best: float

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for _, _, x, y in self.points)


@dataclass
class CurvePanel:
    metric: str
    split: str
    width: float
    height: float
    goal: str  # min or max: which value is best
    curves: list[Curve] = field(default_factory=list)
    ticks: list[tuple[str, float]] = field(default_factory=list)  # (label, y)
    steps: list[tuple[str, float]] = field(default_factory=list)  # (label, x)


def curve_panels(runs: Sequence[RunInfo]) -> list[CurvePanel]:
    """One panel per metric and split logged with a step, one curve per run."""
    from dmv.registry.records import lower_is_better

    keys = sorted({(m, s) for r in runs for s, ms in r.history.items() for m in ms})
    panels = []
    for metric, split in keys:
        series = [(i, r) for i, r in enumerate(runs) if r.history.get(split, {}).get(metric)]
        pts = [p for _, r in series for p in r.history[split][metric]]
        values = [float(p[1]) for p in pts]
        steps = [int(p[0]) for p in pts]
        lo, hi = min(values), max(values)
        if hi == lo:
            lo, hi = lo - (abs(lo) * 0.05 or 0.5), hi + (abs(hi) * 0.05 or 0.5)
        ticks = _nice_ticks(lo, hi)
        lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        s_lo, s_hi = min(steps), max(steps)
        span = (s_hi - s_lo) or 1
        goal = "min" if lower_is_better(metric) else "max"
        panel = CurvePanel(metric, split, PAD_L + CURVE_W + 16, PAD_T + CURVE_H + PAD_B, goal)

        def x_of(step: int, s_lo: int = s_lo, span: int = span) -> float:
            return PAD_L + CURVE_W * (step - s_lo) / span

        def y_of(v: float, lo: float = lo, hi: float = hi) -> float:
            return PAD_T + CURVE_H * (hi - v) / (hi - lo)

        panel.ticks = [(fmt(t), y_of(t)) for t in ticks]
        panel.steps = [(str(s), x_of(s)) for s in sorted({s_lo, s_hi})]
        for index, run in series:
            points = run.history[split][metric]
            vals = [float(p[1]) for p in points]
            panel.curves.append(
                Curve(
                    run.id,
                    index,
                    tuple(
                        (int(p[0]), float(p[1]), x_of(int(p[0])), y_of(float(p[1]))) for p in points
                    ),
                    vals[-1],
                    min(vals) if goal == "min" else max(vals),
                )
            )
        panels.append(panel)
    return panels


# -- one metric across versions --------------------------------------------------------

TREND_H = 190
TREND_PAD_L = 56
TREND_PAD_T = 20
TREND_PAD_B = 78  # the least room below the plot, for the rotated version labels
TREND_MAX_W = 1180
# The version labels: monospace at 10 px (app.css ``.vlabel``), turned 55° clockwise and
# anchored 3 px right of their version and 4 px below the plot. A monospace glyph is at
# most 0.62 em wide (DejaVu Sans Mono, Menlo, Consolas: 0.60), reaches 0.8 em above its
# baseline and 0.25 em below it.
LABEL_FONT = 10.0
LABEL_CHAR_W = 0.62 * LABEL_FONT
LABEL_ASCENT = 0.8 * LABEL_FONT
LABEL_DESCENT = 0.25 * LABEL_FONT
LABEL_ANGLE = math.radians(55)
LABEL_DX, LABEL_DY = 3.0, 4.0


def label_room(label: str) -> tuple[float, float]:
    """How far a rotated version label reaches right of and below its anchor (px)."""
    run = len(label) * LABEL_CHAR_W
    cos, sin = math.cos(LABEL_ANGLE), math.sin(LABEL_ANGLE)
    return run * cos + LABEL_ASCENT * sin, run * sin + LABEL_DESCENT * cos


@dataclass(frozen=True)
class Spread:
    """One version's runs of one metric: min–median–max and a point per run."""

    version: str  # X.Y.Z-DATA.SPLIT
    label: str  # what the axis says (X.Y.Z-DATA.SPLIT, shortened when crowded)
    released: bool
    x: float
    n: int
    median: float
    low: float
    high: float
    y_median: float
    y_low: float
    y_high: float
    points: tuple[tuple[str, float, float], ...]  # (run id, value, y)
    series: int = 0  # for an overlay: which side (0 = A, 1 = B)
    href: str | None = None


@dataclass
class Trend:
    metric: str
    split: str
    width: float
    height: float
    spreads: list[Spread] = field(default_factory=list)
    ticks: list[tuple[str, float]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # versions without this metric
    step: float = 0.0
    goal: str = "max"
    axis_y: float = TREND_PAD_T + TREND_H  # the plot's bottom edge; the labels hang below it

    @property
    def best(self) -> Spread | None:
        if not self.spreads:
            return None
        pick = max if self.goal == "max" else min
        return pick(self.spreads, key=lambda s: s.median)


def pick_split(summaries: Sequence[dict[str, dict[str, Any]]], metric: str) -> str | None:
    """The split ``metric`` is best compared on: test, then valid…, among those recorded."""

    seen = {s for summary in summaries for s, ms in summary.items() if metric in ms}
    for split in (*PREFERRED_SPLITS, *sorted(seen)):
        if split in seen:
            return split
    return None


def metric_names(summaries: Sequence[dict[str, dict[str, Any]]]) -> list[str]:
    return sorted({m for summary in summaries for ms in summary.values() for m in ms})


def trend(
    rows: Sequence[tuple[str, bool, dict[str, dict[str, Any]], str | None, int]],
    metric: str,
    split: str,
    goal: str = "max",
    max_width: float = TREND_MAX_W,
) -> Trend:
    """``metric`` on ``split`` across ``rows`` — (version, released, metric summary, page,
    series) in the order given (the versions' precedence)."""
    have = [r for r in rows if metric in r[2].get(split, {})]
    out = Trend(metric, split, 0, TREND_H + TREND_PAD_T + TREND_PAD_B, goal=goal)
    out.missing = [r[0] for r in rows if metric not in r[2].get(split, {})]
    values = [float(v) for r in have for v in r[2][split][metric]["runs"].values()]
    if not values:
        out.width = 320
        return out
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.05 or 0.5), hi + (abs(hi) * 0.05 or 0.5)
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    step = max(12.0, min(56.0, (max_width - TREND_PAD_L - 70) / max(len(have), 1)))
    out.step = step
    # Room for every label whole: below the plot for the longest, right of the last
    # version for the last one (each label leans right, over the versions after it).
    below = max(label_room(r[0])[1] for r in have)
    right = label_room(have[-1][0])[0]
    out.height = out.axis_y + max(TREND_PAD_B, math.ceil(LABEL_DY + below + 6))
    out.width = TREND_PAD_L + step * len(have) + max(70, math.ceil(LABEL_DX + right + 6 - step / 2))

    def y_of(v: float) -> float:
        return TREND_PAD_T + TREND_H * (hi - v) / (hi - lo)

    out.ticks = [(fmt(t), y_of(t)) for t in ticks]
    for i, (version, released, summary, href, series) in enumerate(have):
        m = summary[split][metric]
        runs = m["runs"]
        out.spreads.append(
            Spread(
                version,
                version,
                released,
                TREND_PAD_L + step * (i + 0.5),
                m["n"],
                m["median"],
                m["min"],
                m["max"],
                y_of(m["median"]),
                y_of(m["min"]),
                y_of(m["max"]),
                tuple((run, v, y_of(v)) for run, v in runs.items()),
                series,
                href,
            )
        )
    return out
