"""Faults on the real API server: the engine killed mid-analysis, the API server stopped and restarted
mid-run (same etcd), a real 409 conflict, and a Canary deleted mid-run."""

from __future__ import annotations

import asyncio
import json

import pytest

from canarylab.controlplane import ControlPlane
from canarylab.engine.kinds import CANARY, DEPLOYMENT, SERVICE, TRAFFIC_SPLIT
from canarylab.engine.ports import ClusterError
from canarylab.kube.cluster import KubeCluster
from canarylab.kube.lab import KubeLab
from tests.realapi.conftest import SeedLab, apply, seed_in, until

pytestmark = pytest.mark.timeout(200)

BACKEND_OF = {"podinfo-canary": "podinfo", "podinfo-primary": "podinfo-primary"}


class Watcher:
    """Samples the routing object and the Deployments: weights in order, and any moment traffic went to a
    Deployment with no ready replicas."""

    def __init__(self, lab: SeedLab) -> None:
        self.lab = lab
        self.weights: list[int] = []
        self.violations: list[str] = []

    async def sample(self) -> str:
        """One sample; returns the phase ("" while the API server does not answer)."""
        try:
            weights = await self.lab.weights()
            for service, weight in weights.items():
                if weight <= 0:
                    continue
                deployment = await self.lab.get(DEPLOYMENT, BACKEND_OF[service])
                ready = int((deployment.get("status") or {}).get("readyReplicas", 0))
                if int(deployment["spec"].get("replicas", 1)) == 0 or ready == 0:
                    self.violations.append(f"{service} had weight {weight} while {BACKEND_OF[service]} had "
                                           f"{deployment['spec'].get('replicas')} replicas, {ready} ready")
            canary = weights.get("podinfo-canary", 0)
            if not self.weights or self.weights[-1] != canary:
                self.weights.append(canary)
            return await self.lab.phase()
        except ClusterError:
            return ""

    async def until_weight(self, weight: int, timeout: float = 60) -> None:
        async def probe() -> bool:
            await self.sample()
            return bool(self.weights) and self.weights[-1] >= weight

        await until(f"canary weight {weight} (seen {self.weights})", probe, timeout, every=0.05)

    async def until_phase(self, phase: str, timeout: float = 90) -> None:
        async def probe() -> bool:
            return await self.sample() == phase

        await until(f"phase {phase} (weights {self.weights})", probe, timeout, every=0.05)


async def canary_events(lab: SeedLab) -> dict[str, int]:
    """message -> count of the Events about the Canary."""
    items = json.loads(await lab.kubectl("get", "events", "-o", "json",
                                         "--field-selector", "involvedObject.kind=Canary"))["items"]
    counts: dict[str, int] = {}
    for event in items:
        counts[event["message"]] = counts.get(event["message"], 0) + int(event.get("count") or 1)
    return counts


async def test_engine_killed_and_api_server_restarted_mid_run_lose_nothing(seed: SeedLab) -> None:
    lab, ns, plane = seed, seed.namespace, seed.plane
    await apply(plane, seed_in(ns, metrics_server=lab.prometheus.url, loadtester=lab.loadtester.url,
                               stepWeight=10, maxWeight=30))
    first = await lab.start_engine()
    await until("Initialized", lambda: _phase_is(lab, "Initialized"), 60)
    watcher = Watcher(lab)
    await lab.set_image("6.0.1")
    await watcher.until_weight(10)

    # When the engine is killed mid-analysis (SIGKILL: no chance to write anything)
    await first.kill()
    stored = await lab.get(CANARY, "podinfo")
    assert stored["status"]["phase"] == "Progressing" and stored["status"]["canaryWeight"] == 10
    # and a new engine starts, then it resumes from the Canary's status: the next step is 20, not a new run
    second = await lab.start_engine()
    await watcher.until_weight(20)

    # When the API server is stopped mid-run and started again on the same etcd
    await asyncio.to_thread(plane.stop_component, "kube-apiserver")
    await asyncio.sleep(4)
    await asyncio.to_thread(plane.start_component, "kube-apiserver", 60)

    # then the engine reconnects its watches and finishes the run
    await watcher.until_phase("Succeeded", 120)
    assert [w for w in watcher.weights if w > 0] == [10, 20, 30], watcher.weights
    assert watcher.violations == []
    assert await lab.image("podinfo-primary") == "ghcr.io/stefanprodan/podinfo:6.0.1"
    assert await lab.replicas("podinfo") == 0
    # nothing was repeated or lost: each step recorded once, the revision detected once
    counts = await canary_events(lab)
    for message in (f"New revision detected! Scaling up podinfo.{ns}", f"Advance podinfo.{ns} canary weight 10",
                    f"Advance podinfo.{ns} canary weight 20", f"Advance podinfo.{ns} canary weight 30",
                    f"Promotion completed! Scaling down podinfo.{ns}"):
        assert counts.get(message) == 1, (message, counts)
    # and the second engine said it lost the API server and found it again
    log = second.stderr()
    assert "cannot reach the Kubernetes API server of context 'canarylab-kwok'" in log, log[-2000:]
    assert "answers again" in log


