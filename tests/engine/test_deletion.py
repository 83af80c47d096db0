"""Deleting a Canary (flagger-spec 2.15, acceptance scenario 35) and the cluster semantics it relies on.

The cluster scenarios run against the in-memory cluster and the simulated lab's cluster (its subclass). They
are not in tests/contract because the kmock API server there deletes at once (no finalizers, no garbage
collector); a real API server does both itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from canarylab.engine.clock import LoopClock, run_virtual
from canarylab.engine.events import CanaryRemoved, EngineNotice, PhaseChanged
from canarylab.engine.finalizer import FINALIZER
from canarylab.engine.kinds import CANARY, CONFIG_MAP, DEPLOYMENT, HPA, SERVICE, TRAFFIC_SPLIT, Obj
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.ports import WatchEvent
from canarylab.sim.cluster import SimCluster
from canarylab.sim.workloads import Fault
from tests.engine.conftest import canary, podinfo
from tests.engine.test_engine import EPOCH, Run, virtual

pytestmark = pytest.mark.timeout(30)

# ------------------------------------------------------------------------------------ the cluster

Clusters = Callable[[], MemoryCluster]
CLUSTERS: dict[str, Clusters] = {
    "memory": lambda: MemoryCluster(LoopClock(epoch=EPOCH)),
    "sim": lambda: SimCluster(LoopClock(epoch=EPOCH)),
}


def in_cluster(scenario: Callable[[MemoryCluster], Awaitable[None]]) -> Callable[[str], None]:
    """Run ``scenario`` on the virtual clock against each kind of in-memory cluster."""

    @pytest.mark.parametrize("flavour", sorted(CLUSTERS))
    def wrapper(flavour: str) -> None:
        async def main() -> None:
            await scenario(CLUSTERS[flavour]())

        run_virtual(main)

    wrapper.__name__ = scenario.__name__
    return wrapper


def config_map(name: str, *owners: Obj, finalizers: list[str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "test", "ownerReferences": [
        {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
         "uid": o["metadata"]["uid"], "controller": i == 0} for i, o in enumerate(owners)]}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


async def collect(cluster: MemoryCluster) -> tuple[list[WatchEvent], asyncio.Task[None]]:
    """Every Canary watch event from now on (the task runs until cancelled)."""
    seen: list[WatchEvent] = []

    async def pump() -> None:
        async for ev in cluster.watch(CANARY, "test"):
            seen.append(ev)

    task = asyncio.create_task(pump())
    await asyncio.sleep(0)
    return seen, task


@in_cluster
async def test_deleting_an_object_with_finalizers_marks_it_until_the_last_one_is_removed(
        cluster: MemoryCluster) -> None:
    # Given a Canary with two finalizers, and a watch on Canaries
    obj = canary()
    obj["metadata"]["finalizers"] = [FINALIZER, "example.com/other"]
    created = cluster.create_now(obj)
    seen, task = await collect(cluster)
    # When it is deleted
    await cluster.delete(CANARY, "test", "podinfo")
    await asyncio.sleep(0)
    # Then it is still there, with a deletionTimestamp, a bumped generation, and the watch saw a MODIFIED event
    marked = cluster.get_now(CANARY, "test", "podinfo")
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["generation"] == created["metadata"]["generation"] + 1
    assert [e.type for e in seen] == ["ADDED", "MODIFIED"]
    assert seen[-1].object["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    # and deleting again, or writing, changes neither the mark nor its time
    await cluster.delete(CANARY, "test", "podinfo")
    await cluster.patch(CANARY, "test", "podinfo", {"metadata": {"deletionTimestamp": None, "labels": {"a": "b"}}})
    again = cluster.get_now(CANARY, "test", "podinfo")
    assert again is not None and again["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    # When one finalizer goes, it stays; when the last goes, it is gone with one DELETED event
    await cluster.patch(CANARY, "test", "podinfo", {"metadata": {"finalizers": ["example.com/other"]}})
    assert cluster.get_now(CANARY, "test", "podinfo") is not None
    await cluster.patch(CANARY, "test", "podinfo", {"metadata": {"finalizers": None}})
    await asyncio.sleep(0)
    assert cluster.get_now(CANARY, "test", "podinfo") is None
    assert [e.type for e in seen] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    task.cancel()


@in_cluster
async def test_removing_an_owner_garbage_collects_what_it_owned(cluster: MemoryCluster) -> None:
    # Given a Canary owning a ConfigMap, which owns another; and a ConfigMap owned by the Canary and a Deployment
    owner = cluster.create_now(canary())
    other = cluster.create_now(podinfo())
    child = cluster.create_now(config_map("child", owner))
    cluster.create_now(config_map("grandchild", child))
    cluster.create_now(config_map("shared", owner, other))
    cluster.create_now(config_map("unrelated"))
    # When the Canary is deleted (no finalizers)
    await cluster.delete(CANARY, "test", "podinfo")
    # Then what it owned is gone, transitively; the shared one stays and only loses the dangling reference
    names = [c["metadata"]["name"] for c in cluster.list_now(CONFIG_MAP, "test")]
    assert names == ["shared", "unrelated"]
    shared = cluster.get_now(CONFIG_MAP, "test", "shared")
    assert shared is not None
    assert [r["uid"] for r in shared["metadata"]["ownerReferences"]] == [other["metadata"]["uid"]]


@in_cluster
async def test_an_owner_with_finalizers_is_collected_only_when_it_is_gone(cluster: MemoryCluster) -> None:
    obj = canary()
    obj["metadata"]["finalizers"] = [FINALIZER]
    owner = cluster.create_now(obj)
    cluster.create_now(config_map("child", owner, finalizers=["example.com/keep"]))
    # When the owner is deleted, its dependents stay while it waits for its finalizer
    cluster.delete_now(CANARY, "test", "podinfo")
    child = cluster.get_now(CONFIG_MAP, "test", "child")
    assert child is not None and "deletionTimestamp" not in child["metadata"]
    # When its finalizer is removed, the dependent is deleted in turn (and waits for its own finalizer)
    cluster.patch_now(CANARY, "test", "podinfo", {"metadata": {"finalizers": []}})
    child = cluster.get_now(CONFIG_MAP, "test", "child")
    assert child is not None and child["metadata"]["deletionTimestamp"]
    cluster.patch_now(CONFIG_MAP, "test", "child", {"metadata": {"finalizers": None}})
    assert cluster.list_now(CONFIG_MAP, "test") == []


# ------------------------------------------------------------------------------------ the engine


def reverting(**analysis: object) -> Obj:
    obj = canary(**analysis)
    obj["spec"]["revertOnDeletion"] = True
    return obj


def user_apex(selector: dict[str, str], applied: dict[str, str] | None) -> Obj:
    """A ``podinfo`` Service the user created (``kubectl apply``), adopted by the Canary."""
    meta: Obj = {"name": "podinfo", "namespace": "test"}
    spec = {"type": "ClusterIP", "selector": selector,
            "ports": [{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}]}
    if applied is not None:
        last = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {**spec, "selector": applied}}
        meta = {**meta, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(last)}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def finalizers(run: Run) -> list[str]:
    obj = run.cluster.get_now(CANARY, "test", "podinfo")
    assert obj is not None
    return list(obj["metadata"].get("finalizers") or [])


def gone(run: Run) -> bool:
    return run.cluster.get_now(CANARY, "test", "podinfo") is None


def replicas(run: Run, name: str = "podinfo") -> int:
    obj = run.cluster.get_now(DEPLOYMENT, "test", name)
    assert obj is not None
    return int(obj["spec"]["replicas"])


def names(run: Run) -> dict[str, list[str]]:
    return {kind.kind: [o["metadata"]["name"] for o in run.cluster.list_now(kind, "test")]
            for kind in (DEPLOYMENT, SERVICE, TRAFFIC_SPLIT, HPA)}


@virtual
async def test_35_revert_on_deletion_scales_the_target_back_and_lets_the_canary_go() -> None:
    # Given revertOnDeletion, a primary at 2 replicas and an initialized Canary
    run = Run([podinfo(replicas=2), reverting()])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    # Then it carries Flagger's finalizer
    assert finalizers(run) == [FINALIZER]
    assert replicas(run) == 0
    # When the Canary is deleted
    run.cluster.delete_now(CANARY, "test", "podinfo")
    took = await run.until(lambda: gone(run), limit=60)
    # Then within a second: Terminating, the target at the primary's replicas and ready, finalizer off, Terminated
    assert took < 1
    assert run.messages()[-2:] == ["Terminating canary podinfo.test", "Terminated canary podinfo.test"]
    assert [e.new for e in run.events if isinstance(e, PhaseChanged)][-1] == "Terminating"
    target = run.cluster.get_now(DEPLOYMENT, "test", "podinfo")
    assert target is not None and target["spec"]["replicas"] == 2 and target["status"]["readyReplicas"] == 2
    # and what the Canary owned is gone, the target stays
    assert names(run) == {"Deployment": ["podinfo"], "Service": [], "TrafficSplit": [], "HorizontalPodAutoscaler": []}
    await asyncio.sleep(1)
    assert any(isinstance(e, CanaryRemoved) for e in run.events)
    await run.stop()


@virtual
async def test_plain_deletion_collects_the_generated_objects_and_leaves_the_target_at_zero() -> None:
    # Given an initialized Canary without revertOnDeletion, with an HPA and a primary HPA
    hpa = HPA.new("test", "podinfo", spec={
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "minReplicas": 2, "maxReplicas": 4})
    obj = canary()
    obj["spec"]["autoscalerRef"] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                                    "name": "podinfo"}
    run = Run([podinfo(), hpa, obj])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    assert finalizers(run) == []
    assert names(run)["Service"] == ["podinfo", "podinfo-canary", "podinfo-primary"]
    # When it is deleted
    run.cluster.delete_now(CANARY, "test", "podinfo")
    await asyncio.sleep(1)
    # Then it is gone at once with the primary, the three Services, the TrafficSplit and the primary HPA;
    # the target stays at zero replicas (as Flagger leaves it)
    assert gone(run)
    assert names(run) == {"Deployment": ["podinfo"], "Service": [], "TrafficSplit": [],
                          "HorizontalPodAutoscaler": ["podinfo"]}
    assert replicas(run) == 0
    assert not any("Terminat" in m for m in run.messages())
    assert run.engine.canary_states() == []
    await run.stop()


@virtual
async def test_switching_revert_on_deletion_off_removes_the_finalizer() -> None:
    run = Run([podinfo(), reverting(interval="1m")])
    run.start()
    await run.until(lambda: finalizers(run) == [FINALIZER])
    # When revertOnDeletion is switched off, the finalizer goes (at the latest at the next interval)
    run.cluster.patch_now(CANARY, "test", "podinfo", {"spec": {"revertOnDeletion": False}})
    await run.until(lambda: finalizers(run) == [], limit=61)
    # and a deletion is then immediate, with no revert
    run.cluster.delete_now(CANARY, "test", "podinfo")
    assert gone(run)
    await asyncio.sleep(1)
    assert not any("Terminat" in m for m in run.messages())
    await run.stop()


@pytest.mark.parametrize(("applied", "expected"), [
    ({"app": "podinfo", "tier": "web"}, {"app": "podinfo", "tier": "web"}),
    (None, {"app": "podinfo"}),
])
def test_35_a_user_created_apex_service_gets_its_selector_back(
        applied: dict[str, str] | None, expected: dict[str, str]) -> None:
    async def body() -> None:
        # Given an apex Service the user created, adopted by a Canary with revertOnDeletion
        run = Run([podinfo(), user_apex({"app": "podinfo"}, applied), reverting()])
        run.start()
        await run.until(lambda: run.phase() == "Initialized")
        apex = run.cluster.get_now(SERVICE, "test", "podinfo")
        assert apex is not None and apex["spec"]["selector"] == {"app": "podinfo-primary"}
        # When the Canary is deleted
        run.cluster.delete_now(CANARY, "test", "podinfo")
        await run.until(lambda: gone(run), limit=60)
        # Then the Service stays and selects the target's pods again, as it was applied
        apex = run.cluster.get_now(SERVICE, "test", "podinfo")
        assert apex is not None and apex["spec"]["selector"] == expected
        assert names(run)["Service"] == ["podinfo"]
        await run.stop()

    run_virtual(body)


@virtual
async def test_35_a_missing_primary_means_scale_from_zero() -> None:
    run = Run([podinfo(replicas=3), reverting()])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.cluster.patch_now(DEPLOYMENT, "test", "podinfo-primary", {"metadata": {"ownerReferences": None}})
    run.cluster.delete_now(DEPLOYMENT, "test", "podinfo-primary")
    run.cluster.delete_now(CANARY, "test", "podinfo")
    await run.until(lambda: gone(run), limit=60)
    # the target had 0 replicas and no HPA: ScaleFromZero without a primary gives 1
    assert replicas(run) == 1
    await run.stop()


@virtual
async def test_35_the_finalizer_stays_until_the_target_is_ready_in_the_simulated_lab() -> None:
    # Given the simulated lab (pods get ready 2-5 s after they start), and a target whose pods never get ready
    clock = LoopClock(epoch=EPOCH)
    sim = SimCluster(clock)
    run = Run([podinfo(replicas=2), reverting(interval="30s")], cluster=sim)
    controllers = asyncio.create_task(sim.run())
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    sim.set_fault("test", "podinfo", Fault(never_ready=True))
    # When the Canary is deleted
    sim.delete_now(CANARY, "test", "podinfo")
    await run.until(lambda: any(m.startswith("canary deployment podinfo.test not ready") for m in run.messages()),
                    limit=60)
    # Then it stays Terminating with its finalizer while the target is not ready, retrying
    await asyncio.sleep(120)
    assert run.phase() == "Terminating" and finalizers(run) == [FINALIZER]
    assert run.messages().count("Terminating canary podinfo.test") == 1
    assert "Terminated canary podinfo.test" not in run.messages()
    # When the pods can get ready, the next attempt finishes
    sim.clear_fault("test", "podinfo")
    took = await run.until(lambda: gone(run), limit=120)
    assert took <= 35
    assert run.messages()[-1] == "Terminated canary podinfo.test"
    target = sim.get_now(DEPLOYMENT, "test", "podinfo")
    assert target is not None and target["status"]["readyReplicas"] == 2
    await asyncio.sleep(5)
    assert sim.get_now(DEPLOYMENT, "test", "podinfo-primary") is None
    assert sim.pods.get(("test", "podinfo-primary"), {}) == {}
    await run.stop()
    controllers.cancel()


@virtual
async def test_35_deleting_mid_analysis_reverts_and_a_missing_target_keeps_the_finalizer_with_a_warning() -> None:
    # Given a Canary with revertOnDeletion in the middle of an analysis
    run = Run([podinfo(replicas=2), reverting(interval="30s")])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await run.until(lambda: (run.cluster.get_now(CANARY, "test", "podinfo") or {})["status"].get("canaryWeight") == 20)
    # When the target is deleted first, then the Canary
    run.cluster.delete_now(DEPLOYMENT, "test", "podinfo")
    run.cluster.delete_now(CANARY, "test", "podinfo")
    await asyncio.sleep(1)
    # Then no analysis runs any more, the Canary is Terminating and says why it cannot finish
    assert run.phase() == "Terminating" and finalizers(run) == [FINALIZER]
    missing = 'deployment podinfo.test get query error: deployments.apps "podinfo" not found'
    assert missing in run.messages()
    hints = [e.message for e in run.events if isinstance(e, EngineNotice) and e.level == "warning"]
    assert any("kubectl -n test patch canary podinfo --type=merge" in h for h in hints)
    mark = len(run.messages())
    await asyncio.sleep(90)
    assert run.messages()[mark:] == [missing] * 3  # one attempt per interval, nothing else
    # When the target is back, the next attempt reverts and lets the Canary go
    run.cluster.create_now(podinfo(replicas=0))
    took = await run.until(lambda: gone(run), limit=60)
    assert took <= 30
    assert run.messages()[-1] == "Terminated canary podinfo.test"
    assert replicas(run) == 2
    await run.stop()


@virtual
async def test_35_a_new_engine_finishes_a_termination_the_old_one_started() -> None:
    cluster = MemoryCluster(LoopClock(epoch=EPOCH), instant_ready=True)
    first = Run([podinfo(replicas=2), reverting()], cluster=cluster)
    first.start()
    await first.until(lambda: first.phase() == "Initialized")
    await first.stop()
    # Given the Canary was deleted while no engine ran
    cluster.delete_now(CANARY, "test", "podinfo")
    # When a new engine starts, it reverts the target and removes the finalizer
    second = Run([], cluster=cluster)
    second.start()
    await second.until(lambda: gone(second), limit=5)
    assert second.messages()[-2:] == ["Terminating canary podinfo.test", "Terminated canary podinfo.test"]
    assert replicas(second) == 2
    await second.stop()
