"""Flagger's own Prometheus metrics, fed by the engine's events.

The names, help texts, labels and values are Flagger's (``pkg/metrics/recorder.go``, v1.44), so dashboards
and alerts written for Flagger work unchanged:

- ``flagger_info{version, mesh_provider}``: 1
- ``flagger_canary_total{namespace}``: Canaries per namespace
- ``flagger_canary_status{name, namespace}``: 0 running (Progressing), 1 successful (any other phase),
  2 failed
- ``flagger_canary_weight{workload, namespace}``: the route's weights, one series for ``<target>-primary``
  and one for ``<target>``
- ``flagger_canary_metric_analysis{name, namespace, metric}``: the last value of each check (Flagger records
  the built-in request-duration in seconds, not milliseconds)
- ``flagger_canary_duration_seconds{name, namespace}``: a histogram of the time one analysis tick took
- ``flagger_canary_successes_total`` / ``flagger_canary_failures_total`` ``{name, namespace,
  deployment_strategy, analysis_status}``: promotions and rollbacks

As in Flagger, ``name`` is the target's name (``spec.targetRef.name``), not the Canary's. The recorder is
read from another thread (the HTTP endpoint), so every update and :meth:`FlaggerMetrics.exposition` take
one lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from canarylab.engine.events import (
    CanaryRemoved,
    CheckEvaluated,
    EngineEvent,
    PhaseChanged,
    StatusChanged,
    TickFinished,
    WeightChanged,
)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""client_golang's ``prometheus.DefBuckets``, which Flagger's duration histogram uses."""


@dataclass(frozen=True)
class CanaryFacts:
    """What the recorder needs to know about a Canary beyond its events."""

    target: str
    strategy: str  # canary, blue-green or ab-testing (Flagger's DeploymentStrategy())
    skip_analysis: bool


Lookup = Callable[[str, str], "CanaryFacts | None"]
"""``(namespace, name)`` to the Canary's facts, or ``None`` when the engine no longer knows it."""


