"""What the dashboard remembers of each Canary's runs, built from the engine's typed events.

Pure Python (no Textual): the App feeds it engine events in batches, widgets read it, and the Markdown
export (:mod:`canarylab.screens.report`) renders it. Bounded, so a long demo does not grow without end.
"""

from __future__ import annotations

import re
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


LAB = "Lab"
"""The type of the dashboard's own lines about the lab (a fault injected, a ship queued): not Flagger's events."""


@dataclass(frozen=True)
class LogLine:
    """One line of the event log: lab time, ``Normal``/``Warning`` (or :data:`LAB`) and the message.

    ``expected``: for a warning Flagger gives on every healthy run (the primary's pods still starting), what it
    means; the line keeps Flagger's message and is shown as routine, not as a problem."""

    time: float
    type: str
    message: str
    expected: str = ""

    @property
    def warning(self) -> bool:
        """Warnings (and engine errors) are highlighted, unless expected."""
        return self.type not in ("Normal", LAB) and not self.expected


_ROLLING_OUT = re.compile(r"^[a-z0-9][a-z0-9-]*-primary\.[a-z0-9-]+ not ready: waiting for rollout to finish")


def expected_warning(message: str, phase: str) -> str:
    """Why a warning is routine in ``phase``, or ``""``. Flagger creates the primary and checks it in the same
    tick, so the first tick of every Canary warns that the primary is not ready; a promotion warns the same
    while the primary rolls out the canary's spec. Flagger retries at the next interval."""
    if not _ROLLING_OUT.match(message):
        return ""
    if phase in ("", "Initializing"):
        return "expected: the primary was just created and its pods are starting; Flagger checks again next interval"
    if phase in ("Promoting", "Finalising"):
        return "expected: the primary is rolling out the canary's spec; Flagger checks again next interval"
    return ""


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
    phase: str = ""
    """The phase as last seen in the events (tells routine warnings from real ones)."""

    def note(self, time: float, message: str) -> None:
        """A line of the dashboard's own about the lab (type :data:`LAB`)."""
        self.log.append(LogLine(time, LAB, message))
        self.logged += 1
        self.version += 1

    def add(self, event: EngineEvent) -> None:
        """Fold one engine event into the history."""
        if isinstance(event, KubeEvent):
            expected = expected_warning(event.message, self.phase) if event.type == "Warning" else ""
            self.log.append(LogLine(event.time, event.type, event.message, expected))
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
            self.phase = event.new
        elif isinstance(event, StatusChanged):
            self.phase = event.phase
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

    def note(self, namespace: str, name: str, time: float, message: str) -> None:
        """A line of the dashboard's own in one Canary's log (see :meth:`CanaryHistory.note`)."""
        self.of(namespace, name).note(time, message)
        self.version += 1

    def of(self, namespace: str, name: str) -> CanaryHistory:
        """The history of one Canary (empty when nothing was seen yet)."""
        return self._by_key.setdefault((namespace, name), CanaryHistory())
