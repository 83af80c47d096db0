"""Linkerd-proxy metrics of the simulated pods, and the evaluator that answers the built-in checks.

Each pod has the counters a Linkerd proxy exports for inbound traffic: ``response_total`` (by
``classification`` and ``status_code``) and the ``response_latency_ms`` histogram with Linkerd's bucket
bounds. Counters grow with the simulated traffic; they are kept as exact (fractional) expectations so a
run is deterministic, and shown rounded down in the text format, which keeps them monotonic.

:class:`SimMetrics` implements the engine's Metrics port: it answers ``request-success-rate`` and
``request-duration`` over the check's ``interval`` as Prometheus would answer Flagger's Linkerd queries
(flagger-spec 5.2), from per-Deployment history kept in time slices.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from canarylab.engine.ports import MetricQuery, MetricsError, NoValuesFound
from canarylab.sim.workloads import Behaviour, LatencyProfile

if TYPE_CHECKING:
    from canarylab.sim.cluster import SimPod

LINKERD_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
)  # fmt: skip
"""Linkerd's ``response_latency_ms`` bucket upper bounds (``+Inf`` follows)."""

BUILTIN_SUCCESS_RATE = "request-success-rate"
BUILTIN_DURATION = "request-duration"
DEFAULT_HORIZON = 900.0
"""How much per-Deployment history to keep (seconds); grows when a check asks for a longer window."""


@dataclass
class PodSeries:
    """The inbound counters of one pod's proxy."""

    namespace: str
    deployment: str
    pod: str
    template_hash: str
    counts: dict[LatencyProfile, list[float]] = field(default_factory=dict)
    """Responses per latency profile: ``[successes, failures]``."""


@dataclass(slots=True)
class SliceEntry:
    """Responses of one Deployment with one latency profile in the time slice ending at ``at``."""

    at: float
    profile: LatencyProfile
    ok: float
    fail: float