async def test_a_canary_deleted_mid_run_is_finalized(seed: SeedLab) -> None:
    lab, ns = seed, seed.namespace
    await apply(lab.plane, seed_in(ns, metrics_server=lab.prometheus.url, loadtester=lab.loadtester.url,
                                   stepWeight=10, maxWeight=30, spec={"revertOnDeletion": True}))
    await lab.start_engine()
    await until("Initialized", lambda: _phase_is(lab, "Initialized"), 60)
    canary = await lab.get(CANARY, "podinfo")
    assert "finalizer.flagger.app" in canary["metadata"].get("finalizers", [])
    watcher = Watcher(lab)
    await lab.set_image("6.0.1")
    await watcher.until_weight(10)
    # When the user deletes the Canary mid-run
    await lab.kubectl("delete", "canary", "podinfo", "--wait=false")

    # then the engine hands the workload back and removes its finalizer; Kubernetes deletes the Canary and
    # garbage-collects what it owned (primary, generated Services, TrafficSplit)
    async def gone() -> bool:
        return await lab.cluster.get(CANARY, ns, "podinfo") is None

    await until("the Canary to be deleted", gone, 60)
    assert await lab.replicas("podinfo") > 0  # the target runs again

    async def collected() -> bool:
        return (await lab.cluster.get(DEPLOYMENT, ns, "podinfo-primary") is None
                and await lab.cluster.get(TRAFFIC_SPLIT, ns, "podinfo") is None
                and await lab.cluster.get(SERVICE, ns, "podinfo-primary") is None)

    await until("the garbage collector to remove the primary, its Service and the TrafficSplit", collected, 60)
    messages = await lab.event_messages()
    assert f"Terminating canary podinfo.{ns}" in messages


async def test_a_real_conflict_is_retried(lab_crds: ControlPlane, kube_namespace: str) -> None:
    # Given the target Deployment, and a second writer that changes it between canarylab's read and write
    ns = kube_namespace
    cluster = await KubeCluster.connect(lab_crds.context, kubeconfig=str(lab_crds.kubeconfig))
    other = await KubeCluster.connect(lab_crds.context, kubeconfig=str(lab_crds.kubeconfig))
    await cluster.create({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": "podinfo", "namespace": ns},
                          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "podinfo"}},
                                   "template": {"metadata": {"labels": {"app": "podinfo"}},
                                                "spec": {"containers": [{"name": "podinfod", "image": "podinfo:1"}]}}}})
    real_get = cluster.get
    raced = []

    async def racing_get(kind, namespace, name):  # type: ignore[no-untyped-def]
        obj = await real_get(kind, namespace, name)
        if kind == DEPLOYMENT and not raced:
            raced.append(True)  # someone (an HPA, kubectl scale) writes right after our read
            await other.patch(DEPLOYMENT, namespace, name, {"metadata": {"labels": {"scaled": "yes"}}})
        return obj

    cluster.get = racing_get  # type: ignore[method-assign]
    lab = KubeLab(lab_crds.context, [ns], kubeconfig=str(lab_crds.kubeconfig), log=lambda line: None)
    lab._cluster = cluster  # the lab's set_image uses this adapter
    # when canarylab sets the image (read, change, replace with the resourceVersion read)
    await lab.set_image(ns, "podinfo", "podinfod", "podinfo:2")
    # then the real API server answered 409 once, canarylab read again and wrote on top of the other change
    stored = await real_get(DEPLOYMENT, ns, "podinfo")
    assert stored is not None
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:2"
    assert stored["metadata"]["labels"] == {"scaled": "yes"}
    assert raced == [True]


async def _phase_is(lab: SeedLab, phase: str) -> bool:
    return await lab.phase() == phase
