"""One metric check over time: a braille line, its threshold as a line, the failing side shaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from canarylab.screens.history import Sample
from canarylab.widgets.braille import render

AXIS = 7  # width of the y-axis labels


def fmt(value: float | None, unit: str = "") -> str:
    """A compact number: ``99.2``, ``512``, ``1.2k``; ``-`` for no value."""
    if value is None:
        return "-"
    if abs(value) >= 10000:
        text = f"{value / 1000:.0f}k"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}{unit}"


def unit_of(metric: str, samples: Sequence[Sample]) -> str:
    """The unit to print: the engine's, else Flagger's for the two Linkerd built-in checks."""
    for s in reversed(samples):
        if s.unit:
            return s.unit
    return {"request-success-rate": "%", "request-duration": "ms"}.get(metric, "")


def headline(metric: str, samples: Sequence[Sample]) -> tuple[str, str, str]:
    """``(name, latest value, threshold text)`` and the verdict role: for the chart's title line."""
    unit = unit_of(metric, samples)
    last = samples[-1] if samples else None
    bounds = []
    if last and last.min is not None:
        bounds.append(f"min {fmt(last.min, unit)}")
    if last and last.max is not None:
        bounds.append(f"max {fmt(last.max, unit)}")
    value = "no data yet" if last is None else (fmt(last.value, unit) if last.value is not None else "no values")
    return value, " ".join(bounds), ("idle" if last is None else "ok" if last.ok else "bad")


class MetricChart(Widget):
    """A titled chart of one check; height = title + the chart rows."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "metric-chart--ok", "metric-chart--bad", "metric-chart--threshold", "metric-chart--zone",
        "metric-chart--axis", "metric-chart--title", "metric-chart--idle",
    }  # fmt: skip
    DEFAULT_CSS = """
    MetricChart { height: 1fr; min-height: 4; text-wrap: nowrap; text-overflow: ellipsis; }
    MetricChart > .metric-chart--ok { color: $success; }
    MetricChart > .metric-chart--bad { color: $error; }
    MetricChart > .metric-chart--threshold { color: $warning; }
    MetricChart > .metric-chart--zone { background: $error 12%; }
    MetricChart > .metric-chart--axis { color: $text-muted; }
    MetricChart > .metric-chart--title { text-style: bold; }
    MetricChart > .metric-chart--idle { color: $text-muted; }
    """

    def __init__(self, metric: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.metric = metric
        self._samples: tuple[Sample, ...] = ()

    def show(self, samples: Sequence[Sample]) -> None:
        """Redraw with these samples (oldest first); no-op when unchanged."""
        samples = tuple(samples)
        if samples != self._samples:
            self._samples = samples
            self.refresh()

    def _style(self, role: str) -> Style:
        return self.get_component_rich_style(f"metric-chart--{role}")

    def render(self) -> Text:
        samples = self._samples
        value, bounds, verdict = headline(self.metric, samples)
        mark = {"ok": "✔", "bad": "✘", "idle": "·"}[verdict]
        gap = "  " if len(f"{self.metric}  {mark} {value}  {bounds}") <= self.size.width else " "  # narrow: closer
        title = Text.assemble(
            (self.metric, self._style("title")), gap,
            (f"{mark} {value}", self._style(verdict)), gap,
            (bounds, self._style("threshold")),
            no_wrap=True, overflow="ellipsis",
        )  # fmt: skip
        height = max(1, self.size.height - 1)
        width = max(4, self.size.width - AXIS)
        last = samples[-1] if samples else None
        chart = render(
            [s.value for s in samples], [s.ok for s in samples], width=width, height=height,
            minimum=last.min if last else None, maximum=last.max if last else None,
        )  # fmt: skip
        unit = unit_of(self.metric, samples)
        lines = [title]
        for r, row in enumerate(chart.rows):
            if r == 0:
                label = fmt(chart.high, unit)
            elif r == height - 1:
                label = fmt(chart.low, unit)
            else:
                label = ""
            line = Text(f"{label[: AXIS - 1]:>{AXIS - 1}}┤" if label else " " * (AXIS - 1) + "│",
                        self._style("axis"), no_wrap=True)
            for char, role in row:
                if role == "blank":
                    line.append(char)
                elif role.endswith("+zone"):
                    line.append(char, self._style("zone") + self._style(role.removesuffix("+zone")))
                else:
                    line.append(char, self._style(role))
            lines.append(line)
        out = Text("\n").join(lines)
        out.no_wrap = True  # a long title is cut, never wrapped: it would push the chart's last row out
        out.overflow = "ellipsis"
        return out
