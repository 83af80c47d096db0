"""Linkerd metrics of the simulated lab: the evaluator answers like Prometheus, the text format is served."""

from __future__ import annotations

import asyncio
import math
import re
import socket

import httpx
import pytest

from canarylab.cli import main
from canarylab.engine.clock import run_virtual
from canarylab.engine.ports import MetricQuery, MetricsError, NoValuesFound
from canarylab.sim.lab import SimLab
from canarylab.sim.metrics import LINKERD_BUCKETS_MS, LinkerdMetrics, SimMetrics, histogram_quantile
from canarylab.sim.workloads import HEALTHY, Behaviour, LatencyProfile


def query(builtin: str | None, target: str = "podinfo", interval: float = 60) -> MetricQuery:
    return MetricQuery(metric=builtin or "custom", query="sum(rate(x[1m]))", namespace="test", target=target,
                       interval="1m", interval_seconds=interval, builtin=builtin)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # 100 observations: 50 in (0, 1], 50 in (1, 2]
    buckets = [(1.0, 50.0), (2.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == 1.0
    assert histogram_quantile(0.75, buckets) == 1.5
    assert histogram_quantile(0.99, [(1.0, 50.0), (2.0, 90.0), (math.inf, 100.0)]) == 2.0  # in +Inf: the last bound
    assert math.isnan(histogram_quantile(0.99, [(1.0, 0.0), (math.inf, 0.0)]))


def test_builtin_checks_read_the_window_of_the_target_deployment_only() -> None:
    store = LinkerdMetrics()
    store.add_pod("test", "podinfo", "podinfo-a", "h1")
    store.add_pod("test", "podinfo-primary", "podinfo-primary-a", "h2")
    for second in range(1, 121):
        failing = Behaviour(0.25 if second > 60 else 0.0, HEALTHY.latency)
        store.record("test", "podinfo-a", 10, failing, float(second))
        store.record("test", "podinfo-primary-a", 10, Behaviour(0.9, LatencyProfile(900, 950)), float(second))
    metrics = SimMetrics(store, lambda: 120.0)
    # The last minute only: 25% errors; the primary's errors and latency do not count (deployment=~"podinfo")
    assert asyncio.run(metrics.query(query("request-success-rate"))) == pytest.approx(75.0)
    assert asyncio.run(metrics.query(query("request-success-rate", interval=120))) == pytest.approx(87.5)
    # Uniform 5-30 ms: the 20-30 ms bucket holds the P99, interpolated to 29.75 ms
    assert asyncio.run(metrics.query(query("request-duration"))) == pytest.approx(29.75)


def test_no_traffic_is_no_values_and_promql_needs_prometheus() -> None:
    metrics = SimMetrics(LinkerdMetrics(), lambda: 100.0)
    with pytest.raises(NoValuesFound):
        asyncio.run(metrics.query(query("request-success-rate")))
    with pytest.raises(NoValuesFound):
        asyncio.run(metrics.query(query("request-duration")))
    with pytest.raises(MetricsError, match="--prometheus"):
        asyncio.run(metrics.query(query(None)))


SAMPLE = re.compile(r'^[a-z_]+\{([a-z_]+="[^"]*",)*[a-z_]+="[^"]*"\} -?\d+(\.\d+)?(e[+-]?\d+)?$')
"""A sample line; values are integers for the proxies' counters, decimals for the engine's own series."""


def test_metrics_are_served_in_prometheus_text_format_on_loopback() -> None:
    pages: list[httpx.Response] = []

    async def scenario() -> None:
        lab = SimLab(metrics_port=0)
        await lab.start()
        try:
            await asyncio.sleep(60)
            assert lab.metrics_server is not None
            url = f"http://127.0.0.1:{lab.metrics_server.port}/metrics"
            pages.append(await asyncio.to_thread(httpx.get, url, timeout=5))
            await asyncio.sleep(30)
            pages.append(await asyncio.to_thread(httpx.get, url, timeout=5))
        finally:
            await lab.stop()

    run_virtual(scenario())
    first, second = pages
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = first.text.splitlines()
    assert "# TYPE response_total counter" in lines and "# TYPE response_latency_ms histogram" in lines
    samples = [line for line in lines if not line.startswith("#")]
    assert samples and all(SAMPLE.match(line) for line in samples), [s for s in samples if not SAMPLE.match(s)][:3]
    primary = [s for s in samples if s.startswith("response_total{") and 'deployment="podinfo-primary"' in s]
    assert primary and all('direction="inbound"' in s and 'classification="success"' in s
                           and 'status_code="200"' in s and 'namespace="test"' in s for s in primary)
    bounds = {m for s in samples if 'deployment="podinfo-primary"' in s for m in re.findall(r'le="([^"]+)"', s)}
    assert bounds == {*(str(int(b)) for b in LINKERD_BUCKETS_MS), "+Inf"}

    def total(page: httpx.Response) -> int:
        return sum(int(s.rsplit(" ", 1)[1]) for s in page.text.splitlines()
                   if s.startswith("response_total{") and 'deployment="podinfo-primary"' in s)

    assert total(second) > total(first)  # counters grow with the traffic


def test_a_busy_metrics_port_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["simulate", "--metrics-port", str(port)])
    assert code == 2
    assert f"--metrics-port {port}" in capsys.readouterr().err
