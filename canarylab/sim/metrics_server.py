"""``--metrics-port``: the simulated Linkerd metrics over real HTTP on 127.0.0.1, for a real Prometheus.

The same endpoint serves the engine's own series (Flagger's ``flagger_canary_*``) beside the proxies' ones,
as a lab where Flagger runs would let one Prometheus scrape both.
"""

from __future__ import annotations

from collections.abc import Sequence

from canarylab.metrics_endpoint import CONTENT_TYPE, MetricsEndpoint, Source
from canarylab.sim.metrics import LinkerdMetrics

__all__ = ["CONTENT_TYPE", "MetricsServer"]


class MetricsServer(MetricsEndpoint):
    """Serves ``GET /metrics`` (Prometheus text format) from a :class:`LinkerdMetrics` on ``127.0.0.1:port``."""

    def __init__(self, store: LinkerdMetrics, port: int, extra: Sequence[Source] = ()) -> None:
        self.store = store
        super().__init__("127.0.0.1", port, [store.exposition, *extra], flag=f"--metrics-port {port}")
