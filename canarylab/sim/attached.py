"""The simulated data plane attached to a real cluster: where traffic can go, read from an API server.

In the Docker-free lab the pods are real Kubernetes objects (KWOK plays their kubelet and marks them Ready),
but nothing runs in them. canarylab's traffic model, Linkerd metrics and loadtester play the data plane, and
:class:`ClusterView` tells them what a Linkerd proxy would know: the Services and their selectors, the
TrafficSplit/HTTPRoute weights, the Canaries (whose apex Services get background users) and the ready pods,
each mapped to its Deployment through its ReplicaSet. It takes any :class:`~canarylab.engine.ports.Cluster`
(the kr8s adapter on a real API server), so this module needs no cluster client of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from canarylab.engine.kinds import CANARY, HTTP_ROUTE, POD, SERVICE, TRAFFIC_SPLIT, VIRTUAL_SERVICE, Kind, Obj
from canarylab.engine.ports import Clock, Cluster, ClusterError, WatchEvent
from canarylab.sim.cluster import MatchedRule, ServiceInfo, SetCookies, SimCluster, SimPod
from canarylab.sim.workloads import Fault

log = logging.getLogger("canarylab.sim.attached")

RETRY_SECONDS = 2.0
"""Wait before re-watching a kind the server does not serve yet (its CRD is being installed)."""

ROUTING: tuple[Kind, ...] = (TRAFFIC_SPLIT, HTTP_ROUTE, VIRTUAL_SERVICE)
WATCHED: tuple[Kind, ...] = (SERVICE, POD, *ROUTING, CANARY)


def deployment_of(pod: Obj) -> str:
    """The Deployment a pod belongs to: its ReplicaSet owner's name without ``-<pod-template-hash>``."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    template_hash = str(labels.get("pod-template-hash", ""))
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "ReplicaSet":
            name = str(owner.get("name", ""))
            return name[: -len(template_hash) - 1] if template_hash and name.endswith("-" + template_hash) else name
    return str(meta.get("name", ""))


def is_ready(pod: Obj) -> bool:
    """Ready as a Service's endpoints see it: the ``Ready`` condition is True and the pod is not terminating."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class ClusterView:
    """The network's view of a real cluster (implements :class:`canarylab.sim.traffic.Topology`), kept
    current by watches. Run :meth:`run` in a task."""

    def __init__(self, cluster: Cluster, clock: Clock) -> None:
        self.source = cluster
        self.clock = clock
        self.services: dict[tuple[str, str], ServiceInfo] = {}
        self.canaries: dict[tuple[str, str], Obj] = {}
        self.pods: dict[tuple[str, str], dict[str, SimPod]] = {}
        """Pods per Deployment ``(namespace, name)``."""
        self.topology = 0
        self.pod_listeners: list[Callable[[SimPod, str], None]] = []
        """Called with ``(pod, "added"|"removed")``, as :class:`~canarylab.sim.cluster.SimCluster` does."""
        # The simulated cluster's own index of routing objects (weights, header matches, mirrors), fed with
        # the real cluster's TrafficSplits, HTTPRoutes and VirtualServices: one routing model for both labs.
        self._router = SimCluster(clock)
        self._by_name: dict[tuple[str, str], SimPod] = {}

    # ------------------------------------------------------------------------------ Topology

    @property
    def routes(self) -> dict[tuple[str, str], list[tuple[str, int]]]:
        """Weighted backends per apex Service, from the routing objects."""
        return self._router.routes

    @property
    def matched_routes(self) -> dict[tuple[str, str], list[MatchedRule]]:
        """Header-matched rules per apex Service (A/B testing)."""
        return self._router.matched_routes

    @property
    def mirrors(self) -> dict[tuple[str, str], tuple[str, float]]:
        """Mirrored traffic per apex Service."""
        return self._router.mirrors

    @property
    def set_cookies(self) -> dict[tuple[str, str], SetCookies]:
        """Session affinity's ``Set-Cookie`` answers per apex Service."""
        return self._router.set_cookies

    def ready_pods(self, namespace: str, selector: dict[str, str]) -> list[SimPod]:
        """Ready pods in ``namespace`` whose labels match every ``selector`` entry (sorted by name)."""
        if not selector:
            return []
        found = [p for (ns, _), p in self._by_name.items()
                 if ns == namespace and p.ready and all(p.labels.get(k) == v for k, v in selector.items())]
        return sorted(found, key=lambda p: p.name)

    def fault_of(self, pod: SimPod) -> Fault | None:
        """No faults on a real cluster: a bad version is deployed, not injected."""
        return None

    def record_load(self, requests: dict[tuple[str, str], float], seconds: float) -> None:
        """Nothing to do: the real cluster's HPA controller has no metrics API in the lab (no pod uses CPU),
        so it keeps the Deployments at ``minReplicas``."""

    # ------------------------------------------------------------------------------ watches

    async def run(self) -> None:
        """Watch every kind the network needs until cancelled."""
        await asyncio.gather(*(self._follow(kind) for kind in WATCHED))

    async def _follow(self, kind: Kind) -> None:
        warned = False
        while True:
            try:
                async for event in self.source.watch(kind, None):
                    self.apply(kind, event)
            except ClusterError as err:
                # A CRD not installed yet (TrafficSplit before its CRD), or the API server restarting.
                if not warned:
                    log.info("watching %s: %s; retrying every %.0fs", kind.kind, err, RETRY_SECONDS)
                    warned = True
            await asyncio.sleep(RETRY_SECONDS)

    def apply(self, kind: Kind, event: WatchEvent) -> None:
        """Fold one watch event into the view."""
        obj = event.object
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        deleted = event.type == "DELETED"
        if kind is SERVICE:
            if deleted:
                self.services.pop(key, None)
            else:
                spec = obj.get("spec") or {}
                self.services[key] = ServiceInfo(dict(spec.get("selector") or {}), list(spec.get("ports") or []))
        elif kind is POD:
            self._pod(key, obj, deleted)
        elif kind in ROUTING:
            self._router._on_change(event)  # the same package's routing model, on purpose
        elif kind is CANARY:
            if deleted:
                self.canaries.pop(key, None)
            else:
                self.canaries[key] = obj
            return
        self.topology += 1

    def _pod(self, key: tuple[str, str], obj: Obj, deleted: bool) -> None:
        known = self._by_name.get(key)
        if deleted:
            if known is not None:
                self._by_name.pop(key, None)
                self.pods.get((known.namespace, known.deployment), {}).pop(known.name, None)
                for listener in self.pod_listeners:
                    listener(known, "removed")
            return
        meta: dict[str, Any] = obj.get("metadata") or {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        containers = (obj.get("spec") or {}).get("containers") or []
        ready = is_ready(obj)
        now = self.clock.now()
        if known is None:
            known = SimPod(namespace=key[0], name=key[1], deployment=deployment_of(obj),
                           hash=labels.get("pod-template-hash", ""), labels=labels,
                           images=tuple(str(c.get("image", "")) for c in containers), created=now)
            self._by_name[key] = known
            self.pods.setdefault((known.namespace, known.deployment), {})[known.name] = known
            for listener in self.pod_listeners:
                listener(known, "added")
        known.labels = labels
        known.terminating = bool(meta.get("deletionTimestamp"))
        if ready and known.ready_since is None:
            known.ready_since = now
        elif not ready:
            known.ready_since = None


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task and wait for it, swallowing its end."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
