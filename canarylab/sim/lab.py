"""``SimLab``: the simulated lab with its engine, as the dashboard and ``canarylab simulate`` drive it.

One process holds everything: the simulated cluster (:mod:`canarylab.sim.cluster`), the traffic and its
Linkerd metrics, the loadtester, and the same :class:`~canarylab.engine.controller.Engine` that runs
against a real cluster. ``speed=None`` runs on virtual time (only under
:class:`~canarylab.engine.clock.VirtualTimeLoop`); a speed runs that many times real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar

from canarylab import __version__
from canarylab.engine.alerts import HttpAlerts, NoAlerts
from canarylab.engine.clock import LoopClock, VirtualTimeLoop, stop_if_cancelled
from canarylab.engine.controller import Engine
from canarylab.engine.flagger_metrics import FlaggerMetrics
from canarylab.engine.kinds import DAEMON_SET, DEPLOYMENT, Obj
from canarylab.engine.ports import MetricQuery, Metrics, NotFound
from canarylab.engine.tasks import cancel_all, failed_task
from canarylab.errors import UserError
from canarylab.session import FaultInfo
from canarylab.sim.cluster import SimCluster
from canarylab.sim.inputs import lab_objects
from canarylab.sim.metrics import LinkerdMetrics, SimMetrics
from canarylab.sim.metrics_server import MetricsServer
from canarylab.sim.traffic import SLICE_SECONDS, Traffic
from canarylab.sim.webhooks import SimWebhooks
from canarylab.sim.workloads import FAULT_PRESETS, Fault


class _MetricsSwitch:
    """The engine's Metrics port: the in-process evaluator, or a Prometheus once :meth:`SimLab.start` connects."""

    def __init__(self, sim: SimMetrics) -> None:
        self.provider: Metrics = sim

    async def query(self, q: MetricQuery) -> float:
        return await self.provider.query(q)

    async def is_online(self, address: str | None) -> bool:
        return await self.provider.is_online(address)


