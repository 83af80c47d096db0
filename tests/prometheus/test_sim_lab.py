"""The simulated lab through a REAL Prometheus: scraped Linkerd metrics, Flagger's queries, whole runs.

The lab runs in real time (a real Prometheus scrapes every second and evaluates real windows), with short
analysis intervals so a run takes about a minute. One simulation carries two Canaries: ``good`` (healthy
new revision) and ``bad`` (its Deployment answers 30 % of requests with 500).

Tolerances: the simulated proxies export whole request counts (rounded down) and Prometheus extrapolates
rates over real scrape times, so at the 50 requests/s used here the success rate is within 1 point of the
profile's and the P99 within 1 ms of it (the engine then truncates it to whole milliseconds, as Flagger does).
Prometheus stopped mid-run is the session's own, restarted on the same port and TSDB.
Measured on this machine: success rate 100.0 (good) and 70.15 (bad), P99 29 ms, template 0.0 and 29.86.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarylab.engine.events import CheckEvaluated, EngineEvent, EngineNotice, KubeEvent, WeightChanged
from canarylab.engine.ports import MetricsError, NoValuesFound
from canarylab.manifests import bootstrap_documents
from canarylab.prometheus import PrometheusClient
from canarylab.sim.lab import SimLab
from tests.prometheus.conftest import RealPrometheus

RPS = 50.0
"""Background requests per second on each apex Service (the lab's default 3/s makes coarse rates)."""
HEALTHY_P99_MS = 29.75
"""podinfo answers in 5-30 ms, uniform: Linkerd's 20-30 ms bucket holds the 99th percentile at 29.75 ms."""
FAULT_ERROR_RATE = 0.3

ERROR_RATE_TEMPLATE = """
100 - sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",
                              classification!="failure", direction="{{ variables.direction }}"}[{{ interval }}]))
    / sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",
                              direction="{{ variables.direction }}"}[{{ interval }}])) * 100
"""


def deployment(name: str) -> dict[str, Any]:
    """The seed's podinfo Deployment, renamed (its own ``app`` label), two replicas, no ``minReadySeconds``."""
    obj = copy.deepcopy(next(d for d in bootstrap_documents("workloads", "podinfo.yaml") if d["kind"] == "Deployment"))
    obj["metadata"] = {"name": name, "namespace": "test", "labels": {"app": name}}
    obj["spec"]["replicas"] = 2
    obj["spec"]["minReadySeconds"] = 0  # pods ready in a few seconds: shorter real-time runs
    obj["spec"]["selector"] = {"matchLabels": {"app": name}}
    obj["spec"]["template"]["metadata"]["labels"] = {"app": name}
    return obj


def canary(name: str, *, threshold: int, with_template: bool = True) -> dict[str, Any]:
    """A Canary that reaches 50 % in one step and decides within a few 10 s ticks."""
    metrics: list[dict[str, Any]] = [
        {"name": "request-success-rate", "thresholdRange": {"min": 50}, "interval": "1m"},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
    ]
    if with_template:
        metrics.append({"name": "error-rate", "templateRef": {"name": "error-rate"}, "interval": "1m",
                        "templateVariables": {"direction": "inbound"}, "thresholdRange": {"max": 5}})
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": name, "namespace": "test"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "service": {"port": 9898, "targetPort": 9898},
                 "analysis": {"interval": "10s", "threshold": threshold, "maxWeight": 50, "stepWeight": 50,
                              "metrics": metrics}},
    }  # fmt: skip


METRIC_TEMPLATE = {
    "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
    "metadata": {"name": "error-rate", "namespace": "test"},
    # the in-cluster address users write; --prometheus sends every query to the lab's Prometheus anyway
    "spec": {"provider": {"type": "prometheus", "address": "http://prometheus.linkerd-viz:9090"},
             "query": ERROR_RATE_TEMPLATE},
}  # fmt: skip


