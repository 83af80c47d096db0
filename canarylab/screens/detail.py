"""The Canary detail: traffic, step ladder, one chart per check, pods, events, a hint; one screen."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from canarylab.screens.hints import hint
from canarylab.screens.tags import next_image, tag
from canarylab.screens.view import LabView
from canarylab.widgets.clock_text import hms
from canarylab.widgets.event_log import EventLog
from canarylab.widgets.fault_line import FaultLine
from canarylab.widgets.key_footer import KeyFooter
from canarylab.widgets.lab_header import LabHeader
from canarylab.widgets.metric_chart import MetricChart
from canarylab.widgets.pods_table import PodsTable
from canarylab.widgets.status import look, phase_text
from canarylab.widgets.step_ladder import StepLadder
from canarylab.widgets.traffic_bar import TrafficBar


def chart_id(metric: str) -> str:
    """A widget id from a metric name (ids allow letters, digits, ``-`` and ``_``)."""
    return "chart-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in metric)


class DetailScreen(Screen[None]):
    """One Canary, live. Escape goes to the overview."""

    DEFAULT_CSS = """
    DetailScreen #traffic, DetailScreen #analysis, DetailScreen #charts, DetailScreen #side {
        border: round $primary 50%; border-title-color: $text; border-subtitle-color: $text-muted;
    }
    DetailScreen #traffic { height: 4; padding: 0 1; }
    DetailScreen #analysis { height: 3; padding: 0 1; }
    DetailScreen #body { height: 1fr; }
    DetailScreen #charts { width: 1fr; padding: 0 1; }
    DetailScreen #side { width: 1fr; }
    DetailScreen #no-checks { color: $text-muted; }
    DetailScreen #hint {
        height: 1; padding: 0 1; color: $text-accent; background: $boost; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.overview", "Overview", show=False)]

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__()
        self.key = (namespace, name)
        self._hint = ""
        self._hint_view: LabView | None = None

    def compose(self) -> ComposeResult:
        namespace, _ = self.key
        yield LabHeader(id="header")
        with Vertical(id="traffic"):
            yield TrafficBar(id="bar")
        with Vertical(id="analysis"):
            yield StepLadder(id="ladder")
        with Horizontal(id="body"):
            with Vertical(id="charts"):
                yield Static("no metric checks evaluated yet: they start with the analysis", id="no-checks")
            with Vertical(id="side"):
                yield PodsTable(id="pods")
                yield FaultLine(id="fault")
                yield EventLog(namespace, id="events")
        yield Static("", id="hint")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#traffic").border_title = "traffic"
        self.query_one("#analysis").border_title = "analysis"
        self.query_one("#charts").border_title = "metric checks"
        self.query_one("#side").border_title = "pods · events"

    def current_key(self) -> tuple[str, str]:
        """The Canary this screen shows."""
        return self.key

    def show_clock(self, view: LabView) -> None:
        """Only the header's lab time moved."""
        self.query_one(LabHeader).show_time(view.now)

    def show(self, view: LabView) -> None:
        """Redraw from the latest snapshot; each widget skips work when its part did not change."""
        namespace, name = self.key
        state = view.state(self.key)
        workloads = view.workloads.get(self.key)
        history = view.history.of(namespace, name)
        phase = phase_text(state) if state else "unknown"
        icon, _ = look(state.phase if state else "")
        gate = f" · gate {state.waiting_gate}" if state and state.waiting_gate else ""
        fault = view.faults.get(self.key)
        badge, badge_short = "", ""
        if fault is not None and fault.active:
            badge, badge_short = f"⚡ fault: {fault.what()} on {tag(fault.image)}", "⚡ fault"
        self.query_one(LabHeader).show(view.title, view.engine, f"{namespace}/{name} {icon} {phase}{gate}", view.now,
                                       badge, badge_short)
        self.query_one(FaultLine).show(fault, can_clear=view.supports_faults)
        if state is not None:
            primary_image = workloads.primary.image if workloads else ""
            canary_image = workloads.canary.image if workloads else ""
            self.query_one(TrafficBar).show(state.primary_weight, state.canary_weight, primary_image, canary_image)
            title = f"traffic · {state.router} {state.target}"
            if state.strategy == "ab-testing":
                title += " · requests matching analysis.match (the others stay on the primary)"
            self.query_one("#traffic").border_title = title
            self.query_one(StepLadder).show(state.steps, state.canary_weight, state.iterations, state.phase,
                                            state.strategy)
            strategy = {"canary": "canary", "blue-green": "Blue/Green", "ab-testing": "A/B testing"}.get(
                state.strategy, state.strategy
            )
            failed = f"{state.failed_checks}/{state.threshold}"
            if state.phase == "Failed" and not state.failed_checks and history.peak_failed_checks:
                failed = f"{history.peak_failed_checks}/{state.threshold} before the rollback"
            self.query_one("#analysis").border_title = (
                f"analysis · {strategy} · failed checks {failed} · every {state.interval:g}s"
            )
        if workloads is not None:
            self.query_one(PodsTable).show(workloads)
        self._show_charts(view, namespace, name)
        self.query_one(EventLog).show(history.log, history.logged)
        self._show_hint(view)

    def on_resize(self) -> None:
        if self._hint_view is not None:
            self._show_hint(self._hint_view)  # a narrower terminal gets the shorter wording

    def _show_hint(self, view: LabView) -> None:
        self._hint_view = view
        state = view.state(self.key)
        workloads = view.workloads.get(self.key)
        proposed = next_image(workloads.canary.image) if workloads and workloads.canary.image else ""
        width = self.size.width - 2 if self.size.width else None  # the line's padding
        text = hint(state, proposed, readonly=view.readonly, supports_faults=view.supports_faults, width=width,
                    fault=view.faults.get(self.key), queued=view.queued.get(self.key),
                    primary_image=workloads.primary.image if workloads else "",
                    canary_image=workloads.canary.image if workloads else "")
        if text != self._hint:
            self._hint = text
            self.query_one("#hint", Static).update(text)

    def _show_charts(self, view: LabView, namespace: str, name: str) -> None:
        """One chart per check, with the current run's samples only: a new revision starts them over."""
        history = view.history.of(namespace, name)
        checks = history.run_checks()
        box = self.query_one("#charts")
        started = history.run_started.get(history.run)
        box.border_title = "metric checks" + (f" · run since {hms(started)}" if started is not None else "")
        if checks:
            self.query_one("#no-checks").display = False
        for metric, samples in checks.items():
            charts = box.query(f"#{chart_id(metric)}")
            if charts:
                chart = charts.first(MetricChart)
            else:
                chart = MetricChart(metric, id=chart_id(metric))
                box.mount(chart)
            chart.show(samples)
