"""A real cluster as a :class:`canarylab.session.Lab`: kr8s behind the Cluster port, the engine on the host.

:class:`KubeLab` resolves the kube context under canarylab's safety rule (:mod:`canarylab.kube.config`),
connects (optionally waiting for the API server), reaches in-cluster webhooks and Prometheus through the API
server's service proxy unless ``in_cluster``, and runs the engine in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import httpx

from canarylab.engine.alerts import Alerts
from canarylab.engine.clock import LoopClock
from canarylab.engine.kinds import DAEMON_SET, DEPLOYMENT, NAMESPACE
from canarylab.engine.ports import ClusterError, Conflict, Metrics, NotFound, Webhooks
from canarylab.engine.tasks import failed_task
from canarylab.errors import UserError
from canarylab.kube import config
from canarylab.kube.cluster import KubeCluster, Log, log_to_logger
from canarylab.kube.proxy import ServiceProxy, api_client

if TYPE_CHECKING:
    from canarylab.engine.controller import Engine
    from canarylab.session import FaultInfo

T = TypeVar("T")

DEFAULT_METRICS_SERVER = "http://prometheus.linkerd-viz:9090"
"""Flagger's ``-metrics-server`` in the Linkerd install (flagger-spec 4.3)."""


class KubeLab:
    """The engine on a real cluster. ``supports_faults`` is ``False``: faults are the simulator's.

    ``context``: the kube context (``None``: the lab's ``kind-canarylab``, only if canarylab created it).
    ``namespaces``: only act on Canaries there (required on contexts canarylab did not create, unless
    ``readonly``). ``wait``: keep retrying an unreachable API server instead of failing. ``metrics`` and
    ``webhooks`` replace the Prometheus client and the HTTP webhooks (tests). ``log`` receives one line per
    write and connection notices.
    """

    supports_faults = False

    def __init__(self, context: str | None, namespaces: Sequence[str], *, readonly: bool = False,
                 in_cluster: bool = False, kubeconfig: str | None = None, wait: bool = False,
                 metrics_server: str = DEFAULT_METRICS_SERVER, metrics: Metrics | None = None,
                 webhooks: Webhooks | None = None, log: Log | None = None, speed: float = 1.0,
                 alerts: Alerts | None = None, serviceaccount_dir: str | None = None,
                 mesh_provider: str = "linkerd") -> None:
        self.context = context
        self.namespaces = list(dict.fromkeys(namespaces))
        self.readonly = readonly
        self.in_cluster = in_cluster
        self.kubeconfig = kubeconfig
        self.wait = wait
        self.metrics_server = metrics_server
        self.serviceaccount_dir = serviceaccount_dir
        self.mesh_provider = mesh_provider
        self.target: config.Target | None = None
        self.log: Log = log or log_to_logger
        self.clock = LoopClock(speed)
        self.title = f"context {context}" if context else f"context {config.LAB_CONTEXT}"
        self._metrics = metrics
        self._webhooks = webhooks
        self._alerts = alerts
        self._engine: Engine | None = None
        self._cluster: KubeCluster | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._owned: list[object] = []  # clients this lab made and must close
        self._gateway: str | None = None

    @property
    def engine(self) -> Engine:
        """The engine (after :meth:`start`)."""
        if self._engine is None:
            raise RuntimeError("KubeLab.start() has not run")
        return self._engine

    @property
    def cluster(self) -> KubeCluster:
        """The kr8s-backed cluster (after :meth:`start`)."""
        if self._cluster is None:
            raise RuntimeError("KubeLab.start() has not run")
        return self._cluster

    async def connect(self) -> KubeCluster:
        """Resolve the context under the safety rule and connect; returns the cluster."""
        target = self.target = config.resolve(self.context, self.kubeconfig, self.serviceaccount_dir)
        config.check_namespaces(target, self.namespaces, self.readonly)
        account = target.service_account
        name = account.title if account else f"context {target.context}"
        self.title = name + (" (read-only)" if self.readonly else "")
        if account is not None:
            # In a pod, cluster DNS resolves webhook and Prometheus URLs: call them directly.
            self.in_cluster = True
            self.log(f"logged in as {account.title} at {account.server} (no kubeconfig; token and CA from "
                     f"{account.dir})")
        # On the lab's own cluster (or in the cluster, under RBAC) the engine may act everywhere; elsewhere
        # only where the user said.
        allowed = self.namespaces or None
        self._gateway = target.gateway
        self._cluster = await KubeCluster.connect(
            target.context, kubeconfig=target.kubeconfig, server=target.server, wait=self.wait, log=self.log,
            clock=self.clock, namespaces=allowed, readonly=self.readonly,
            serviceaccount=str(account.dir) if account else None)
        return self._cluster

    async def start(self) -> None:
        """Connect, wire metrics and webhooks (through the service proxy unless in-cluster), start the engine."""
        from canarylab.engine.alerts import HttpAlerts
        from canarylab.engine.controller import Engine

        cluster = self._cluster or await self.connect()
        metrics, webhooks = await self._wire(cluster)
        self._engine = Engine(cluster, metrics, webhooks, self.clock, namespaces=self.namespaces or None,
                              readonly=self.readonly, metrics_server=self.metrics_server,
                              alerts=self._alerts or HttpAlerts(), mesh_provider=self.mesh_provider)
        self._task = asyncio.create_task(self._engine.run(), name="canarylab-engine")

    async def _wire(self, cluster: KubeCluster) -> tuple[Metrics, Webhooks]:
        from canarylab.engine.webhooks import HttpWebhooks
        from canarylab.prometheus.client import PrometheusClient

        if self.in_cluster:
            metrics = self._metrics or self._own(PrometheusClient(self.metrics_server))
            return metrics, self._webhooks or self._own(HttpWebhooks())
        if self._gateway:
            # The Docker-free lab: its Services' pods run nowhere, so the API server cannot proxy to them; the
            # simulated data plane answers the same service-proxy paths on its own loopback port. No cluster
            # credentials go there: a plain client.
            proxy = ServiceProxy(self._gateway, await self._namespaces(cluster))
            self._client = httpx.AsyncClient(timeout=30.0, follow_redirects=False)
        else:
            proxy = ServiceProxy(cluster.server, await self._namespaces(cluster))
            self._client = await api_client(cluster.api)
        metrics = self._metrics or self._own(PrometheusClient(self.metrics_server, client=self._client,
                                                              rewrite_url=proxy.rewrite))
        webhooks = self._webhooks or self._own(HttpWebhooks(self._client, rewrite_url=proxy.rewrite))
        return metrics, webhooks

    def _own(self, resource: T) -> T:
        self._owned.append(resource)
        return resource

    async def _namespaces(self, cluster: KubeCluster) -> set[str] | None:
        """The cluster's namespaces, so ``svc.ns`` URLs are told from ``example.com``; ``None`` if unlistable."""
        try:
            found = {ns["metadata"]["name"] for ns in await cluster.list(NAMESPACE)}
        except ClusterError:
            return None
        return found | set(self.namespaces)

    async def join(self) -> None:
        """Wait until the engine stops: cancelled (Ctrl-C) or failed (its error is raised here)."""
        if self._task is not None:
            await self._task

    def failed_task(self) -> BaseException | None:
        """The engine's error when its task died (as :meth:`SimLab.failed_task`), else ``None``; a cancelled or
        running engine has none. The dashboard polls it to say "the engine stopped" instead of freezing."""
        return failed_task([self._task])

    async def stop(self) -> None:
        """Stop the engine and close the HTTP clients; never raises."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None
        for resource in self._owned:
            close = getattr(resource, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def set_image(self, namespace: str, deployment: str, container: str, image: str) -> None:
        """``kubectl set image deployment/<deployment> <container>=<image>`` (read, change, replace)."""
        for _ in range(5):
            obj = await self.cluster.get(DEPLOYMENT, namespace, deployment) \
                or await self.cluster.get(DAEMON_SET, namespace, deployment)
            if obj is None:
                raise UserError(f"deployment {namespace}/{deployment} not found on {self.title}")
            containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
            match = [c for c in containers if c.get("name") == container]
            if not match:
                names = ", ".join(c.get("name", "?") for c in containers) or "none"
                raise UserError(f"deployment {namespace}/{deployment} has no container {container!r} "
                                f"(containers: {names})")
            match[0]["image"] = image
            try:
                await self.cluster.replace(obj)  # carries the resourceVersion read above
                return
            except Conflict:
                continue  # someone (the HPA, Flagger) wrote in between: read again
            except NotFound:
                raise UserError(f"deployment {namespace}/{deployment} was deleted") from None
        raise UserError(f"deployment {namespace}/{deployment} kept changing; try again")

    async def set_fault(self, namespace: str, deployment: str, error_rate: float, latency_ms: float) -> None:
        """Not on a real cluster: faults are injected by the simulated lab only."""
        raise UserError("fault injection needs the simulated lab (`canarylab demo`); on a real cluster deploy "
                        "a faulty image instead, e.g. podinfo with --random-error")

    async def clear_fault(self, namespace: str, deployment: str) -> None:
        """Not on a real cluster (see :meth:`set_fault`)."""
        raise UserError("fault injection needs the simulated lab (`canarylab demo`)")

    def fault(self, namespace: str, deployment: str) -> FaultInfo | None:
        """No injected faults on a real cluster."""
        return None