class Run:
    """A SimLab on the session's Prometheus, its events, and bounded waits on real time."""

    def __init__(self, tmp_path: Path, prometheus: RealPrometheus, objects: list[dict[str, Any]]) -> None:
        manifest = tmp_path / "lab.yaml"
        manifest.write_text(yaml.safe_dump_all(objects))
        self.lab = SimLab([str(manifest)], prometheus=prometheus.url, metrics_port=prometheus.sim_metrics_port)
        self.lab.traffic.background_rps = RPS
        self.events: list[EngineEvent] = []
        self.lab.engine.subscribe(self.events.append)

    def phase(self, name: str) -> str:
        return next((s.phase for s in self.lab.engine.canary_states() if s.name == name), "")

    async def until(self, what: str, condition: Callable[[], bool], timeout: float = 90.0) -> None:
        """Wait (real time, bounded) until ``condition()``; fail with the recent events otherwise."""
        deadline = time.monotonic() + timeout
        while not condition():
            crashed = self.lab.failed_task()
            if crashed is not None:
                raise AssertionError(f"the lab crashed while waiting for {what}") from crashed
            if time.monotonic() > deadline:
                recent = "\n".join(str(e) for e in self.events[-15:])
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last events:\n{recent}")
            await asyncio.sleep(0.2)

    def checks(self, name: str, metric: str | None = None) -> list[CheckEvaluated]:
        return [e for e in self.events if isinstance(e, CheckEvaluated) and e.name == name
                and (metric is None or e.metric == metric)]

    def warnings(self, name: str) -> list[str]:
        return [e.message for e in self.events if isinstance(e, KubeEvent) and e.name == name and e.type == "Warning"]


async def scraped_flagger_series(prometheus: RealPrometheus, wanted: dict[str, float],
                                 timeout: float = 20.0) -> dict[str, float]:
    """Poll the real Prometheus (bounded) until every query in ``wanted`` answers its value; return the answers."""
    client = PrometheusClient(prometheus.url)
    answers: dict[str, float | None] = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            for query in wanted:
                try:
                    answers[query] = await client.run_query(query)
                except (NoValuesFound, MetricsError):
                    answers[query] = None
            if answers == wanted or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await client.aclose()
    assert answers == wanted, f"Prometheus answered {answers}, expected {wanted}"
    return {k: v for k, v in answers.items() if v is not None}


