"""Simulated traffic, in time slices: background users on each apex Service, loads started by ``hey``.

Every slice (1 s of lab time) each flow's requests are spread over the pods behind its Service: an apex
Service with a routing object (TrafficSplit or HTTPRoute) splits by the backends' weights, any other
Service resolves by selector to its ready pods. Each pod then records the requests in its Linkerd
counters with its behaviour (healthy, or the injected fault). Flows are counted, not simulated request
by request, so hundreds of canaries stay cheap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from canarylab.engine.kinds import Obj
from canarylab.engine.ports import Clock
from canarylab.sim.cluster import MatchedRule, ServiceInfo, SetCookies, SimPod
from canarylab.sim.metrics import LinkerdMetrics
from canarylab.sim.sessions import Users, pick_backend
from canarylab.sim.workloads import (
    APP_PODINFO,
    HEALTHY,
    Behaviour,
    Fault,
    HttpAnswer,
    app_of_image,
    behaviour,
    podinfo_answer,
)

BACKGROUND_RPS = 3.0
"""Requests per second a few real users send to every Canary's apex Service."""
SLICE_SECONDS = 1.0
CLUSTER_DOMAIN = "svc.cluster.local"


class Topology(Protocol):
    """Where traffic can go: what the network reads from a cluster. :class:`~canarylab.sim.cluster.SimCluster`
    keeps it for the simulated lab; :class:`~canarylab.sim.attached.ClusterView` from a real API server."""

    @property
    def clock(self) -> Clock: ...
    @property
    def services(self) -> dict[tuple[str, str], ServiceInfo]: ...
    @property
    def routes(self) -> dict[tuple[str, str], list[tuple[str, int]]]: ...
    @property
    def matched_routes(self) -> dict[tuple[str, str], list[MatchedRule]]: ...
    @property
    def mirrors(self) -> dict[tuple[str, str], tuple[str, float]]: ...
    @property
    def set_cookies(self) -> dict[tuple[str, str], SetCookies]: ...
    @property
    def canaries(self) -> dict[tuple[str, str], Obj]: ...
    @property
    def pods(self) -> dict[tuple[str, str], dict[str, SimPod]]: ...
    @property
    def topology(self) -> int: ...

    def ready_pods(self, namespace: str, selector: dict[str, str]) -> list[SimPod]:
        """Ready pods matching every entry of ``selector``, sorted by name."""
        ...

    def fault_of(self, pod: SimPod) -> Fault | None:
        """The fault injected into the pod's Deployment, if any."""
        ...

    def record_load(self, requests: dict[tuple[str, str], float], seconds: float) -> None:
        """The requests each pod ``(namespace, pod)`` served in the last ``seconds`` (the HPA's CPU)."""
        ...


@dataclass(frozen=True)
class Target:
    """A URL resolved to a simulated Service."""

    namespace: str
    service: str
    port: int
    path: str


@dataclass
class Load:
    """Requests at ``rps`` on a Service until lab time ``until`` (a ``hey`` run)."""

    target: Target
    rps: float
    until: float
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()


