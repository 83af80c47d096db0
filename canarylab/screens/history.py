"""What the dashboard remembers of each Canary's runs, built from the engine's typed events.

Pure Python (no Textual): the App feeds it engine events in batches, widgets read it, and the Markdown
export (:mod:`canarylab.screens.report`) renders it. Bounded, so a long demo does not grow without end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from canarylab.engine.events import (
    CanaryProblem,
    CheckEvaluated,
    EngineEvent,
    EngineNotice,
    KubeEvent,
    PhaseChanged,
    StatusChanged,
    WeightChanged,
)

MAX_LOG = 500
"""Event-log lines kept per Canary."""
MAX_POINTS = 240
"""Samples kept per metric check (the chart shows the most recent that fit its width)."""
NEW_RUN = "New revision detected!"
"""How Flagger's event starts a run: ``... Scaling up <target>`` or ``... Restarting analysis for <target>``."""


@dataclass(frozen=True)
class LogLine:
    """One line of the event log: lab time, ``Normal``/``Warning`` and Flagger's message."""

    time: float
    type: str
    message: str

    @property
    def warning(self) -> bool:
        """Warnings (and engine errors) are highlighted."""
        return self.type != "Normal"


@dataclass(frozen=True)
class Sample:
    """One evaluation of a metric check."""

    time: float
    value: float | None
    min: float | None
    max: float | None
    ok: bool
    unit: str = ""
    error: str = ""
    run: int = 0
    """The run it belongs to (see :attr:`CanaryHistory.run`)."""


def by_run(samples: Iterable[Sample]) -> list[tuple[int, list[Sample]]]:
    """``samples`` grouped by run, oldest run first (for the report)."""
    grouped: dict[int, list[Sample]] = {}
    for s in samples:
        grouped.setdefault(s.run, []).append(s)
    return sorted(grouped.items())


@dataclass
class CanaryHistory:
    """Everything seen for one Canary since the dashboard started, metric samples labelled by run."""

    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=MAX_LOG))
    checks: dict[str, deque[Sample]] = field(default_factory=dict)
    weights: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=MAX_LOG))
    """``(time, primary, canary)`` each time the routing object changed."""
    phases: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=MAX_LOG))
    """``(time, old, new)`` for each phase change."""
    run: int = 0
    """Runs seen: 1 at the first "New revision detected!", +1 at each next (0: samples of a run that was
    already going when the dashboard started)."""
    run_started: dict[int, float] = field(default_factory=dict)
    """When each run started (lab time of its "New revision detected!")."""
    peak_failed_checks: int = 0
    """The most failed checks the current run reached: Flagger resets ``status.failedChecks`` to 0 when it
    rolls back, so this is what a user wants to see next to a Failed canary."""
    logged: int = 0
    """Log lines appended in total (the log itself is bounded), so the event log appends only new ones."""
    version: int = 0
    """Bumped on every change, so widgets redraw only when something they show moved."""

    def add(self, event: EngineEvent) -> None:
        """Fold one engine event into the history."""
        if isinstance(event, KubeEvent):
            self.log.append(LogLine(event.time, event.type, event.message))
            if event.message.startswith(NEW_RUN):
                self.run += 1
                self.run_started[self.run] = event.time
                self.peak_failed_checks = 0
        elif isinstance(event, CheckEvaluated):
            series = self.checks.setdefault(event.metric, deque(maxlen=MAX_POINTS))
            series.append(Sample(event.time, event.value, event.min, event.max, event.ok, event.unit, event.error,
                                 self.run))
        elif isinstance(event, WeightChanged):
            self.weights.append((event.time, event.primary, event.canary))
        elif isinstance(event, PhaseChanged):
            self.phases.append((event.time, event.old, event.new))
        elif isinstance(event, StatusChanged):
            if event.failed_checks <= self.peak_failed_checks:
                return
            self.peak_failed_checks = event.failed_checks
        elif isinstance(event, CanaryProblem):
            self.log.append(LogLine(event.time, "Warning", event.message))
        elif isinstance(event, EngineNotice):
            kind = {"info": "Normal", "warning": "Warning", "error": "Error"}[event.level]
            self.log.append(LogLine(event.time, kind, event.message))
        else:
            return
        if isinstance(event, KubeEvent | CanaryProblem | EngineNotice):
            self.logged += 1
        self.version += 1

    def run_checks(self) -> dict[str, list[Sample]]:
        """Every metric seen, with only the current run's samples (empty right after a new revision): the
        charts show one run, never the previous run's samples."""
        return {metric: [s for s in samples if s.run == self.run] for metric, samples in self.checks.items()}


class History:
    """Histories of every Canary, keyed by ``(namespace, name)``."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], CanaryHistory] = {}
        self.version = 0

    def feed(self, events: list[EngineEvent]) -> None:
        """Fold a batch of events (in the engine's order)."""
        for event in events:
            self.of(event.namespace, event.name).add(event)
        if events:
            self.version += 1

    def of(self, namespace: str, name: str) -> CanaryHistory:
        """The history of one Canary (empty when nothing was seen yet)."""
        return self._by_key.setdefault((namespace, name), CanaryHistory())
