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

from dmv.registry.records import RunInfo

__all__ = ["Bar", "Panel", "metric_panels", "split_order"]

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


def fmt(value: float) -> str:
    """A metric value, short: 0.9731, 12.5, 1.2e-05."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4g}"


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