class Traffic:
    """The lab's network: resolves URLs to pods, answers single requests, and runs the time slices."""

    def __init__(self, cluster: Topology, metrics: LinkerdMetrics, *, home_namespace: str = "test",
                 seed: int = 1) -> None:
        self.cluster = cluster
        self.metrics = metrics
        self.home_namespace = home_namespace
        self.loads: dict[str, Load] = {}
        self.background_rps = BACKGROUND_RPS
        self._rng = random.Random(seed)
        self.users = Users()
        """The background users of apex Services with session affinity (their cookie jars)."""
        self._cache: dict[tuple[str, ...] | tuple[str, str, int], tuple[int, list[tuple[SimPod, float]]]] = {}
        self._picks: dict[tuple[str, str], int] = {}
        self._last: float | None = None

    # ---------------------------------------------------------------------------------- URLs

    def resolve(self, url: str, namespace: str | None = None) -> Target | str:
        """The Service a URL names (``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local``, ``svc``), or why not."""
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return f"URL {url} has an invalid port"
        name, ns = self.service_of_host(host, namespace or self.home_namespace)
        if name is None or (ns, name) not in self.cluster.services:
            return f"Could not resolve host: {host}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        ports = [int(p.get("port", 0)) for p in self.cluster.services[(ns, name)].ports]
        if ports and port not in ports:
            return f"Failed to connect to {host} port {port}: Connection refused (service {name}.{ns} has ports " \
                   + ", ".join(map(str, ports)) + ")"
        return Target(ns, name, port, path)

    def service_of_host(self, host: str, namespace: str) -> tuple[str | None, str]:
        """``(service, namespace)`` for a cluster DNS name; ``(None, ...)`` when it is not one."""
        labels = host.split(".")
        if host.endswith("." + CLUSTER_DOMAIN):
            labels = labels[: -len(CLUSTER_DOMAIN.split("."))]
        elif labels[-1:] == ["svc"]:
            labels = labels[:-1]
        if len(labels) == 1 and labels[0]:
            return labels[0], namespace
        if len(labels) == 2 and all(labels):
            return labels[0], labels[1]
        return None, namespace

    # ---------------------------------------------------------------------------------- routing

    def endpoints(self, namespace: str, service: str, headers: tuple[tuple[str, str], ...] = (),
                  path: str = "/") -> list[tuple[SimPod, float]]:
        """Pods that answer requests to a Service and each one's share (shares of absent backends are lost).

        An HTTPRoute with header matches (A/B testing) sends the requests that match its first matching
        rule to that rule's backends; every other request takes the route's last rule.
        """
        key = (namespace, service)
        rule = self._matching_rule(key, headers, path) if headers else None
        cache_key = (namespace, service) if rule is None else (namespace, service, rule)
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] == self.cluster.topology:
            return cached[1]
        out: list[tuple[SimPod, float]] = []
        backends = self.cluster.routes.get(key) if rule is None else self.cluster.matched_routes[key][rule][1]
        if backends:
            total = sum(max(0, w) for _, w in backends)
            for backend, weight in backends:
                info = self.cluster.services.get((namespace, backend))
                if total <= 0 or weight <= 0 or info is None:
                    continue
                pods = self.cluster.ready_pods(namespace, info.selector)
                out.extend((pod, weight / total / len(pods)) for pod in pods)
        else:
            info = self.cluster.services.get(key)
            pods = self.cluster.ready_pods(namespace, info.selector) if info is not None else []
            out.extend((pod, 1 / len(pods)) for pod in pods)
        self._cache[cache_key] = (self.cluster.topology, out)
        return out

    def _matching_rule(self, key: tuple[str, str], headers: tuple[tuple[str, str], ...], path: str) -> int | None:
        given = {name.lower(): value for name, value in headers}
        for index, (alternatives, _) in enumerate(self.cluster.matched_routes.get(key, ())):
            if any(all(condition.matches(given, path) for condition in conditions) for conditions in alternatives):
                return index
        return None

    def behaviour_of(self, pod: SimPod, method: str = "GET", path: str = "/") -> Behaviour:
        """How ``pod`` answers ``method path`` now: its fault, and podinfo's own 5xx paths."""
        fault = self.cluster.fault_of(pod)
        how = HEALTHY if fault is None else behaviour(fault)
        if path != "/" and pod.images and app_of_image(pod.images[0]) == APP_PODINFO:
            answer = podinfo_answer(method, path, "", pod=pod.name, image=pod.images[0], failed=False)
            if answer.status >= 500:
                return Behaviour(1.0, how.latency)
        return how

    # ---------------------------------------------------------------------------------- Network port

    def now(self) -> float:
        """Lab seconds."""
        return self.cluster.clock.now()

    def request(self, method: str, url: str, body: str, namespace: str | None = None) -> HttpAnswer | str:
        """One request: the answer of the pod it lands on (recorded in its metrics), or a curl-style error."""
        target = self.resolve(url, namespace)
        if isinstance(target, str):
            return target
        pod = self.pick(target)
        if pod is None:
            # the mesh answers for a Service without a ready endpoint, as Linkerd's proxy does
            return HttpAnswer(503, "Service Unavailable")
        how = behaviour(self.cluster.fault_of(pod))
        failed = self._rng.random() < how.error_rate
        image = pod.images[0] if pod.images else ""
        if app_of_image(image) == APP_PODINFO:
            answer = podinfo_answer(method, target.path, body, pod=pod.name, image=image, failed=failed)
        else:
            answer = HttpAnswer(500, "Internal Server Error") if failed else HttpAnswer(200, "OK")
        self.metrics.record(pod.namespace, pod.name, 1, Behaviour(1.0 if answer.status >= 500 else 0.0,
                                                                    how.latency), self._slice_end())
        return answer

    def pick(self, target: Target) -> SimPod | None:
        """The pod one request to ``target`` lands on (weighted, deterministic round robin)."""
        endpoints = self.endpoints(target.namespace, target.service)
        total = sum(share for _, share in endpoints)
        if total <= 0:
            return None
        key = (target.namespace, target.service)
        n = self._picks.get(key, 0)
        self._picks[key] = n + 1
        point = ((n * 0.6180339887498949) % 1.0) * total
        for pod, share in endpoints:
            point -= share
            if point < 0:
                return pod
        return endpoints[-1][0]

    def start_load(self, key: str, url: str, rps: float, duration: float,
                   headers: tuple[tuple[str, str], ...] = (), namespace: str | None = None) -> str | None:
        """Start ``rps`` requests per second on ``url`` (with ``headers``) for ``duration`` lab seconds; an error
        text if impossible."""
        target = self.resolve(url, namespace)
        if isinstance(target, str):
            return target
        self.loads[key] = Load(target, rps, self.now() + duration, headers=headers)
        return None

    # ---------------------------------------------------------------------------------- slices

    def _slice_end(self) -> float:
        now = self.now()
        return now if self._last is None else max(now, self._last)

    def step(self, now: float) -> None:
        """Account the traffic of the slice that ends at lab time ``now``."""
        start = now - SLICE_SECONDS if self._last is None else self._last
        dt = now - start
        self._last = now
        if dt <= 0:
            return
        batch: list[tuple[str, str, float, Behaviour]] = []
        for (namespace, _), canary in self.cluster.canaries.items():
            spec = canary.get("spec") or {}
            apex = (spec.get("service") or {}).get("name") or (spec.get("targetRef") or {}).get("name")
            if not apex:
                continue
            if (namespace, str(apex)) in self.cluster.set_cookies or (namespace, str(apex)) in self.users.by_service:
                self._session_flow(batch, namespace, str(apex), self.background_rps * dt, "GET", "/")
            else:
                self._flow(batch, namespace, str(apex), self.background_rps * dt, "GET", "/")
        for key, load in list(self.loads.items()):
            seconds = min(now, load.until) - start
            if seconds > 0:
                self._flow(batch, load.target.namespace, load.target.service, load.rps * seconds, load.method,
                           load.target.path, load.headers)
            if load.until <= now:
                del self.loads[key]
        self.metrics.record_many(batch, now)
        served: dict[tuple[str, str], float] = {}
        for namespace, pod, requests, _ in batch:
            served[(namespace, pod)] = served.get((namespace, pod), 0.0) + requests
        self.cluster.record_load(served, dt)

    def _flow(self, batch: list[tuple[str, str, float, Behaviour]], namespace: str, service: str, requests: float,
              method: str, path: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        for pod, share in self.endpoints(namespace, service, headers, path):
            batch.append((namespace, pod.name, requests * share, self.behaviour_of(pod, method, path)))
        self._mirror(batch, namespace, service, requests, method, path)

    def _session_flow(self, batch: list[tuple[str, str, float, Behaviour]], namespace: str, service: str,
                      requests: float, method: str, path: str) -> None:
        """The requests of the Service's background users, each with its cookies (see :mod:`canarylab.sim.sessions`):
        the users who visit in this slice send theirs; a route matching a user's cookies sends it where that route
        says, else the weighted split picks one backend for the visit; the answer's ``Set-Cookie`` is kept in the
        user's jar."""
        key = (namespace, service)
        users = self.users.of(namespace, service)
        cookies = self.cluster.set_cookies.get(key)
        now = self.now()
        each = requests / len(users)
        whole, part = int(each), each - int(each)
        for user in users:
            visits = whole + (1 if self._rng.random() < part else 0)
            if visits == 0:
                continue
            sent = user.jar.header(now)
            rule = self._matching_rule(key, (("Cookie", sent),), path) if sent else None
            matched = self.cluster.matched_routes[key][rule][1] if rule is not None else None
            backends = matched if matched is not None else self.cluster.routes.get(key) or []
            chosen = pick_backend(backends, self._rng) if backends else service
            info = self.cluster.services.get((namespace, chosen)) if chosen else None
            pods = self.cluster.ready_pods(namespace, info.selector) if info is not None else []
            if chosen is None or not pods:
                continue  # no backend answers: the requests are lost, no cookie is set
            for pod in pods:
                batch.append((namespace, pod.name, visits / len(pods), self.behaviour_of(pod, method, path)))
            user.last_backend = chosen
            if cookies is not None:
                answer = cookies.backends.get(chosen) if rule is None else cookies.rules.get(rule)
                if answer:
                    user.jar.store(answer, now)
        self._mirror(batch, namespace, service, requests, method, path)

    def _mirror(self, batch: list[tuple[str, str, float, Behaviour]], namespace: str, service: str,
                requests: float, method: str, path: str) -> None:
        mirror = self.cluster.mirrors.get((namespace, service))
        if mirror is not None:
            # mirrored copies reach the mirror Service's pods (their metrics count them); answers are dropped
            target, fraction = mirror
            for pod, share in self.endpoints(namespace, target):
                batch.append((namespace, pod.name, requests * fraction * share, self.behaviour_of(pod, method, path)))
