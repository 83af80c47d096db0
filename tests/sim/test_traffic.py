"""Traffic to an apex Service follows the routing object's weights; other Services resolve by selector."""

from __future__ import annotations

import asyncio

import pytest

from canarylab.engine.clock import LoopClock, run_virtual
from canarylab.engine.kinds import DEPLOYMENT, HTTP_ROUTE, SERVICE, TRAFFIC_SPLIT, Obj
from canarylab.sim.cluster import SimCluster
from canarylab.sim.metrics import LinkerdMetrics
from canarylab.sim.traffic import Traffic
from canarylab.sim.workloads import Fault


def app(name: str, replicas: int) -> list[Obj]:
    return [
        DEPLOYMENT.new("test", name, spec={
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "podinfod", "image": "stefanprodan/podinfo:3.1.0"}]}}}),
        SERVICE.new("test", name, spec={"selector": {"app": name}, "ports": [{"name": "http", "port": 9898}]}),
    ]  # fmt: skip


def split(kind: str, primary: int, canary: int) -> Obj:
    if kind == "TrafficSplit":
        return TRAFFIC_SPLIT.new("test", "podinfo", spec={"service": "podinfo", "backends": [
            {"service": "podinfo-primary", "weight": primary}, {"service": "podinfo-canary", "weight": canary}]})
    return HTTP_ROUTE.new("test", "podinfo", spec={
        "parentRefs": [{"name": "podinfo", "kind": "Service", "group": "core", "port": 9898}],
        "rules": [{"backendRefs": [{"name": "podinfo-primary", "port": 9898, "weight": primary},
                                   {"name": "podinfo-canary", "port": 9898, "weight": canary}]}]})  # fmt: skip


@pytest.mark.parametrize("router", ["TrafficSplit", "HTTPRoute"])
def test_the_apex_service_splits_by_the_routing_objects_weights(router: str) -> None:
    shares: dict[str, float] = {}

    async def main() -> None:
        cluster = SimCluster(LoopClock())
        task = asyncio.create_task(cluster.run())
        cluster.load([*app("podinfo-primary", 2), *app("podinfo-canary", 1),
                      SERVICE.new("test", "podinfo", spec={"selector": {"app": "podinfo-primary"},
                                                           "ports": [{"port": 9898}]}),
                      split(router, 90, 10)])  # fmt: skip
        await asyncio.sleep(6)
        traffic = Traffic(cluster, LinkerdMetrics())
        for pod, share in traffic.endpoints("test", "podinfo"):
            shares[pod.deployment] = shares.get(pod.deployment, 0) + share
        # Other services ignore the split: the canary service reaches the canary pods only
        assert {p.deployment for p, _ in traffic.endpoints("test", "podinfo-canary")} == {"podinfo-canary"}
        task.cancel()

    run_virtual(main())
    assert shares == pytest.approx({"podinfo-primary": 0.9, "podinfo-canary": 0.1})


def test_load_on_the_apex_lands_on_both_versions_and_a_fault_shows_in_the_canarys_success_rate() -> None:
    async def main() -> None:
        cluster = SimCluster(LoopClock())
        task = asyncio.create_task(cluster.run())
        cluster.load([*app("podinfo-primary", 1), *app("podinfo-canary", 1),
                      SERVICE.new("test", "podinfo", spec={"selector": {"app": "podinfo-primary"},
                                                           "ports": [{"port": 9898}]}),
                      split("TrafficSplit", 50, 50)])  # fmt: skip
        await asyncio.sleep(6)
        store = LinkerdMetrics()
        for pods in cluster.pods.values():
            for pod in pods.values():
                store.add_pod(pod.namespace, pod.deployment, pod.name, pod.hash)
        traffic = Traffic(cluster, store)
        cluster.set_fault("test", "podinfo-canary", Fault(error_rate=0.2))
        start = cluster.clock.now()
        assert traffic.start_load("hey", "http://podinfo.test:9898/", 10, 60) is None
        for second in range(1, 61):
            traffic.step(start + second)
        now = start + 60
        served = {name: sum(e.ok + e.fail for e in store.window("test", name, now, 60))
                  for name in ("podinfo-primary", "podinfo-canary")}
        assert served == pytest.approx({"podinfo-primary": 300, "podinfo-canary": 300})
        assert store.success_rate("test", "podinfo-canary", now, 60) == pytest.approx(80)
        assert store.success_rate("test", "podinfo-primary", now, 60) == pytest.approx(100)
        assert traffic.start_load("x", "http://podinfo.test:80/", 10, 60) is not None  # not a port of the Service
        task.cancel()

    run_virtual(main())
