"""Bench: how fast a local Prometheus starts, and how long Flagger's Linkerd queries take through PrometheusClient.

Prints: time to ``/-/ready``, time to the first ``rate()`` answer with 1 s scrapes, restart time, and the
latency of the built-in success-rate query (median, p95, max over N queries). Needs the prometheus binary.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from canarylab.engine.ports import MetricsError, NoValuesFound
from canarylab.prometheus import LocalPrometheus, PrometheusClient, prometheus_available
from tests.prometheus.servers import LinkerdExposition, exposition_server

QUERIES = 200
SUCCESS_RATE = """
sum(rate(response_total{namespace="expo", deployment=~"podinfo", classification!="failure", direction="inbound"}[1m]))
/ sum(rate(response_total{namespace="expo", deployment=~"podinfo", direction="inbound"}[1m])) * 100
"""


async def main() -> None:
    exposition = LinkerdExposition()
    with exposition_server(exposition) as target:
        started = time.monotonic()
        async with LocalPrometheus([target]) as prom, PrometheusClient(prom.url) as client:
            ready = time.monotonic() - started
            while True:
                try:
                    await client.run_query(SUCCESS_RATE)
                    break
                except (NoValuesFound, MetricsError):
                    await asyncio.sleep(0.1)
            first_rate = time.monotonic() - started
            latencies = []
            for _ in range(QUERIES):
                t = time.perf_counter()
                await client.run_query(SUCCESS_RATE)
                latencies.append((time.perf_counter() - t) * 1000)
            t = time.monotonic()
            await prom.stop()
            await prom.start()
            restart = time.monotonic() - t
    latencies.sort()
    print(f"prometheus ready after          {ready:6.2f} s")
    print(f"first rate() answer after       {first_rate:6.2f} s  (1 s scrape interval)")
    print(f"stop + start on same port/TSDB  {restart:6.2f} s")
    print(f"success-rate query latency      median {statistics.median(latencies):.2f} ms, "
          f"p95 {latencies[int(len(latencies) * 0.95)]:.2f} ms, max {latencies[-1]:.2f} ms  ({QUERIES} queries)")


if __name__ == "__main__":
    if not prometheus_available():
        print("prometheus binary not on PATH: skipped")
        sys.exit(0)
    asyncio.run(main())