@pytest.mark.timeout(240)
async def test_a_healthy_canary_is_promoted_and_a_faulty_one_rolls_back(
    tmp_path: Path, real_prometheus: RealPrometheus
) -> None:
    # Given two Canaries whose checks are answered by a real Prometheus scraping the lab
    run = Run(tmp_path, real_prometheus, [deployment("good"), deployment("bad"), METRIC_TEMPLATE,
                                          canary("good", threshold=2), canary("bad", threshold=1)])
    await run.lab.start()
    try:
        await run.until("both Canaries initialized", lambda: run.phase("good") == run.phase("bad") == "Initialized")
        # When both get a new revision, bad's a faulty one (a fault belongs to the revision it is injected into)
        await run.lab.set_image("test", "good", "podinfod", "stefanprodan/podinfo:3.1.1")
        await run.lab.set_image("test", "bad", "podinfod", "stefanprodan/podinfo:3.1.1")
        await run.lab.set_fault("test", "bad", FAULT_ERROR_RATE, 0.0)  # bad's own pods; bad-primary stays healthy
        await run.until("good promoted and bad rolled back",
                        lambda: run.phase("good") == "Succeeded" and run.phase("bad") == "Failed", timeout=150)
        # then the real Prometheus scraped the engine's own series, with Flagger's names and labels
        flagger = await scraped_flagger_series(real_prometheus, {
            'flagger_canary_successes_total{name="good", namespace="test", deployment_strategy="canary", '
            'analysis_status="completed"}': 1.0,
            'flagger_canary_failures_total{name="bad", namespace="test", deployment_strategy="canary", '
            'analysis_status="completed"}': 1.0,
            'flagger_canary_status{name="good", namespace="test"}': 1.0,
            'flagger_canary_status{name="bad", namespace="test"}': 2.0,
            'flagger_canary_weight{workload="good-primary", namespace="test"}': 100.0,
            'flagger_canary_weight{workload="bad", namespace="test"}': 0.0,
            'flagger_canary_total{namespace="test"}': 2.0,
        })
        assert flagger['flagger_canary_total{namespace="test"}'] == 2.0
    finally:
        await run.lab.stop()

    # Then the built-in checks measured what the profiles imply, through PromQL
    good_rates = [c.value for c in run.checks("good", "request-success-rate")]
    good_p99 = [c.value for c in run.checks("good", "request-duration")]
    bad_rates = [c.value for c in run.checks("bad", "request-success-rate")]
    assert good_rates and all(v is not None and abs(v - 100.0) <= 1.0 for v in good_rates), good_rates
    # (Prometheus's P99 within 1 ms of 29.75; the engine truncates it to whole milliseconds as Flagger does)
    lowest, highest = int(HEALTHY_P99_MS - 1), int(HEALTHY_P99_MS + 1)
    assert good_p99 and all(v is not None and lowest <= v <= highest for v in good_p99), good_p99
    assert bad_rates and all(v is not None and abs(v - 70.0) <= 1.0 for v in bad_rates), bad_rates
    # and the MetricTemplate with {{ variables.direction }} passed for good and failed for bad, at its threshold
    good_template = run.checks("good", "error-rate")
    bad_template = run.checks("bad", "error-rate")
    assert good_template and all(c.ok and c.value is not None and c.value <= 1.0 for c in good_template)
    assert bad_template and not bad_template[-1].ok
    # (the template's own rate() window: on a loaded machine a late scrape moves it by a point or two)
    assert bad_template[-1].value is not None and abs(bad_template[-1].value - 30.0) <= 3.0
    assert f"Halt bad.test advancement error-rate {bad_template[-1].value:.2f} > 5" in run.warnings("bad")
    assert not run.warnings("good") or all("not ready" in w for w in run.warnings("good"))


@pytest.mark.timeout(240)
async def test_prometheus_stopped_mid_run_fails_checks_then_the_run_recovers(
    tmp_path: Path, real_prometheus: RealPrometheus
) -> None:
    # Given a Canary at 50 % whose checks a real Prometheus answers (own names: no overlap with other runs)
    run = Run(tmp_path, real_prometheus, [deployment("steady"), canary("steady", threshold=5, with_template=False)])
    prom = real_prometheus.server
    await run.lab.start()
    try:
        await run.until("steady initialized", lambda: run.phase("steady") == "Initialized")
        await run.lab.set_image("test", "steady", "podinfod", "stefanprodan/podinfo:3.1.1")
        await run.until("traffic shifted to the canary", lambda: any(
            isinstance(e, WeightChanged) and e.name == "steady" and e.canary == 50 for e in run.events))
        # When Prometheus goes away
        await prom.stop()
        await run.until("a failed check", lambda: any(c.error for c in run.checks("steady")), timeout=30)
        # Then the check fails with a reason naming the Prometheus, and nothing crashed
        failed = next(c for c in run.checks("steady") if c.error)
        reason = f"cannot reach Prometheus at {prom.url}: Connection refused"
        assert (failed.ok, failed.value, failed.error) == (False, None, reason)
        assert f"Prometheus query failed: running query failed: {reason}" in run.warnings("steady")
        # When it comes back on the same port and data
        await prom.start()
        # Then the next analysis passes its checks again, and the engine says once that the provider is back
        await run.until("a passing check after the outage", lambda: run.checks("steady")[-1].ok, timeout=30)
        await run.until("the engine's notice", lambda: any(
            isinstance(e, EngineNotice) and e.name == "steady" for e in run.events), timeout=5)
        assert run.lab.failed_task() is None
    finally:
        await run.lab.stop()
        await prom.start()  # idempotent: the next test finds it running whatever happened here
    notices = [e.message for e in run.events if isinstance(e, EngineNotice) and "answers again" in e.message]
    assert notices == ["the metrics provider answers again"]
    assert run.phase("steady") in ("Progressing", "Promoting", "Finalising", "Succeeded")
