"""The simulated cluster: the engine's in-memory store plus the controllers Kubernetes would run.

:class:`SimCluster` is :class:`canarylab.engine.memory_cluster.MemoryCluster` (one object store, resourceVersion,
generation, watches, events) with, on top:

* a deployment controller that turns ``replicas`` and the pod template into Pods (labels with
  ``pod-template-hash``), rolls them (``maxSurge``/``maxUnavailable``), lets new pods become Ready after a
  short lab-time delay (2-5 s, deterministic per pod), keeps old ones Terminating for a moment, and writes
  Deployment status as Kubernetes does (``observedGeneration``, replica counts, ``Available`` and
  ``Progressing`` conditions including ``ProgressDeadlineExceeded``);
* an HPA controller keeping replicas within ``minReplicas..maxReplicas`` every 15 s, never scaling a
  Deployment that has 0 replicas;
* indexes the traffic model reads every time slice (services, routing objects, ready pods by label).

Controllers react to writes synchronously through the store's listener hook (so ``observedGeneration`` is
current when a write returns); timed work (readiness, termination, HPA, deadlines) runs in :meth:`run`.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from canarylab.engine.clock import sleep_or_wake, stop_if_cancelled
from canarylab.engine.documents import rfc3339
from canarylab.engine.kinds import (
    CANARY,
    DAEMON_SET,
    DEPLOYMENT,
    HPA,
    HTTP_ROUTE,
    INGRESS,
    POD,
    SERVICE,
    TRAFFIC_SPLIT,
    VIRTUAL_SERVICE,
    Obj,
)
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.ports import Clock, WatchEvent
from canarylab.sim.workloads import Fault

READY_DELAY = (2.0, 5.0)
"""A new pod becomes Ready 2-5 s (lab time) after it is created."""
TERMINATION_SECONDS = 2.0
"""How long a deleted pod stays Terminating before it is gone."""
HPA_SYNC_SECONDS = 15.0
"""The HPA controller's sync period (Kubernetes' default)."""
HPA_TOLERANCE = 0.1
"""The HPA acts only when usage is more than 10 % off its target (Kubernetes' default tolerance)."""
HPA_DOWNSCALE_WINDOW = 300.0
"""Scale-down stabilization: the highest recommendation of the last five minutes wins (Kubernetes' default)."""
IDLE_MILLICORES = 5.0
MILLICORES_PER_RPS = 8.0
"""The simulated podinfo's CPU: a little at rest, 8 millicores per request per second (20 requests/s on a pod
with the seed's 100m request is 165 % utilization)."""
DEFAULT_PROGRESS_DEADLINE = 600
NGINX = "nginx.ingress.kubernetes.io"
NODES: dict[str, dict[str, str]] = {
    f"sim-node-{i}": {"kubernetes.io/hostname": f"sim-node-{i}", "kubernetes.io/os": "linux",
                      "kubernetes.io/arch": "amd64"} for i in (1, 2, 3)
}
"""The simulated nodes and their labels: a DaemonSet runs one pod on each node its node selector admits."""

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet


def template_hash(template: Obj) -> str:
    """A stable ``pod-template-hash`` for a pod template (same template, same hash)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


def release_of(template: Obj) -> str:
    """What a fault sticks to: the pod template's containers (images, commands, env), like a release. Not the
    whole template: Flagger scales a DaemonSet to zero through its node selector, which is no new release."""
    return template_hash({"containers": (template.get("spec") or {}).get("containers") or []})


@dataclass(frozen=True)
class InjectedFault:
    """A fault and the release it belongs to: pods of ``revision`` (:func:`release_of` their template) have it.

    Like a bad release, it stays with that revision: when the Deployment's pod template changes (a new
    image), the new revision starts clean and this record gets ``replaced_by`` (the new revision's image).
    """

    fault: Fault
    revision: str
    image: str
    since: float
    replaced_by: str | None = None
    replaced_at: float | None = None


def _first_image(template: Obj) -> str:
    containers = (template.get("spec") or {}).get("containers") or []
    return str(containers[0].get("image", "")) if containers else ""


@dataclass
class SimPod:
    """A pod as the kubelet of the simulated node sees it."""

    namespace: str
    name: str
    deployment: str
    hash: str
    labels: dict[str, str]
    images: tuple[str, ...]
    created: float
    ready_since: float | None = None
    terminating: bool = False
    release: str = ""
    """:func:`release_of` the pod's template (what an injected fault sticks to)."""

    @property
    def ready(self) -> bool:
        return self.ready_since is not None and not self.terminating

    def available(self, now: float, min_ready: float) -> bool:
        """Ready for at least ``minReadySeconds``."""
        return self.ready_since is not None and not self.terminating and now - self.ready_since >= min_ready


@dataclass
class ServiceInfo:
    """What routing needs about a Service."""

    selector: dict[str, str]
    ports: list[Obj] = field(default_factory=list)


class SimCluster(MemoryCluster):
    """A :class:`MemoryCluster` with a deployment controller, pods, an HPA controller and traffic indexes."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.faults: dict[tuple[str, str], InjectedFault] = {}
        """Active faults per Deployment ``(namespace, name)``, each on one revision."""
        self.left_faults: dict[tuple[str, str], InjectedFault] = {}
        """The last fault a new revision left behind, per Deployment (cleared by :meth:`set_fault` and
        :meth:`clear_fault`)."""
        self.pods: dict[tuple[str, str], dict[str, SimPod]] = {}
        """Live pods (Terminating ones included) per Deployment ``(namespace, name)``."""
        self.services: dict[tuple[str, str], ServiceInfo] = {}
        self.routes: dict[tuple[str, str], list[tuple[str, int]]] = {}
        """Weighted backends per apex Service ``(namespace, apex)``, from TrafficSplits and HTTPRoutes (an
        HTTPRoute's last rule: the one every request without a more specific match takes)."""
        self.matched_routes: dict[tuple[str, str], list[MatchedRule]] = {}
        """An HTTPRoute's earlier rules that match on headers (A/B testing): per rule, its alternative
        matches (each a list of conditions that must all hold) and its weighted backends."""
        self.mirrors: dict[tuple[str, str], tuple[str, float]] = {}
        """Per apex Service, the Service its requests are mirrored to and the share mirrored (Blue/Green with
        ``mirror``: the copies reach the canary, their answers are dropped)."""
        self.set_cookies: dict[tuple[str, str], SetCookies] = {}
        """Per apex Service whose route answers with ``Set-Cookie`` (session affinity), which backends and
        matched rules set which cookie."""
        self.canaries: dict[tuple[str, str], Obj] = {}
        self.topology = 0
        """Bumped whenever something that decides where traffic goes changes (for caches)."""
        self.pod_listeners: list[Callable[[SimPod, str], None]] = []
        """Called with ``(pod, "added"|"removed")`` when a pod appears or is gone (the metrics store)."""
        self._ready_index: dict[str, dict[str, set[str]]] = {}  # ns -> "k=v" -> ready pod names
        self._ready_pods: dict[tuple[str, str], SimPod] = {}
        self._route_sources: dict[tuple[str, str, str], tuple[str, list[tuple[str, int]]]] = {}
        self._matched_sources: dict[tuple[str, str, str], tuple[str, list[MatchedRule]]] = {}
        self._mirror_sources: dict[tuple[str, str, str], tuple[str, str, float]] = {}
        self._cookie_sources: dict[tuple[str, str, str], tuple[str, SetCookies]] = {}
        self._hpas: dict[tuple[str, str], Obj] = {}
        self._deployments: dict[tuple[str, str], Obj] = {}
        self._daemon_sets: dict[tuple[str, str], Obj] = {}
        self._pod_nodes: dict[tuple[str, str], str] = {}  # (namespace, pod) -> node, for daemon pods
        self._replica_sets: dict[tuple[str, str], set[str]] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._pod_seq = itertools.count(1)
        self._hpa_due = 0.0
        self._load: dict[tuple[str, str], float] = {}  # (namespace, pod) -> requests/s, smoothed over ~30 s
        self._recommendations: dict[tuple[str, str], list[tuple[float, int]]] = {}  # per HPA: (time, replicas)
        self.wake = asyncio.Event()
        self.add_listener(self._on_change)

    # --------------------------------------------------------------------------------- public

    def set_fault(self, namespace: str, deployment: str, fault: Fault) -> InjectedFault:
        """Inject a fault into the pods of the Deployment's current revision (replaces an earlier one)."""
        key = (namespace, deployment)
        workload = self._deployments.get(key) or self._daemon_sets.get(key) or {}
        template = (workload.get("spec") or {}).get("template") or {}
        injected = InjectedFault(fault, release_of(template), _first_image(template), self.clock.now())
        self.faults[key] = injected
        self.left_faults.pop(key, None)
        self.topology += 1
        return injected

    def clear_fault(self, namespace: str, deployment: str) -> None:
        """Remove the fault; pods it kept from becoming ready get ready after the usual delay."""
        injected = self.faults.pop((namespace, deployment), None)
        self.left_faults.pop((namespace, deployment), None)
        self.topology += 1
        if injected is not None and injected.fault.never_ready:
            now = self.clock.now()
            for pod in self.pods.get((namespace, deployment), {}).values():
                if pod.ready_since is None and not pod.terminating:
                    self._at(now + _ready_delay(pod.name), lambda p=pod: self._pod_ready(p))  # type: ignore[misc]

    def ready_pods(self, namespace: str, selector: dict[str, str]) -> list[SimPod]:
        """Ready, non-terminating pods whose labels match every ``selector`` entry (sorted by name)."""
        if not selector:
            return []
        index = self._ready_index.get(namespace)
        if not index:
            return []
        names: set[str] | None = None
        for key, value in selector.items():
            found = index.get(f"{key}={value}")
            if not found:
                return []
            names = set(found) if names is None else names & found
        return [self._ready_pods[(namespace, n)] for n in sorted(names or ())]

    def fault_of(self, pod: SimPod) -> Fault | None:
        """The fault injected into the pod's revision, if any (other revisions of the Deployment are clean)."""
        injected = self.faults.get((pod.namespace, pod.deployment))
        return injected.fault if injected is not None and injected.revision == pod.release else None

    def _retire_fault(self, key: tuple[str, str], template: Obj) -> None:
        """A new release of a faulty workload starts clean: the fault stays with its own release."""
        injected = self.faults.get(key)
        if injected is None or injected.revision == release_of(template):
            return
        del self.faults[key]
        self.left_faults[key] = InjectedFault(injected.fault, injected.revision, injected.image, injected.since,
                                              replaced_by=_first_image(template), replaced_at=self.clock.now())
        self.topology += 1

    async def run(self) -> None:
        """The controllers' clock: readiness, termination, HPA syncs and deadlines, until cancelled."""
        while True:
            stop_if_cancelled()
            now = self.clock.now()
            self._run_due(now)
            if now >= self._hpa_due:
                self._sync_hpas()
                self._hpa_due = now + HPA_SYNC_SECONDS
            next_at = min(self._hpa_due, self._timers[0][0] if self._timers else math.inf)
            await sleep_or_wake(self.clock, max(0.0, next_at - self.clock.now()), self.wake)

    def run_due(self) -> None:
        """Run timers that are due now (the lab calls it before each traffic slice)."""
        self._run_due(self.clock.now())

    # --------------------------------------------------------------------------------- listener

    def _on_change(self, event: WatchEvent) -> None:
        obj = event.object
        kind = obj.get("kind")
        if kind == "Event" or kind == "Pod":
            return
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        deleted = event.type == "DELETED"
        if kind == DEPLOYMENT.kind:
            if deleted:
                self._deployments.pop(key, None)
                for pod in list(self.pods.get(key, {}).values()):
                    self._terminate(pod)
                return
            self._deployments[key] = obj
            status = obj.get("status") or {}
            if status.get("observedGeneration") != meta.get("generation"):
                self._reconcile(key)
        elif kind == DAEMON_SET.kind:
            if deleted:
                self._daemon_sets.pop(key, None)
                for pod in list(self.pods.get(key, {}).values()):
                    self._terminate(pod)
                return
            self._daemon_sets[key] = obj
            if (obj.get("status") or {}).get("observedGeneration") != meta.get("generation"):
                self._reconcile(key)
        elif kind == SERVICE.kind:
            if deleted:
                self.services.pop(key, None)
            else:
                spec = obj.get("spec") or {}
                self.services[key] = ServiceInfo(dict(spec.get("selector") or {}), list(spec.get("ports") or []))
            self.topology += 1
        elif kind in (TRAFFIC_SPLIT.kind, HTTP_ROUTE.kind, VIRTUAL_SERVICE.kind, INGRESS.kind):
            self._index_route(kind, key, None if deleted else obj)
        elif kind == HPA.kind:
            if deleted:
                self._hpas.pop(key, None)
            else:
                self._hpas[key] = obj
                if event.type == "ADDED":
                    self._hpa_due = 0.0  # a new HPA acts at its first sync, right away
                    self.wake.set()
        elif kind == CANARY.kind:
            if deleted:
                self.canaries.pop(key, None)
            else:
                self.canaries[key] = obj

    def _index_route(self, kind: str, key: tuple[str, str], obj: Obj | None) -> None:
        source = (kind, *key)
        self._route_sources.pop(source, None)
        self._matched_sources.pop(source, None)
        self._mirror_sources.pop(source, None)
        self._cookie_sources.pop(source, None)
        if obj is not None:
            spec = obj.get("spec") or {}
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            if kind == INGRESS.kind and annotations.get(f"{NGINX}/canary") != "true":
                return self._rebuild_routes()  # the user's own Ingress: it reaches the apex Service as is
            if kind == INGRESS.kind:
                # Flagger's canary Ingress: users come in through the controller; the weight (or the header and
                # cookie annotations of A/B testing) decides how many reach the canary Service
                names = [((p.get("backend") or {}).get("service") or {}).get("name")
                         for r in spec.get("rules") or [] for p in ((r or {}).get("http") or {}).get("paths") or []]
                canary_service = next((str(n) for n in names if n), f"{key[1]}")
                apex = canary_service.removesuffix("-canary")
                try:
                    weight = int(annotations.get(f"{NGINX}/canary-weight", "0"))
                except ValueError:
                    weight = 0
                backends = [(f"{apex}-primary", 100 - weight), (canary_service, weight)]
                alternatives = _nginx_conditions(annotations)
                if alternatives:
                    self._matched_sources[source] = (apex, [(alternatives, [(canary_service, 100)])])
                    backends = [(f"{apex}-primary", 100)]
            elif kind == VIRTUAL_SERVICE.kind:
                short = [h for h in spec.get("hosts") or [] if isinstance(h, str) and "." not in h and h != "*"]
                apex = short[-1] if short else key[1]
                http = [r for r in spec.get("http") or [] if isinstance(r, dict)] or [{}]
                backends = _istio_backends(http[-1])
                matched: list[MatchedRule] = []
                cookies = SetCookies({str((d.get("destination") or {}).get("host", "")).split(".")[0]: value
                                      for d in http[-1].get("route") or [] if isinstance(d, dict)
                                      if (value := _istio_set_cookie(d))}, {})
                for r in http[:-1]:
                    if alternatives := _istio_conditions(r.get("match")):
                        if value := _istio_set_cookie(r):
                            cookies.rules[len(matched)] = value
                        matched.append((alternatives, _istio_backends(r)))
                if matched:
                    self._matched_sources[source] = (str(apex), matched)
                if cookies.backends or cookies.rules:
                    self._cookie_sources[source] = (str(apex), cookies)
                for r in http:
                    mirror = (r.get("mirror") or {}).get("host")
                    if mirror:
                        share = float((r.get("mirrorPercentage") or {}).get("value", 100.0)) / 100
                        self._mirror_sources[source] = (str(apex), str(mirror).split(".")[0], share)
            elif kind == TRAFFIC_SPLIT.kind:
                apex = spec.get("service") or key[1]
                backends = [(str(b.get("service", "")), int(b.get("weight", 0) or 0))
                            for b in spec.get("backends") or []]
            else:
                parents = [p.get("name") for p in spec.get("parentRefs") or [] if p.get("kind") == "Service"]
                apex = parents[0] if parents else key[1]
                rules = spec.get("rules") or [{}]
                backends = _http_backends(rules[-1])
                matched = []
                cookies = SetCookies({str(b.get("name", "")): value for b in rules[-1].get("backendRefs") or []
                                      if isinstance(b, dict) if (value := _gateway_set_cookie(b))}, {})
                for rule in rules[:-1]:
                    if alternatives := _conditions(rule.get("matches")):
                        if value := _gateway_set_cookie(rule):
                            cookies.rules[len(matched)] = value
                        matched.append((alternatives, _http_backends(rule)))
                if matched:
                    self._matched_sources[source] = (str(apex), matched)
                if cookies.backends or cookies.rules:
                    self._cookie_sources[source] = (str(apex), cookies)
                for rule in rules:
                    for flt in rule.get("filters") or []:
                        ref = ((flt or {}).get("requestMirror") or {}).get("backendRef") or {}
                        if isinstance(flt, dict) and flt.get("type") == "RequestMirror" and ref.get("name"):
                            self._mirror_sources[source] = (str(apex), str(ref["name"]), 1.0)
            self._route_sources[source] = (str(apex), backends)
        self._rebuild_routes()

    def _rebuild_routes(self) -> None:
        self.routes = {}
        for (_, ns, _), (apex, backends) in sorted(self._route_sources.items()):
            self.routes.setdefault((ns, apex), backends)
        self.matched_routes = {}
        for (_, ns, _), (apex, rules) in sorted(self._matched_sources.items()):
            self.matched_routes.setdefault((ns, apex), rules)
        self.mirrors = {}
        for (_, ns, _), (apex, service, share) in sorted(self._mirror_sources.items()):
            self.mirrors.setdefault((ns, apex), (service, share))
        self.set_cookies = {}
        for (_, ns, _), (apex, cookies) in sorted(self._cookie_sources.items()):
            self.set_cookies.setdefault((ns, apex), cookies)
        self.topology += 1

    # --------------------------------------------------------------------------------- timers

    def _at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), action))
        self.wake.set()

    def _run_due(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now + 1e-9:
            _, _, action = heapq.heappop(self._timers)
            action()

    # --------------------------------------------------------------------------------- deployments

    def _reconcile(self, key: tuple[str, str], *, scale_only: bool | None = None) -> None:
        """Bring a Deployment's pods toward its spec and write its status (Kubernetes' rolling update)."""
        if key in self._daemon_sets:
            self._reconcile_daemon_set(key)
            return
        dep = self._deployments.get(key)
        if dep is None:
            return
        now = self.clock.now()
        spec = dep.get("spec") or {}
        desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        template = spec.get("template") or {}
        want = template_hash(template)
        self._retire_fault(key, template)
        pods = self.pods.setdefault(key, {})
        live = [p for p in pods.values() if not p.terminating]
        new = [p for p in live if p.hash == want]
        old = [p for p in live if p.hash != want]
        min_ready = float(spec.get("minReadySeconds", 0) or 0)
        known = self._replica_sets.setdefault(key, set())
        new_rs_created = want not in known  # Kubernetes creates a ReplicaSet per template, even at 0 replicas
        known.add(want)
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            for pod in old:
                self._terminate(pod)
            if not any(p.hash != want for p in pods.values()):
                self._scale_new(key, dep, template, want, new, desired, desired - len(new))
        else:
            rolling = strategy.get("rollingUpdate") or {}
            surge = _resolve(rolling.get("maxSurge", "25%"), desired, up=True)
            unavailable = _resolve(rolling.get("maxUnavailable", "25%"), desired, up=False)
            if surge == 0 and unavailable == 0:
                unavailable = 1
            limit = desired + surge if old else desired
            self._scale_new(key, dep, template, want, new, desired, max(0, limit - len(old) - len(new)))
            new = [p for p in pods.values() if not p.terminating and p.hash == want]
            if old:
                # Unready old pods go first (they cost no availability), then as many ready ones as the
                # availability budget allows.
                for pod in [p for p in old if not p.ready]:
                    self._terminate(pod)
                old = [p for p in old if p.ready]
                available = sum(p.available(now, min_ready) for p in new + old)
                budget = available - (desired - unavailable)
                for pod in sorted(old, key=lambda p: p.created)[: max(0, budget)]:
                    self._terminate(pod)
        self._write_status(key, dep, want, now, min_ready, new_rs_created, scale_only)

    def _reconcile_daemon_set(self, key: tuple[str, str]) -> None:
        """One pod per admitted node, replaced node by node (RollingUpdate, maxUnavailable 1 by default)."""
        ds = self._daemon_sets[key]
        now = self.clock.now()
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        want = template_hash(template)
        self._retire_fault(key, template)
        selector = (template.get("spec") or {}).get("nodeSelector") or {}
        nodes = [n for n, labels in NODES.items() if all(labels.get(k) == v for k, v in selector.items())]
        min_ready = float(spec.get("minReadySeconds", 0) or 0)
        pods = self.pods.setdefault(key, {})
        on_node: dict[str, list[SimPod]] = {}
        for pod in pods.values():
            if not pod.terminating:
                on_node.setdefault(self._pod_nodes.get((pod.namespace, pod.name), ""), []).append(pod)
        for node, node_pods in on_node.items():
            if node not in nodes:  # the node selector no longer admits this node ("scaled to zero")
                for pod in node_pods:
                    self._terminate(pod)
        busy = {n for n, ps in on_node.items() if n in nodes} | {
            self._pod_nodes.get((p.namespace, p.name), "") for p in pods.values() if p.terminating}
        for node in nodes:
            if node not in busy:
                pod = self._create_pod(key, ds, template, want)
                self._pod_nodes[(pod.namespace, pod.name)] = node
                self.patch_now(POD, pod.namespace, pod.name, {"spec": {"nodeName": node}})
        rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
        budget = max(1, _resolve(rolling.get("maxUnavailable", 1), len(nodes), up=False))
        unavailable = sum(1 for n in nodes if not any(p.available(now, min_ready) for p in on_node.get(n, [])))
        old = [p for n in nodes for p in on_node.get(n, []) if p.hash != want]
        for pod in sorted(old, key=lambda p: (p.ready, p.created)):
            if not pod.ready:
                self._terminate(pod)  # an unready old pod costs no availability
            elif unavailable < budget:
                self._terminate(pod)
                unavailable += 1
        self._write_daemon_set_status(key, ds, want, nodes, now, min_ready)

    def _write_daemon_set_status(self, key: tuple[str, str], ds: Obj, want: str, nodes: list[str], now: float,
                                 min_ready: float) -> None:
        live = [p for p in self.pods.get(key, {}).values() if not p.terminating
                and self._pod_nodes.get((p.namespace, p.name)) in nodes]
        available = sum(p.available(now, min_ready) for p in live)
        status: Obj = {
            "observedGeneration": ds["metadata"].get("generation", 1),
            "desiredNumberScheduled": len(nodes),
            "currentNumberScheduled": len({self._pod_nodes.get((p.namespace, p.name)) for p in live}),
            "numberMisscheduled": 0,
            "numberReady": sum(p.ready for p in live),
            "updatedNumberScheduled": sum(p.hash == want for p in live),
            "numberAvailable": available,
            "numberUnavailable": max(0, len(nodes) - available),
        }
        for name in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
            if status[name] == 0:
                del status[name]  # omitted when zero, as Kubernetes writes them
        old_status: Obj = ds.get("status") or {}
        if status == old_status:
            return
        patch: Obj = {k: None for k in old_status if k not in status}
        patch.update(status)
        self.patch_status_now(DAEMON_SET, key[0], key[1], patch)
        self._daemon_sets[key] = {**ds, "status": status}
        if min_ready > 0 and available < len(live):
            self._at(now + min_ready, lambda: self._reconcile(key))

    def _scale_new(self, key: tuple[str, str], dep: Obj, template: Obj, want: str, new: list[SimPod],
                   desired: int, room: int) -> None:
        if len(new) < desired:
            for _ in range(min(desired - len(new), room)):
                self._create_pod(key, dep, template, want)
        elif len(new) > desired:
            # Scale down: unready pods first, then the newest.
            victims = sorted(new, key=lambda p: (p.ready, -p.created))[: len(new) - desired]
            for pod in victims:
                self._terminate(pod)

    def _create_pod(self, key: tuple[str, str], dep: Obj, template: Obj, want: str) -> SimPod:
        namespace, deployment = key
        now = self.clock.now()
        name = f"{deployment}-{want}-{_suffix(next(self._pod_seq))}"
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}), "pod-template-hash": want}
        pod_spec = template.get("spec") or {}
        images = tuple(str(c.get("image", "")) for c in pod_spec.get("containers") or [])
        pod = SimPod(namespace, name, deployment, want, labels, images, now, release=release_of(template))
        self.pods.setdefault(key, {})[name] = pod
        self.create_now({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": namespace, "labels": labels,
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{deployment}-{want}",
                                     "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": pod_spec,
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]},
        })  # fmt: skip
        for listener in self.pod_listeners:
            listener(pod, "added")
        self._at(now + _ready_delay(name), lambda: self._pod_ready(pod))
        return pod

    def _pod_ready(self, pod: SimPod) -> None:
        if pod.terminating or pod.ready_since is not None:
            return
        fault = self.fault_of(pod)
        if fault is not None and fault.never_ready:
            return  # the readiness probe keeps failing
        now = self.clock.now()
        pod.ready_since = now
        self._index_ready(pod, True)
        self.patch_status_now(POD, pod.namespace, pod.name, {
            "phase": "Running", "startTime": rfc3339(pod.created),
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(now)}],
            "containerStatuses": [{"name": f"c{i}", "image": image, "ready": True, "started": True}
                                  for i, image in enumerate(pod.images)],
        })  # fmt: skip
        key = (pod.namespace, pod.deployment)
        self._reconcile(key)
        dep = self._deployments.get(key) or self._daemon_sets.get(key)
        min_ready = float(((dep or {}).get("spec") or {}).get("minReadySeconds", 0) or 0)
        if min_ready > 0:
            self._at(now + min_ready, lambda: self._reconcile(key))

    def _terminate(self, pod: SimPod) -> None:
        if pod.terminating:
            return
        was_ready = pod.ready
        pod.terminating = True
        if was_ready:
            self._index_ready(pod, False)
        now = self.clock.now()
        if self.get_now(POD, pod.namespace, pod.name) is not None:
            self.patch_now(POD, pod.namespace, pod.name, {"metadata": {"deletionTimestamp": rfc3339(now)}})
            self.patch_status_now(POD, pod.namespace, pod.name, {
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": rfc3339(now)}],
            })  # fmt: skip
        self._at(now + TERMINATION_SECONDS, lambda: self._remove_pod(pod))

    def _remove_pod(self, pod: SimPod) -> None:
        key = (pod.namespace, pod.deployment)
        self.pods.get(key, {}).pop(pod.name, None)
        self._pod_nodes.pop((pod.namespace, pod.name), None)
        if self.get_now(POD, pod.namespace, pod.name) is not None:
            self.delete_now(POD, pod.namespace, pod.name)
        for listener in self.pod_listeners:
            listener(pod, "removed")
        self._reconcile(key)  # a Recreate rollout waits for old pods to be gone

    def _index_ready(self, pod: SimPod, ready: bool) -> None:
        index = self._ready_index.setdefault(pod.namespace, {})
        for k, v in pod.labels.items():
            names = index.setdefault(f"{k}={v}", set())
            if ready:
                names.add(pod.name)
            else:
                names.discard(pod.name)
        if ready:
            self._ready_pods[(pod.namespace, pod.name)] = pod
        else:
            self._ready_pods.pop((pod.namespace, pod.name), None)
        self.topology += 1

    def _write_status(self, key: tuple[str, str], dep: Obj, want: str, now: float, min_ready: float,
                      new_rs_created: bool, scale_only: bool | None) -> None:
        spec = dep.get("spec") or {}
        meta = dep["metadata"]
        old_status: Obj = dep.get("status") or {}
        desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        live = [p for p in self.pods.get(key, {}).values() if not p.terminating]
        replicas = len(live)
        updated = sum(p.hash == want for p in live)
        ready = sum(p.ready for p in live)
        available = sum(p.available(now, min_ready) for p in live)
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = 0 if (spec.get("strategy") or {}).get("type") == "Recreate" else \
            _resolve(rolling.get("maxUnavailable", "25%"), desired, up=False)
        if max_unavailable == 0 and _resolve(rolling.get("maxSurge", "25%"), desired, up=True) == 0:
            max_unavailable = 1
        status: Obj = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready,
            "availableReplicas": available, "unavailableReplicas": max(0, replicas - available),
        }  # fmt: skip
        for name in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if status[name] == 0:
                del status[name]  # Kubernetes omits zero counters
        conditions = [dict(c) for c in old_status.get("conditions") or []]
        stamp = rfc3339(now)
        if available >= desired - max_unavailable:
            _set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", stamp)
        else:
            _set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", stamp)
        rs = f"{meta['name']}-{want}"
        complete = updated == desired and replicas == desired and available == desired
        generation_changed = old_status.get("observedGeneration") != meta.get("generation")
        is_scale = scale_only if scale_only is not None else (generation_changed and not new_rs_created
                                                              and bool(old_status))
        progressing = _get_condition(conditions, "Progressing")
        deadline = float(spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE))
        if complete:
            _set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                           f'ReplicaSet "{rs}" has successfully progressed.', stamp)
        elif new_rs_created or (not is_scale and _progressed(old_status, status)) or progressing is None:
            _set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                           f'ReplicaSet "{rs}" is progressing.', stamp, always_update=True)
            self._at(now + deadline + 0.5, lambda: self._reconcile(key, scale_only=False))
        elif not is_scale and progressing.get("reason") not in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
            since = _parse_stamp(progressing.get("lastUpdateTime"))
            if since is not None and now > since + deadline:
                _set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                               f'ReplicaSet "{rs}" has timed out progressing.', stamp)
        status["conditions"] = sorted(conditions, key=lambda c: 0 if c["type"] == "Available" else 1)
        if status == old_status:
            return
        patch: Obj = {k: None for k in old_status if k not in status}
        patch.update(status)
        self.patch_status_now(DEPLOYMENT, key[0], key[1], patch)
        self._deployments[key] = {**dep, "status": status}

    # --------------------------------------------------------------------------------- HPA

    def record_load(self, requests: dict[tuple[str, str], float], seconds: float) -> None:
        """The requests each pod served in the last ``seconds`` (the traffic slice): the HPA's CPU comes from it."""
        if seconds <= 0:
            return
        alpha = min(1.0, seconds / 30.0)
        for key in set(self._load) | set(requests):
            rate = requests.get(key, 0.0) / seconds
            smoothed = self._load.get(key, rate) * (1 - alpha) + rate * alpha
            if smoothed < 1e-6 and key not in requests:
                self._load.pop(key, None)
            else:
                self._load[key] = smoothed

    def pod_cpu_millicores(self, pod: SimPod) -> float:
        """The pod's simulated CPU use: a little at rest plus a share per request per second."""
        return IDLE_MILLICORES + MILLICORES_PER_RPS * self._load.get((pod.namespace, pod.name), 0.0)

    def _sync_hpas(self) -> None:
        now = self.clock.now()
        for (namespace, name), hpa in sorted(self._hpas.items()):
            spec = hpa.get("spec") or {}
            target = (spec.get("scaleTargetRef") or {}).get("name")
            dep = self._deployments.get((namespace, str(target)))
            if dep is None:
                continue
            dspec = dep.get("spec") or {}
            current = int(dspec.get("replicas", 1) if dspec.get("replicas") is not None else 1)
            if current == 0:
                continue  # an HPA never scales a Deployment scaled to zero (Flagger relies on it)
            low = int(spec.get("minReplicas", 1) or 1)
            high = int(spec.get("maxReplicas", low) or low)
            usage = self._cpu_utilization(namespace, str(target), dep)
            goal = _cpu_target(spec)
            proposal = current
            if usage is not None and goal and abs(usage / goal - 1) > HPA_TOLERANCE:
                proposal = math.ceil(current * usage / goal)
            history = [(t, r) for t, r in self._recommendations.get((namespace, name), [])
                       if t > now - HPA_DOWNSCALE_WINDOW] + [(now, proposal)]
            self._recommendations[(namespace, name)] = history
            if proposal < current:
                proposal = min(current, max(r for _, r in history))  # scale down only what stayed low
            wanted = min(max(proposal, low), high)
            if wanted != current:
                self.patch_now(DEPLOYMENT, namespace, str(target), {"spec": {"replicas": wanted}})
            status: Obj = {"currentReplicas": current, "desiredReplicas": wanted}
            if usage is not None:
                status["currentMetrics"] = [{"type": "Resource", "resource": {
                    "name": "cpu", "current": {"averageUtilization": round(usage)}}}]
            if {k: (hpa.get("status") or {}).get(k) for k in status} != status:
                self.patch_status_now(HPA, namespace, name, status)

    def _cpu_utilization(self, namespace: str, deployment: str, dep: Obj) -> float | None:
        """Average CPU of the Deployment's ready pods, in percent of their CPU request (None: no request)."""
        containers = ((((dep.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])
        requested = sum(_millicores(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
                        for c in containers if isinstance(c, dict))
        pods = [p for p in self.pods.get((namespace, deployment), {}).values() if p.ready]
        if requested <= 0 or not pods:
            return None
        return sum(self.pod_cpu_millicores(p) for p in pods) / len(pods) / requested * 100


# ----------------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Condition:
    """One HTTPRoute match condition on a request: a header (exact or regular expression) or the path."""

    field: str  # "header" or "path"
    name: str
    type: str
    value: str

    def matches(self, headers: dict[str, str], path: str) -> bool:
        if self.field == "path":
            if self.type == "Exact":
                return path.split("?", 1)[0] == self.value
            if self.type == "RegularExpression":
                return re.fullmatch(self.value, path.split("?", 1)[0]) is not None
            prefix = self.value.rstrip("/")
            return not prefix or path == prefix or path.startswith(prefix + "/")
        given = headers.get(self.name.lower())
        if given is None:
            return False
        if self.type == "RegularExpression":
            try:
                return re.search(self.value, given) is not None
            except re.error:
                return False
        if self.type == "Prefix":
            return given.startswith(self.value)
        return given == self.value


MatchedRule = tuple[list[list["Condition"]], list[tuple[str, int]]]
"""An A/B rule: alternative matches (conditions that must all hold) and the rule's weighted backends."""


@dataclass(frozen=True)
class SetCookies:
    """Session affinity on a route: the ``Set-Cookie`` each backend of the weighted rule answers with, and the
    one each matched rule (by its index in ``matched_routes``) answers with."""

    backends: dict[str, str]
    rules: dict[int, str]


def _gateway_set_cookie(holder: Obj) -> str | None:
    """The ``Set-Cookie`` a Gateway API rule or backendRef adds to answers (a ResponseHeaderModifier filter)."""
    for flt in holder.get("filters") or []:
        modifier = (flt.get("responseHeaderModifier") or {}) if isinstance(flt, dict) else {}
        for header in (modifier.get("add") or []) + (modifier.get("set") or []):
            if isinstance(header, dict) and str(header.get("name", "")).lower() == "set-cookie":
                return str(header.get("value", ""))
    return None


def _istio_set_cookie(holder: Obj) -> str | None:
    """The ``Set-Cookie`` an Istio route or destination adds to answers (``headers.response.add`` or ``set``)."""
    response = ((holder.get("headers") or {}).get("response") or {}) if isinstance(holder.get("headers"), dict) \
        else {}
    for operation in ("add", "set"):
        for name, value in (response.get(operation) or {}).items():
            if str(name).lower() == "set-cookie":
                return str(value)
    return None


def _conditions(matches: Any) -> list[list[Condition]]:
    """The alternatives of a rule's ``matches`` that test headers; [] for a rule that matches on paths only."""
    out: list[list[Condition]] = []
    for m in matches or []:
        if not isinstance(m, dict) or not m.get("headers"):
            continue
        conditions = [Condition("header", str(h.get("name", "")), str(h.get("type") or "Exact"),
                                str(h.get("value", ""))) for h in m["headers"] if isinstance(h, dict)]
        path = m.get("path")
        if isinstance(path, dict) and path.get("value"):
            conditions.append(Condition("path", "", str(path.get("type") or "PathPrefix"), str(path["value"])))
        out.append(conditions)
    return out


def _nginx_conditions(annotations: dict[str, str]) -> list[list[Condition]]:
    """NGINX's canary-by-header (-value or -pattern) and canary-by-cookie, as alternatives."""
    out: list[list[Condition]] = []
    header = annotations.get(f"{NGINX}/canary-by-header")
    if header:
        pattern = annotations.get(f"{NGINX}/canary-by-header-pattern")
        value = annotations.get(f"{NGINX}/canary-by-header-value")
        if pattern:
            out.append([Condition("header", header, "RegularExpression", pattern)])
        else:
            out.append([Condition("header", header, "Exact", value or "always")])
    cookie = annotations.get(f"{NGINX}/canary-by-cookie")
    if cookie:
        out.append([Condition("header", "cookie", "RegularExpression", rf"(^|;\s*){re.escape(cookie)}=always(;|$)")])
    return out


def _istio_conditions(matches: Any) -> list[list[Condition]]:
    """Istio ``HTTPMatchRequest``s that test headers, as conditions (exact, prefix or regex)."""
    out: list[list[Condition]] = []
    for m in matches or []:
        if not isinstance(m, dict) or not isinstance(m.get("headers"), dict):
            continue
        conditions = []
        for name, test in m["headers"].items():
            test = test if isinstance(test, dict) else {}
            for key, kind in (("exact", "Exact"), ("prefix", "Prefix"), ("regex", "RegularExpression")):
                if test.get(key) is not None:
                    conditions.append(Condition("header", str(name), kind, str(test[key])))
                    break
        if conditions:
            out.append(conditions)
    return out


def _istio_backends(route: Any) -> list[tuple[str, int]]:
    dests = route.get("route") if isinstance(route, dict) else None
    return [(str((d.get("destination") or {}).get("host", "")).split(".")[0],
             int(d.get("weight", 100 if len(dests or []) == 1 else 0) or 0))
            for d in dests or [] if isinstance(d, dict)]


def _cpu_target(spec: Obj) -> float | None:
    """The HPA's CPU ``averageUtilization`` target (autoscaling/v2 or the v1 ``targetCPUUtilizationPercentage``)."""
    for metric in spec.get("metrics") or []:
        resource = (metric or {}).get("resource") or {}
        target = resource.get("target") or {}
        if resource.get("name") == "cpu" and target.get("averageUtilization") is not None:
            return float(target["averageUtilization"])
    legacy = spec.get("targetCPUUtilizationPercentage")
    return float(legacy) if legacy is not None else None


def _millicores(quantity: Any) -> float:
    """``100m`` -> 100, ``0.5`` or ``"1"`` -> 500 or 1000; anything else 0."""
    text = str(quantity or "").strip()
    try:
        return float(text[:-1]) if text.endswith("m") else float(text) * 1000
    except ValueError:
        return 0.0


def _http_backends(rule: Any) -> list[tuple[str, int]]:
    refs = rule.get("backendRefs") if isinstance(rule, dict) else None
    return [(str(b.get("name", "")), int(b.get("weight", 1) if b.get("weight") is not None else 1))
            for b in refs or [] if isinstance(b, dict)]


def _resolve(value: Any, desired: int, *, up: bool) -> int:
    """An int-or-percent (``maxSurge: 25%``) against ``desired`` replicas, rounded as Kubernetes rounds it."""
    if isinstance(value, str) and value.endswith("%"):
        share = float(value[:-1]) / 100 * desired
        return math.ceil(share) if up else math.floor(share)
    return int(value)


def _ready_delay(name: str) -> float:
    low, high = READY_DELAY
    return low + (zlib.crc32(name.encode()) % 1000) / 1000 * (high - low)


def _suffix(number: int) -> str:
    digest = hashlib.sha256(str(number).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:5])


def _get_condition(conditions: list[Obj], kind: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def _set_condition(conditions: list[Obj], kind: str, status: str, reason: str, message: str, stamp: str,
                   *, always_update: bool = False) -> None:
    """Kubernetes' SetDeploymentCondition: same status and reason keep the old one (and its times)."""
    current = _get_condition(conditions, kind)
    if current is not None and current.get("status") == status and current.get("reason") == reason \
            and not always_update:
        return
    new = {"type": kind, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
           "reason": reason, "message": message}
    if current is not None:
        if current.get("status") == status:
            new["lastTransitionTime"] = current.get("lastTransitionTime", stamp)
        conditions.remove(current)
    conditions.append(new)


def _progressed(old: Obj, new: Obj) -> bool:
    """Kubernetes' DeploymentProgressing: more updated, fewer old, more ready or more available replicas."""
    def n(status: Obj, name: str) -> int:
        return int(status.get(name, 0) or 0)

    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(new, "replicas") - n(new, "updatedReplicas")
    return (n(new, "updatedReplicas") > n(old, "updatedReplicas") or new_old < old_old
            or n(new, "readyReplicas") > n(old, "readyReplicas")
            or n(new, "availableReplicas") > n(old, "availableReplicas"))


def _parse_stamp(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