class SimLab:
    """The simulated lab (implements :class:`canarylab.session.Lab`)."""

    title = "simulated lab"
    supports_faults = True
    fault_presets: ClassVar[dict[str, tuple[float, float]]] = dict(FAULT_PRESETS)
    """Faults the dashboard offers by name: ``(error_rate, latency_ms)``."""

    def __init__(self, files: Sequence[str] = (), *, speed: float | None = None, prometheus: str | None = None,
                 metrics_port: int | None = None, readonly: bool = False,
                 objects: Sequence[Obj] | None = None, send_alerts: bool = False, validate: str = "strict") -> None:
        self.warnings: list[str] = []
        """What ``--validate=warn`` let through (unknown or duplicate fields), one line each."""
        self.objects: list[Obj] = list(objects) if objects is not None else \
            lab_objects(files, validate=validate, warnings=self.warnings)
        if prometheus is not None and speed is None:
            speed = 1.0  # a real Prometheus scrapes and evaluates windows in real time
        self.speed = speed
        self.prometheus = prometheus
        self.metrics_port = metrics_port
        self.readonly = readonly
        self.clock = LoopClock(speed or 1.0)
        self.cluster = SimCluster(self.clock)
        self.store = LinkerdMetrics()
        self.traffic = Traffic(self.cluster, self.store)
        self.webhooks = SimWebhooks(self.traffic, self.clock)
        self.sim_metrics = SimMetrics(self.store, self.clock.now)
        self._metrics = _MetricsSwitch(self.sim_metrics)
        # With --prometheus URL the engine names that server in its provider messages, not an in-cluster one.
        # The simulated lab has no other Flagger to follow: its engine always acts. ``readonly`` is for the UI
        # (it hides every key that changes anything), and the user actions below refuse to run.
        # analysis.alerts are computed and reported; posted to their providers only with --send-alerts
        self.engine = Engine(self.cluster, self._metrics, self.webhooks, self.clock,
                             alerts=HttpAlerts() if send_alerts else NoAlerts())
        self.flagger_metrics = FlaggerMetrics(self.engine.facts, version=__version__, mesh_provider="linkerd")
        self.engine.subscribe(self.flagger_metrics.record)
        if prometheus is not None and prometheus != "local":
            self.engine.metrics_server = prometheus
        self.metrics_server: MetricsServer | None = None
        self.started_at: float | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stack = contextlib.AsyncExitStack()
        self.cluster.pod_listeners.append(self.store.pod_changed)

    # ---------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load the objects, start the controllers, the traffic, the metrics endpoint and the engine."""
        loop = asyncio.get_running_loop()
        if self.speed is None and not isinstance(loop, VirtualTimeLoop):
            raise RuntimeError("SimLab(speed=None) runs on virtual time: run it under VirtualTimeLoop "
                               "(canarylab.engine.clock.run_virtual), or give a speed")
        self.clock.now()  # pin the clock to this loop: lab time starts now
        self.started_at = self.clock.now()
        try:
            if self.metrics_port is not None or self.prometheus == "local":
                self.metrics_server = MetricsServer(self.store, self.metrics_port or 0,
                                                    [self.flagger_metrics.exposition])
                self.metrics_server.start()
            if self.prometheus is not None:
                from canarylab.prometheus import connect

                target = self.metrics_server.target if self.metrics_server else None
                self._metrics.provider = await self._stack.enter_async_context(connect(self.prometheus, target))
                address = getattr(self._metrics.provider, "address", None)
                if isinstance(address, str):
                    self.engine.metrics_server = address
            self.cluster.load(self.objects)
        except BaseException:
            await self.stop()
            raise
        self._tasks = [
            asyncio.create_task(self.cluster.run(), name="sim-controllers"),
            asyncio.create_task(self._traffic_loop(), name="sim-traffic"),
            asyncio.create_task(self.engine.run(), name="engine"),
        ]

    async def stop(self) -> None:
        """Stop the engine, the controllers, the metrics endpoint and any Prometheus; never raises."""
        await cancel_all(self._tasks)
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._stack.aclose()
        with contextlib.suppress(Exception):
            await self.webhooks.aclose()
        if self.metrics_server is not None:
            with contextlib.suppress(Exception):
                self.metrics_server.stop()
            self.metrics_server = None

    def elapsed(self) -> float:
        """Lab seconds since :meth:`start`."""
        return 0.0 if self.started_at is None else self.clock.now() - self.started_at

    def failed_task(self) -> BaseException | None:
        """The error of a background task that died (the engine or a controller), if any."""
        return failed_task(self._tasks)

    async def _traffic_loop(self) -> None:
        while True:
            stop_if_cancelled()
            await self.clock.sleep(SLICE_SECONDS)
            self.cluster.run_due()
            self.traffic.step(self.clock.now())


    # ---------------------------------------------------------------------------------- user actions

    async def set_image(self, namespace: str, deployment: str, container: str, image: str) -> None:
        """``kubectl set image deployment/<deployment> <container>=<image>`` (or ``daemonset/<name>``: the
        Deployment of that name, else the DaemonSet)."""
        self._writable()
        kind = DEPLOYMENT
        obj = self.cluster.get_now(DEPLOYMENT, namespace, deployment)
        if obj is None:
            kind, obj = DAEMON_SET, self.cluster.get_now(DAEMON_SET, namespace, deployment)
        if obj is None:
            raise NotFound(f'deployments "{deployment}" not found in namespace "{namespace}"')
        containers = obj["spec"]["template"]["spec"]["containers"]
        names = [c.get("name") for c in containers]
        if container not in names:
            raise UserError(f"{kind.kind} {deployment}.{namespace} has no container {container!r} "
                            f"(it has {', '.join(map(str, names))}).")
        for c in containers:
            if c.get("name") == container:
                c["image"] = image
        await self.cluster.patch(kind, namespace, deployment,
                                 {"spec": {"template": {"spec": {"containers": containers}}}})

    async def set_fault(self, namespace: str, deployment: str, error_rate: float, latency_ms: float,
                        never_ready: bool = False) -> None:
        """Make the Deployment's pods answer ``error_rate`` of requests with 500 and add ``latency_ms``."""
        self._writable()
        if not 0 <= error_rate <= 1:
            raise ValueError(f"error_rate must be between 0 and 1 (got {error_rate})")
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0 (got {latency_ms})")
        self.cluster.set_fault(namespace, deployment, Fault(error_rate, latency_ms, never_ready))

    async def clear_fault(self, namespace: str, deployment: str) -> None:
        """Remove an injected fault."""
        self._writable()
        self.cluster.clear_fault(namespace, deployment)

    def fault(self, namespace: str, deployment: str) -> FaultInfo | None:
        """The active fault on the Deployment, or the last one a new revision left behind."""
        injected = self.cluster.faults.get((namespace, deployment)) or self.cluster.left_faults.get(
            (namespace, deployment))
        if injected is None:
            return None
        f = injected.fault
        return FaultInfo(namespace, deployment, f.error_rate, f.latency_ms, f.never_ready, injected.image,
                         injected.since, injected.replaced_by, injected.replaced_at)

    def _writable(self) -> None:
        if self.readonly:
            raise UserError("the lab is read-only (--readonly): it changes nothing")
