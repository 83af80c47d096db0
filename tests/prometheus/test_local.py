"""LocalPrometheus and connect(): the real ``prometheus`` binary on 127.0.0.1, and the errors around it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from canarylab.errors import UserError
from canarylab.prometheus import LocalPrometheus, PrometheusClient, connect
from canarylab.prometheus.local import MISSING_BINARY
from tests.prometheus.conftest import RealPrometheus, eventually_value

SUCCESS_RATE = """
sum(rate(response_total{namespace="expo", deployment=~"podinfo", classification!="failure", direction="inbound"}[1m]))
/
sum(rate(response_total{namespace="expo", deployment=~"podinfo", direction="inbound"}[1m]))
* 100
"""
P99 = """
histogram_quantile(0.99, sum(rate(
  response_latency_ms_bucket{namespace="expo", deployment=~"podinfo", direction="inbound"}[1m]
)) by (le))
"""


async def test_a_missing_binary_is_a_clear_user_error() -> None:
    with pytest.raises(UserError) as err:
        async with LocalPrometheus(["127.0.0.1:9102"], binary="no-such-prometheus"):
            pass
    assert str(err.value) == MISSING_BINARY
    assert "install the Debian package prometheus" in str(err.value)
    assert "--prometheus URL" in str(err.value)


async def test_a_binary_that_exits_early_shows_its_last_log_lines(tmp_path: Path) -> None:
    fake = tmp_path / "prometheus"
    fake.write_text('#!/bin/sh\necho "level=error msg=\\"Error loading config\\" err=\\"bad scrape_configs\\"" >&2\n'
                    "exit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    prom = LocalPrometheus(["127.0.0.1:9102"], binary=str(fake))
    with pytest.raises(UserError) as err:
        async with prom:
            pass
    assert "prometheus exited with code 1 before it was ready" in str(err.value)
    assert 'err="bad scrape_configs"' in str(err.value)
    assert prom.workdir is None  # the temporary TSDB directory is gone


@pytest.mark.parametrize("target", ["localhost", "http://127.0.0.1:9102", "127.0.0.1:http", ":9102"])
def test_scrape_targets_must_be_host_and_port(target: str) -> None:
    with pytest.raises(UserError, match=r"is not host:port \(e\.g\. 127\.0\.0\.1:9102\)"):
        LocalPrometheus([target])


@pytest.mark.parametrize("spec", ["prometheus:9090", "ftp://127.0.0.1:9090", "http://", "http://h:99999",
                                  "http://127.0.0.1:9090/?x=1"])
async def test_connect_rejects_what_is_not_a_prometheus_url(spec: str) -> None:
    with pytest.raises(UserError, match=r"--prometheus: expected 'local' or a URL like http://127\.0\.0\.1:9090"):
        async with connect(spec, None):
            pass


async def test_connect_local_needs_something_to_scrape() -> None:
    with pytest.raises(UserError, match="--metrics-port"):
        async with connect("local", None):
            pass


async def test_connect_to_a_url_answers_from_that_prometheus(real_prometheus: RealPrometheus) -> None:
    async with connect(real_prometheus.url + "/", None) as metrics:
        assert await metrics.is_online(None)


async def test_connect_local_starts_and_stops_its_own_prometheus() -> None:
    from tests.prometheus.conftest import require_prometheus

    require_prometheus()
    async with connect("local", "127.0.0.1:9") as metrics:
        assert isinstance(metrics, PrometheusClient)
        assert await metrics.is_online(None)
        address = metrics.address
    async with PrometheusClient(address) as after:
        assert not await after.is_online(None)  # stopped on exit


async def test_linkerd_queries_over_real_scrapes_give_exact_answers(real_prometheus: RealPrometheus) -> None:
    # Given Linkerd-proxy counters scraped every second, whose shares are known exactly
    async with PrometheusClient(real_prometheus.url) as client:
        # When the engine asks Flagger's two questions (the canary only: the primary's 50 % must not count)
        success_rate = await eventually_value(client, SUCCESS_RATE)
        p99 = await eventually_value(client, P99)
    # Then the answers are the profile's, to float precision
    assert success_rate == pytest.approx(real_prometheus.exposition.success_rate, abs=1e-9)
    assert p99 == pytest.approx(real_prometheus.exposition.p99_ms, abs=1e-9)


async def test_a_restarted_prometheus_keeps_port_and_data(real_prometheus: RealPrometheus) -> None:
    prom = real_prometheus.server
    async with PrometheusClient(prom.url) as client:
        before = await eventually_value(client, "sum(count_over_time(up[1h]))")
        port = prom.port
        await prom.stop()
        assert not await client.is_online(None)
        await prom.start()
        assert prom.port == port and await client.is_online(None)
        # samples from before the restart are still there (same TSDB)
        assert await eventually_value(client, "sum(count_over_time(up[1h]))") >= before
