"""The simulated data plane of the Docker-free lab, attached to a real API server.

One object, :class:`AttachedDataPlane`, wires what :class:`~canarylab.sim.lab.SimLab` wires for the embedded
lab, minus the cluster and the engine: a :class:`~canarylab.sim.attached.ClusterView` of the real cluster, the
traffic model on it (background users on every Canary's apex Service, ``hey`` loads, one slice a second), the
Linkerd metrics of every pod served on 127.0.0.1 for a real Prometheus to scrape, the loadtester, and the
:class:`~canarylab.sim.gateway.Gateway` through which the engine reaches them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from canarylab.engine.clock import LoopClock
from canarylab.engine.ports import Cluster
from canarylab.engine.tasks import cancel_all, failed_task
from canarylab.sim.attached import ClusterView
from canarylab.sim.gateway import Gateway
from canarylab.sim.metrics import LinkerdMetrics
from canarylab.sim.metrics_server import MetricsServer
from canarylab.sim.traffic import SLICE_SECONDS, Traffic
from canarylab.sim.webhooks import SimWebhooks


class AttachedDataPlane:
    """Traffic, Linkerd metrics and the loadtester for the pods of a real cluster.

    ``metrics_port`` and ``gateway_port`` are 127.0.0.1 ports (``0``: free ones, read back from
    :attr:`metrics_target` and :attr:`gateway_url` after :meth:`start`).
    """

    def __init__(self, cluster: Cluster, *, metrics_port: int = 0, gateway_port: int = 0) -> None:
        self.clock = LoopClock(1.0)
        self.view = ClusterView(cluster, self.clock)
        self.store = LinkerdMetrics()
        self.traffic = Traffic(self.view, self.store)
        self.webhooks = SimWebhooks(self.traffic, self.clock)
        self.metrics_server = MetricsServer(self.store, metrics_port)
        self.gateway = Gateway(self.traffic, self.webhooks, port=gateway_port)
        self.view.pod_listeners.append(self.store.pod_changed)
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def metrics_target(self) -> str:
        """``127.0.0.1:PORT`` of the Linkerd metrics, for Prometheus' scrape config."""
        return self.metrics_server.target

    @property
    def gateway_url(self) -> str:
        """``http://127.0.0.1:PORT``: the lab's Services, by service-proxy path."""
        return self.gateway.url

    def forward(self, namespace: str, service: str, port: int, url: str) -> None:
        """Send requests for ``service.namespace:port`` to the real server at ``url`` (the lab's Prometheus)."""
        self.gateway.forwards[(namespace, service, port)] = url

    async def start(self) -> None:
        """Serve the metrics and the gateway, and start following the cluster and sending traffic."""
        self.clock.now()  # pin the clock to this loop
        self.metrics_server.start()
        try:
            await self.gateway.start()
        except BaseException:
            self.metrics_server.stop()
            raise
        self._tasks = [asyncio.create_task(self.view.run(), name="dataplane-view"),
                       asyncio.create_task(self._traffic_loop(), name="dataplane-traffic")]

    async def stop(self) -> None:
        """Stop everything :meth:`start` started; never raises."""
        await cancel_all(self._tasks)
        self._tasks = []
        await self.gateway.stop()
        with contextlib.suppress(Exception):
            await self.webhooks.aclose()
        with contextlib.suppress(Exception):
            self.metrics_server.stop()

    def failed_task(self) -> BaseException | None:
        """The error of a background task that died, if any."""
        return failed_task(self._tasks)

    async def _traffic_loop(self) -> None:
        while True:
            await self.clock.sleep(SLICE_SECONDS)
            self.traffic.step(self.clock.now())

