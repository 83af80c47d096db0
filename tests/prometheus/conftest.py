"""Fixtures: a recording HTTP server for the client, and ONE real Prometheus per test session.

The real Prometheus scrapes, every second, an exposition server with known answers and the port reserved
for the simulated lab's metrics endpoint. When the ``prometheus`` binary is missing the tests that need it
skip, unless ``CANARYLAB_REQUIRE_PROMETHEUS=1`` (CI), where they fail with the reason.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from canarylab.engine.ports import MetricsError, NoValuesFound
from canarylab.prometheus import LocalPrometheus, PrometheusClient, free_port, prometheus_available
from tests.prometheus.servers import LinkerdExposition, RecordingServer, exposition_server, recording_server


@pytest.fixture
def api() -> Iterator[RecordingServer]:
    """A fake Prometheus API on 127.0.0.1 that answers what the test sets and records what it received."""
    with recording_server() as server:
        yield server


@dataclass
class RealPrometheus:
    """The session's Prometheus and what it scrapes."""

    server: LocalPrometheus
    exposition: LinkerdExposition
    sim_metrics_port: int
    """Reserved for a simulated lab's ``metrics_port``: Prometheus scrapes it from the start."""

    @property
    def url(self) -> str:
        return self.server.url


def require_prometheus() -> None:
    """Skip (or, under CANARYLAB_REQUIRE_PROMETHEUS=1, fail) when the prometheus binary is missing."""
    if prometheus_available():
        return
    if os.environ.get("CANARYLAB_REQUIRE_PROMETHEUS") == "1":
        pytest.fail("CANARYLAB_REQUIRE_PROMETHEUS=1 but the prometheus binary is not on PATH: "
                    "apt-get install prometheus (.ci/run does it)")
    pytest.skip("the prometheus binary is not on PATH (apt-get install prometheus)")


@pytest.fixture(scope="session")
def real_prometheus() -> Iterator[RealPrometheus]:
    """One real Prometheus for the whole session (it needs a few seconds of scrapes before rate() answers)."""
    require_prometheus()
    exposition = LinkerdExposition()
    sim_port = free_port()
    with exposition_server(exposition) as target:
        server = LocalPrometheus([target, f"127.0.0.1:{sim_port}"])
        # LocalPrometheus keeps no event-loop state, so each step may run on its own loop.
        asyncio.run(server.start())
        try:
            yield RealPrometheus(server, exposition, sim_port)
        finally:
            asyncio.run(server.close())


async def eventually_value(client: PrometheusClient, query: str, timeout: float = 20.0) -> float:
    """The query's value once Prometheus has enough samples for it (bounded: ``timeout`` real seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.run_query(query)
        except (NoValuesFound, MetricsError):
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.25)