class _Histogram:
    __slots__ = ("count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1


class FlaggerMetrics:
    """Subscribe :meth:`record` to an engine; serve :meth:`exposition` on ``/metrics``."""

    def __init__(self, lookup: Lookup, *, version: str, mesh_provider: str) -> None:
        self.lookup = lookup
        self.version = version
        self.mesh_provider = mesh_provider
        self._lock = threading.Lock()
        self._canaries: dict[tuple[str, str], str] = {}  # (namespace, name) -> target
        self._status: dict[tuple[str, str], int] = {}  # (target, namespace)
        self._weight: dict[tuple[str, str], int] = {}  # (workload, namespace)
        self._analysis: dict[tuple[str, str, str], float] = {}  # (target, namespace, metric)
        self._duration: dict[tuple[str, str], _Histogram] = {}
        self._successes: dict[tuple[str, str, str, str], int] = {}
        self._failures: dict[tuple[str, str, str, str], int] = {}

    # ------------------------------------------------------------------------------------- recording

    def record(self, event: EngineEvent) -> None:
        """An engine subscriber: update the series this event moves."""
        if not event.name:
            return  # engine-wide notices
        key = (event.namespace, event.name)
        if isinstance(event, CanaryRemoved):
            with self._lock:
                self._canaries.pop(key, None)
            return
        facts = self.lookup(event.namespace, event.name)
        target = facts.target if facts is not None and facts.target else self._canaries.get(key, event.name)
        with self._lock:
            self._canaries[key] = target
            ns = event.namespace
            if isinstance(event, PhaseChanged | StatusChanged):
                phase = event.new if isinstance(event, PhaseChanged) else event.phase
                self._status[(target, ns)] = _status_value(phase)
            if isinstance(event, PhaseChanged) and event.new != event.old and facts is not None:
                if event.new == "Succeeded":
                    status = "skipped" if facts.skip_analysis else "completed"
                    _bump(self._successes, (target, ns, facts.strategy, status))
                elif event.new == "Failed":
                    _bump(self._failures, (target, ns, facts.strategy, "completed"))
            elif isinstance(event, WeightChanged):
                self._weight[(f"{target}-primary", ns)] = event.primary
                self._weight[(target, ns)] = event.canary
            elif isinstance(event, CheckEvaluated) and event.value is not None:
                value = event.value / 1000 if event.metric == "request-duration" and event.unit == "ms" \
                    else event.value
                self._analysis[(target, ns, event.metric)] = value
            elif isinstance(event, TickFinished):
                self._duration.setdefault((target, ns), _Histogram()).observe(event.seconds)

    # ------------------------------------------------------------------------------------- exposition

    def exposition(self) -> str:
        """Prometheus text format 0.0.4, Flagger's series in Flagger's order of registration."""
        with self._lock:
            totals: dict[str, int] = {}
            for namespace, _ in self._canaries:
                totals[namespace] = totals.get(namespace, 0) + 1
            out: list[str] = []
            _family(out, "flagger_info", "gauge", "Flagger version and mesh provider information",
                    [({"version": self.version, "mesh_provider": self.mesh_provider}, 1)])
            out += _histogram("flagger_canary_duration_seconds", "Seconds spent performing canary analysis.",
                              self._duration)
            _family(out, "flagger_canary_total", "gauge", "Total number of canary object",
                    [({"namespace": ns}, n) for ns, n in sorted(totals.items())])
            _family(out, "flagger_canary_status", "gauge", "Last canary analysis result",
                    [({"name": t, "namespace": ns}, v) for (t, ns), v in sorted(self._status.items())])
            _family(out, "flagger_canary_weight", "gauge", "The virtual service destination weight current value",
                    [({"workload": w, "namespace": ns}, v) for (w, ns), v in sorted(self._weight.items())])
            _family(out, "flagger_canary_metric_analysis", "gauge", "Last canary analysis result per metric",
                    [({"name": t, "namespace": ns, "metric": m}, v)
                     for (t, ns, m), v in sorted(self._analysis.items())])
            for name, help_text, table in (
                ("flagger_canary_successes_total", "Total number of canary successes", self._successes),
                ("flagger_canary_failures_total", "Total number of canary failures", self._failures),
            ):
                _family(out, name, "counter", help_text,
                        [({"name": t, "namespace": ns, "deployment_strategy": s, "analysis_status": a}, n)
                         for (t, ns, s, a), n in sorted(table.items())])
            return "".join(out)


def _status_value(phase: str) -> int:
    """Flagger's SetStatus: Progressing is 0 (running), Failed 2, every other phase 1."""
    return {"Progressing": 0, "Failed": 2}.get(phase, 1)


def _bump(table: dict[tuple[str, str, str, str], int], key: tuple[str, str, str, str]) -> None:
    table[key] = table.get(key, 0) + 1


def _labels(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 1e15):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _family(out: list[str], name: str, kind: str, help_text: str,
            samples: list[tuple[dict[str, str], float]]) -> None:
    """A family is written only once it has a sample, as client_golang does for a vector."""
    if not samples:
        return
    out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
    out.extend(f"{name}{_labels(labels)} {_number(value)}\n" for labels, value in samples)


def _histogram(name: str, help_text: str, table: dict[tuple[str, str], _Histogram]) -> list[str]:
    if not table:
        return []
    out = [f"# HELP {name} {help_text}\n# TYPE {name} histogram\n"]
    for (target, ns), h in sorted(table.items()):
        base = {"name": target, "namespace": ns}
        for bound, count in zip(BUCKETS, h.counts, strict=True):
            out.append(f"{name}_bucket{_labels({**base, 'le': _number(bound)})} {count}\n")
        out.append(f"{name}_bucket{_labels({**base, 'le': '+Inf'})} {h.count}\n")
        out.append(f"{name}_sum{_labels(base)} {_number(h.sum)}\n")
        out.append(f"{name}_count{_labels(base)} {h.count}\n")
    return out
