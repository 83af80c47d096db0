"""The simulated cluster behaves like Kubernetes where the engine looks: pods, rollouts, status, HPA."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from canarylab.engine.clock import LoopClock, run_virtual
from canarylab.engine.kinds import DEPLOYMENT, HPA, POD, Obj
from canarylab.sim.cluster import SimCluster
from canarylab.sim.workloads import Fault


def deployment(name: str = "web", replicas: int | None = 3, image: str = "stefanprodan/podinfo:3.1.0",
               **spec: Any) -> Obj:
    body: Obj = {
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "app", "image": image}]}},
        **spec,
    }  # fmt: skip
    if replicas is not None:
        body["replicas"] = replicas
    return DEPLOYMENT.new("test", name, spec=body)


def in_lab(scenario: Callable[[SimCluster], Awaitable[None]]) -> None:
    """Run ``scenario`` against a SimCluster whose controllers run, on virtual time."""

    async def main() -> None:
        cluster = SimCluster(LoopClock())
        task = asyncio.create_task(cluster.run())
        try:
            await scenario(cluster)
        finally:
            task.cancel()

    run_virtual(main())


def status(cluster: SimCluster, name: str = "web") -> Obj:
    obj = cluster.get_now(DEPLOYMENT, "test", name)
    assert obj is not None
    return dict(obj.get("status") or {})


def condition(cluster: SimCluster, kind: str, name: str = "web") -> Obj:
    return next(c for c in status(cluster, name)["conditions"] if c["type"] == kind)


def pods(cluster: SimCluster) -> list[Obj]:
    return cluster.list_now(POD, "test")


def test_replicas_become_pods_that_get_ready_after_a_short_delay() -> None:
    async def scenario(cluster: SimCluster) -> None:
        created = cluster.create_now(deployment(replicas=3))
        # When the Deployment is created, then its pods exist at once, not ready yet
        assert status(cluster)["observedGeneration"] == created["metadata"]["generation"]
        assert len(pods(cluster)) == 3
        assert all(p["metadata"]["labels"]["pod-template-hash"] for p in pods(cluster))
        assert "readyReplicas" not in status(cluster)
        assert condition(cluster, "Available")["reason"] == "MinimumReplicasUnavailable"
        await asyncio.sleep(1)
        assert "readyReplicas" not in status(cluster)  # ready after 2-5 s, not at once
        await asyncio.sleep(5)
        # Then they are ready, and the status reads as Kubernetes writes it
        s = status(cluster)
        assert {k: s.get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} == \
            {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
        assert "unavailableReplicas" not in s
        assert condition(cluster, "Available")["status"] == "True"
        assert condition(cluster, "Progressing")["reason"] == "NewReplicaSetAvailable"
        assert all(p["status"]["phase"] == "Running" for p in pods(cluster))

    in_lab(scenario)


def test_a_rolling_update_with_max_unavailable_0_never_drops_below_the_desired_replicas() -> None:
    async def scenario(cluster: SimCluster) -> None:
        cluster.create_now(deployment(replicas=3))
        await asyncio.sleep(6)
        old_hash = pods(cluster)[0]["metadata"]["labels"]["pod-template-hash"]
        cluster.patch_now(DEPLOYMENT, "test", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "stefanprodan/podinfo:3.1.1"}]}}}})
        s = status(cluster)
        assert s["observedGeneration"] == 2 and s["updatedReplicas"] == 1  # maxSurge 25% of 3 -> 1 new pod
        assert condition(cluster, "Progressing")["reason"] == "ReplicaSetUpdated"
        seen_terminating = False
        for _ in range(40):
            await asyncio.sleep(0.5)
            live = [p for p in pods(cluster) if "deletionTimestamp" not in p["metadata"]]
            ready = [p for p in live if p["status"]["conditions"][0]["status"] == "True"]
            assert len(ready) >= 3, "availability dropped during the rollout"
            seen_terminating |= any("deletionTimestamp" in p["metadata"] for p in pods(cluster))
        assert seen_terminating, "old pods terminate before they are gone"
        hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in pods(cluster)}
        assert len(pods(cluster)) == 3 and old_hash not in hashes
        assert condition(cluster, "Progressing")["reason"] == "NewReplicaSetAvailable"
        assert status(cluster)["updatedReplicas"] == 3

    in_lab(scenario)


def test_pods_that_never_get_ready_exceed_the_progress_deadline() -> None:
    async def scenario(cluster: SimCluster) -> None:
        cluster.create_now(deployment(replicas=2, progressDeadlineSeconds=20))
        await asyncio.sleep(6)
        # a new revision whose pods never get ready (the fault belongs to the revision it is injected into)
        cluster.patch_now(DEPLOYMENT, "test", "web", {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})
        cluster.set_fault("test", "web", Fault(never_ready=True))
        await asyncio.sleep(10)
        assert condition(cluster, "Progressing")["reason"] == "ReplicaSetUpdated"
        await asyncio.sleep(15)
        progressing = condition(cluster, "Progressing")
        assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
        assert status(cluster)["availableReplicas"] == 2  # the old pods keep serving
        # When the fault is cleared, the stuck pods get ready and the rollout completes
        cluster.clear_fault("test", "web")
        await asyncio.sleep(20)
        assert condition(cluster, "Progressing")["reason"] == "NewReplicaSetAvailable"

    in_lab(scenario)


def test_scaling_to_zero_terminates_every_pod_and_omits_zero_counters() -> None:
    async def scenario(cluster: SimCluster) -> None:
        cluster.create_now(deployment(replicas=2))
        await asyncio.sleep(6)
        cluster.patch_now(DEPLOYMENT, "test", "web", {"spec": {"replicas": 0}})
        assert all("deletionTimestamp" in p["metadata"] for p in pods(cluster))
        await asyncio.sleep(3)
        assert pods(cluster) == []
        s = status(cluster)
        assert s["observedGeneration"] == 2
        assert not {"replicas", "readyReplicas", "availableReplicas", "updatedReplicas"} & set(s)

    in_lab(scenario)


def test_the_hpa_keeps_replicas_within_its_bounds_but_never_scales_zero() -> None:
    async def scenario(cluster: SimCluster) -> None:
        for name, replicas in (("low", 1), ("high", 6), ("off", 0)):
            cluster.create_now(deployment(name, replicas=replicas))
            cluster.create_now(HPA.new("test", name, spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 2, "maxReplicas": 4}))  # fmt: skip
        await asyncio.sleep(1)
        scaled = {n: (cluster.get_now(DEPLOYMENT, "test", n) or {})["spec"]["replicas"] for n in ("low", "high", "off")}
        assert scaled == {"low": 2, "high": 4, "off": 0}
        hpa = cluster.get_now(HPA, "test", "high")
        assert hpa is not None and hpa["status"] == {"currentReplicas": 6, "desiredReplicas": 4}

    in_lab(scenario)