class LinkerdMetrics:
    """The metrics store: per-pod counters (for the text format) and per-Deployment history (for checks).

    The simulation loop writes; the HTTP server thread reads; a lock keeps the two apart.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._pods: dict[tuple[str, str], PodSeries] = {}
        self._history: dict[tuple[str, str], deque[SliceEntry]] = {}
        self.horizon = DEFAULT_HORIZON

    # ---------------------------------------------------------------------------------- writes

    def add_pod(self, namespace: str, deployment: str, pod: str, template_hash: str) -> None:
        """Start exporting counters for a new pod (they start at zero)."""
        with self.lock:
            self._pods.setdefault((namespace, pod), PodSeries(namespace, deployment, pod, template_hash))

    def pod_changed(self, pod: SimPod, change: str) -> None:
        """A cluster's pod listener: a pod that appears gets its series, one that is gone loses them."""
        if change == "added":
            self.add_pod(pod.namespace, pod.deployment, pod.name, pod.hash)
        else:
            self.remove_pod(pod.namespace, pod.name)

    def remove_pod(self, namespace: str, pod: str) -> None:
        """The pod is gone: its series vanish from the text format (history stays for the checks)."""
        with self.lock:
            self._pods.pop((namespace, pod), None)

    def record(self, namespace: str, pod: str, requests: float, how: Behaviour, at: float) -> None:
        """``requests`` answered by ``pod`` with behaviour ``how`` in the time slice ending at ``at``."""
        self.record_many([(namespace, pod, requests, how)], at)

    def record_many(self, items: Iterable[tuple[str, str, float, Behaviour]], at: float) -> None:
        """Several :meth:`record` calls for one time slice, under one lock (the traffic model's hot path)."""
        with self.lock:
            for namespace, pod, requests, how in items:
                if requests <= 0:
                    continue
                series = self._pods.get((namespace, pod))
                if series is None:
                    continue  # traffic to a pod the proxy does not know (gone): lost, as in a real cluster
                fail = requests * how.error_rate
                ok = requests - fail
                slot = series.counts.get(how.latency)
                if slot is None:
                    series.counts[how.latency] = [ok, fail]
                else:
                    slot[0] += ok
                    slot[1] += fail
                key = (namespace, series.deployment)
                history = self._history.get(key)
                if history is None:
                    history = self._history[key] = deque()
                if history and history[-1].at == at and history[-1].profile == how.latency:
                    history[-1].ok += ok
                    history[-1].fail += fail
                else:
                    history.append(SliceEntry(at, how.latency, ok, fail))
                    limit = at - self.horizon
                    while history[0].at <= limit:
                        history.popleft()

    # ---------------------------------------------------------------------------------- checks

    def window(self, namespace: str, deployment: str, now: float, seconds: float) -> list[SliceEntry]:
        """History entries of one Deployment in ``(now - seconds, now]``."""
        if seconds > self.horizon:
            self.horizon = seconds
        with self.lock:
            history = self._history.get((namespace, deployment), ())
            start = now - seconds
            return [SliceEntry(e.at, e.profile, e.ok, e.fail) for e in history if start < e.at <= now]

    def success_rate(self, namespace: str, deployment: str, now: float, seconds: float) -> float:
        """``sum(rate(non-failure)) / sum(rate(all)) * 100`` over the window; NaN without traffic."""
        ok = fail = 0.0
        for entry in self.window(namespace, deployment, now, seconds):
            ok += entry.ok
            fail += entry.fail
        total = ok + fail
        return math.nan if total <= 0 else ok / total * 100

    def latency_quantile(self, q: float, namespace: str, deployment: str, now: float, seconds: float) -> float:
        """``histogram_quantile(q, sum(rate(response_latency_ms_bucket)) by (le))`` over the window."""
        totals: dict[LatencyProfile, float] = {}
        for entry in self.window(namespace, deployment, now, seconds):
            totals[entry.profile] = totals.get(entry.profile, 0.0) + entry.ok + entry.fail
        buckets = [(bound, sum(n * p.cdf(bound) for p, n in totals.items())) for bound in LINKERD_BUCKETS_MS]
        buckets.append((math.inf, sum(totals.values())))
        return histogram_quantile(q, buckets)

    # ---------------------------------------------------------------------------------- text format

    def exposition(self) -> str:
        """Every pod's series in the Prometheus text format (version 0.0.4)."""
        lines = [
            "# HELP response_total Total count of HTTP responses.",
            "# TYPE response_total counter",
        ]
        hist = [
            "# HELP response_latency_ms Elapsed times between a request's headers being received and its "
            "response stream completing",
            "# TYPE response_latency_ms histogram",
        ]
        with self.lock:
            pods = sorted(self._pods.values(), key=lambda s: (s.namespace, s.pod))
            snapshot = [(s, [(p, c[0], c[1]) for p, c in s.counts.items()]) for s in pods]
        for series, counts in snapshot:
            by_code = {"200": [(p, ok) for p, ok, _ in counts], "500": [(p, fail) for p, _, fail in counts]}
            base = (f'direction="inbound",namespace="{series.namespace}",deployment="{series.deployment}",'
                    f'pod="{series.pod}",pod_template_hash="{series.template_hash}",tls="true",'
                    'control_plane_ns="linkerd"')
            for code, classification in (("200", "success"), ("500", "failure")):
                part = by_code[code]
                total = sum(n for _, n in part)
                if code == "500" and total <= 0:
                    continue  # a proxy only exports the status codes it has seen
                labels = f'{base},status_code="{code}"'
                lines.append(f'response_total{{{labels},classification="{classification}"}} {math.floor(total)}')
                for bound in LINKERD_BUCKETS_MS:
                    cumulative = sum(math.floor(n * p.cdf(bound)) for p, n in part)
                    hist.append(f'response_latency_ms_bucket{{{labels},le="{_fmt(bound)}"}} {cumulative}')
                hist.append(f'response_latency_ms_bucket{{{labels},le="+Inf"}} {math.floor(total)}')
                latency_sum = sum(n * p.mean_ms for p, n in part)
                hist.append(f"response_latency_ms_sum{{{labels}}} {math.floor(latency_sum)}")
                hist.append(f"response_latency_ms_count{{{labels}}} {math.floor(total)}")
        return "\n".join([*lines, *hist]) + "\n"


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """Prometheus' ``bucketQuantile``: linear interpolation inside the bucket holding rank ``q x count``.

    ``buckets`` are ``(upper bound, cumulative count)`` sorted by bound, ``+Inf`` last. NaN without data.
    """
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    items = sorted(buckets)
    if len(items) < 2 or not math.isinf(items[-1][0]):
        return math.nan
    # Prometheus forces counts to be monotonic (floating point noise when summing series).
    fixed: list[tuple[float, float]] = []
    top = 0.0
    for bound, count in items:
        top = max(top, count)
        fixed.append((bound, top))
    observations = fixed[-1][1]
    if observations <= 0:
        return math.nan
    rank = q * observations
    b = next(i for i, (_, count) in enumerate(fixed) if count >= rank)
    if b == len(fixed) - 1:
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start = 0.0
    end, count = fixed[b]
    if b > 0:
        start = fixed[b - 1][0]
        count -= fixed[b - 1][1]
        rank -= fixed[b - 1][1]
    return start + (end - start) * (rank / count)


class SimMetrics:
    """The Metrics port over the simulated Linkerd metrics: the two built-in checks, in process.

    A check with its own PromQL (``query`` or ``templateRef``) needs a real Prometheus: it fails with a
    :class:`MetricsError` that says to run with ``--prometheus``.
    """

    def __init__(self, store: LinkerdMetrics, now: object) -> None:
        self.store = store
        self._now = now  # a callable: lab seconds, the same clock the traffic slices are stamped with

    async def query(self, q: MetricQuery) -> float:
        """The built-in check's value, like Prometheus over the window ``q.interval_seconds``."""
        now: float = self._now()  # type: ignore[operator]
        if q.builtin == BUILTIN_SUCCESS_RATE:
            value = self.store.success_rate(q.namespace, q.target, now, q.interval_seconds)
        elif q.builtin == BUILTIN_DURATION:
            value = self.store.latency_quantile(0.99, q.namespace, q.target, now, q.interval_seconds)
        else:
            raise MetricsError(
                f"metric {q.metric} needs PromQL, which the simulated lab cannot evaluate (it answers the "
                f"built-in checks {BUILTIN_SUCCESS_RATE} and {BUILTIN_DURATION}); run with --prometheus URL "
                "or --prometheus local to evaluate query and templateRef checks"
            )
        if math.isnan(value):
            raise NoValuesFound("no values found")  # Flagger's ErrNoValuesFound, word for word
        return value

    async def is_online(self, address: str | None) -> bool:
        """The in-process evaluator is always there."""
        return True
