"""The Cluster port's contract: every implementation behaves like Kubernetes for what the engine relies on.

Each scenario runs against every ``cluster`` in ``conftest.py`` (the in-memory cluster and kr8s over HTTP).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from canarylab.engine.clock import LoopClock
from canarylab.engine.controller import Engine
from canarylab.engine.kinds import CANARY, DEPLOYMENT, EVENT, HPA, HTTP_ROUTE, NAMESPACE, SERVICE, TRAFFIC_SPLIT, Obj
from canarylab.engine.memory_cluster import deployment_ready_status
from canarylab.engine.ports import Cluster, Conflict, NotFound, WatchEvent
from canarylab.engine.targets import deployment_readiness
from canarylab.manifests import seed_lab
from tests.doubles import FakeMetrics, FakeWebhooks

pytestmark = pytest.mark.timeout(30)


def deployment(name: str = "podinfo", namespace: str = "test", replicas: int = 2, image: str = "podinfo:3.1.0",
               labels: dict[str, str] | None = None, owner: Obj | None = None) -> Obj:
    app = name
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {"app": app}}
    if owner is not None:
        meta["ownerReferences"] = [owner_ref(owner)]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}},
                              "spec": {"containers": [{"name": "podinfod", "image": image}]}}},
    }


def canary(name: str = "podinfo", namespace: str = "test") -> Obj:
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": "linkerd",
                 "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "service": {"port": 9898},
                 "analysis": {"interval": "30s", "threshold": 5, "maxWeight": 50, "stepWeight": 5}},
    }


def owner_ref(owner: Obj) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def service(name: str, selector: str, owner: Obj) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "test", "labels": {"app": name},
                     "ownerReferences": [owner_ref(owner)]},
        "spec": {"type": "ClusterIP", "selector": {"app": selector},
                 "ports": [{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}]},
    }


def traffic_split(owner: Obj, primary: int = 100, canary_weight: int = 0) -> Obj:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
        "metadata": {"name": "podinfo", "namespace": "test", "ownerReferences": [owner_ref(owner)]},
        "spec": {"service": "podinfo", "backends": [{"service": "podinfo-canary", "weight": canary_weight},
                                                     {"service": "podinfo-primary", "weight": primary}]},
    }


def http_route(owner: Obj, primary: int = 100, canary_weight: int = 0) -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute",
        "metadata": {"name": "podinfo", "namespace": "test", "ownerReferences": [owner_ref(owner)]},
        "spec": {"parentRefs": [{"group": "core", "kind": "Service", "name": "podinfo", "namespace": "test",
                                 "port": 9898}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "backendRefs": [
                                {"group": "", "kind": "Service", "name": "podinfo-primary", "port": 9898,
                                 "weight": primary},
                                {"group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898,
                                 "weight": canary_weight}]}]},
    }


def contains(actual: Any, expected: Any) -> bool:
    """``actual`` has every field of ``expected`` with the same value (a real API server adds defaults)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and \
            all(contains(a, e) for a, e in zip(actual, expected, strict=True))
    return bool(actual == expected)


async def next_event(events: Any, timeout: float = 2.0) -> WatchEvent:
    event: WatchEvent = await asyncio.wait_for(anext(events), timeout)
    return event


# ----------------------------------------------------------------------------------------- CRUD


async def test_created_object_reads_back_with_server_fields(cluster: Cluster) -> None:
    # Given an empty cluster, when a Deployment is created
    stored = await cluster.create(deployment())
    # then the stored copy carries the identity Kubernetes assigns, and reads back the same
    meta = stored["metadata"]
    assert meta["resourceVersion"] and meta["uid"] and meta["creationTimestamp"]
    assert meta["generation"] == 1
    got = await cluster.get(DEPLOYMENT, "test", "podinfo")
    assert got is not None
    # every field sent is kept (Kubernetes adds defaults such as strategy and revisionHistoryLimit)
    assert contains(got["spec"], deployment()["spec"])
    assert got["kind"] == "Deployment" and got["apiVersion"] == "apps/v1"
    assert got["metadata"]["uid"] == meta["uid"]


async def test_missing_object_reads_as_none(cluster: Cluster) -> None:
    assert await cluster.get(DEPLOYMENT, "test", "nothing") is None


async def test_creating_an_existing_name_conflicts(cluster: Cluster) -> None:
    await cluster.create(deployment())
    with pytest.raises(Conflict):
        await cluster.create(deployment())


async def test_list_filters_by_namespace_and_every_label(cluster: Cluster) -> None:
    await cluster.create(deployment("a", "test", labels={"app": "a", "tier": "web"}))
    await cluster.create(deployment("b", "test", labels={"app": "b", "tier": "web"}))
    await cluster.create(deployment("c", "other", labels={"app": "c", "tier": "web"}))

    def names(objs: list[Obj]) -> list[str]:
        return sorted(o["metadata"]["name"] for o in objs)

    assert names(await cluster.list(DEPLOYMENT, "test")) == ["a", "b"]
    assert names(await cluster.list(DEPLOYMENT)) == ["a", "b", "c"]
    assert names(await cluster.list(DEPLOYMENT, None, {"tier": "web"})) == ["a", "b", "c"]
    assert names(await cluster.list(DEPLOYMENT, "test", {"tier": "web", "app": "b"})) == ["b"]
    assert await cluster.list(DEPLOYMENT, "test", {"app": "nope"}) == []
    assert all(o["kind"] == "Deployment" for o in await cluster.list(DEPLOYMENT))


async def test_replace_respects_resource_version(cluster: Cluster) -> None:
    # Given a Canary read by two writers
    first = await cluster.create(canary())

    def with_step(step: int, rv: str) -> Obj:
        obj = canary()
        obj["spec"]["analysis"]["stepWeight"] = step
        obj["metadata"]["resourceVersion"] = rv
        return obj

    # when one replaces it with the version it read
    second = await cluster.replace(with_step(10, first["metadata"]["resourceVersion"]))
    # then the write lands, with a new resourceVersion and generation
    assert second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert second["metadata"]["generation"] == 2
    assert second["spec"]["analysis"]["stepWeight"] == 10
    # and the other writer, holding the old version, gets a conflict
    with pytest.raises(Conflict):
        await cluster.replace(with_step(20, first["metadata"]["resourceVersion"]))
    got = await cluster.get(CANARY, "test", "podinfo")
    assert got is not None and got["spec"]["analysis"]["stepWeight"] == 10


async def test_replace_without_version_is_unconditional_and_keeps_status(cluster: Cluster) -> None:
    await cluster.create(canary())
    await cluster.patch_status(CANARY, "test", "podinfo", {"phase": "Initialized"})
    changed = canary()
    changed["spec"]["analysis"]["stepWeight"] = 10
    replaced = await cluster.replace(changed)
    assert replaced["spec"]["analysis"]["stepWeight"] == 10
    assert replaced["status"] == {"phase": "Initialized"}


async def test_replace_of_a_missing_object_is_not_found(cluster: Cluster) -> None:
    with pytest.raises(NotFound):
        await cluster.replace(deployment())


async def test_merge_patch_merges_deletes_and_ignores_status(cluster: Cluster) -> None:
    await cluster.create(deployment(labels={"app": "podinfo", "old": "yes"}))
    patched = await cluster.patch(DEPLOYMENT, "test", "podinfo", {
        "metadata": {"labels": {"old": None, "new": "yes"}},
        "spec": {"replicas": 0},
        "status": {"readyReplicas": 99},
    })
    assert patched["metadata"]["labels"] == {"app": "podinfo", "new": "yes"}
    assert patched["spec"]["replicas"] == 0
    assert patched["spec"]["selector"] == {"matchLabels": {"app": "podinfo"}}  # untouched fields stay
    assert (patched.get("status") or {}).get("readyReplicas") != 99
    assert patched["metadata"]["generation"] == 2


async def test_status_patch_changes_only_status(cluster: Cluster) -> None:
    # Given a Canary
    created = await cluster.create(canary())
    # when its status is patched twice through the status subresource
    await cluster.patch_status(CANARY, "test", "podinfo", {"phase": "Initializing", "canaryWeight": 0})
    after = await cluster.patch_status(CANARY, "test", "podinfo", {"phase": "Initialized", "failedChecks": 0})
    # then the status merged, the spec and generation did not move, the resourceVersion did
    assert after["status"] == {"phase": "Initialized", "canaryWeight": 0, "failedChecks": 0}
    assert after["spec"] == canary()["spec"]
    assert after["metadata"]["generation"] == created["metadata"]["generation"]
    assert after["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    got = await cluster.get(CANARY, "test", "podinfo")
    assert got is not None and got["status"]["phase"] == "Initialized"


async def test_writes_to_missing_objects_are_not_found(cluster: Cluster) -> None:
    with pytest.raises(NotFound):
        await cluster.patch(DEPLOYMENT, "test", "ghost", {"spec": {"replicas": 1}})
    with pytest.raises(NotFound):
        await cluster.patch_status(CANARY, "test", "ghost", {"phase": "Failed"})
    with pytest.raises(NotFound):
        await cluster.delete(DEPLOYMENT, "test", "ghost")


async def test_delete_removes_the_object(cluster: Cluster) -> None:
    await cluster.create(deployment())
    await cluster.delete(DEPLOYMENT, "test", "podinfo")
    assert await cluster.get(DEPLOYMENT, "test", "podinfo") is None
    assert await cluster.list(DEPLOYMENT, "test") == []


# ------------------------------------------------------------------------------ initialization


async def test_initialization_objects_keep_owner_references_and_weights(cluster: Cluster) -> None:
    # Given the seed's Canary and its target, when the engine creates what Flagger's initialization creates
    owner = await cluster.create(canary())
    await cluster.create(deployment())
    await cluster.create(deployment("podinfo-primary", labels={"app": "podinfo-primary"}, owner=owner))
    for name, selector in (("podinfo-canary", "podinfo"), ("podinfo-primary", "podinfo-primary"),
                           ("podinfo", "podinfo-primary")):
        await cluster.create(service(name, selector, owner))
    await cluster.create({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo-primary", "namespace": "test", "ownerReferences": [owner_ref(owner)]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary"},
                 "minReplicas": 2, "maxReplicas": 4},
    })
    await cluster.create(traffic_split(owner))
    await cluster.create(http_route(owner))

    # then every object is there, owned by the Canary (controller=true)
    uid = owner["metadata"]["uid"]
    objects = [await cluster.get(DEPLOYMENT, "test", "podinfo-primary"),
               *[await cluster.get(SERVICE, "test", n) for n in ("podinfo", "podinfo-canary", "podinfo-primary")],
               await cluster.get(HPA, "test", "podinfo-primary"),
               await cluster.get(TRAFFIC_SPLIT, "test", "podinfo"),
               await cluster.get(HTTP_ROUTE, "test", "podinfo")]
    for obj in objects:
        assert obj is not None
        refs = obj["metadata"]["ownerReferences"]
        assert [(r["kind"], r["name"], r["uid"], r["controller"]) for r in refs] == [("Canary", "podinfo", uid, True)]
    apex = await cluster.get(SERVICE, "test", "podinfo")
    assert apex is not None and apex["spec"]["selector"] == {"app": "podinfo-primary"}
    assert [(s["metadata"]["name"]) for s in await cluster.list(SERVICE, "test")] == \
        ["podinfo", "podinfo-canary", "podinfo-primary"]

    # when the weights move, then the routing objects read back the new split
    await cluster.patch(TRAFFIC_SPLIT, "test", "podinfo", {"spec": {"backends": [
        {"service": "podinfo-canary", "weight": 5}, {"service": "podinfo-primary", "weight": 95}]}})
    split = await cluster.get(TRAFFIC_SPLIT, "test", "podinfo")
    assert split is not None
    assert {b["service"]: b["weight"] for b in split["spec"]["backends"]} == \
        {"podinfo-canary": 5, "podinfo-primary": 95}
    route = await cluster.get(HTTP_ROUTE, "test", "podinfo")
    assert route is not None
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 90
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 10
    await cluster.replace(route)
    route = await cluster.get(HTTP_ROUTE, "test", "podinfo")
    assert route is not None
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [90, 10]
    assert route["metadata"]["ownerReferences"][0]["uid"] == uid


# ---------------------------------------------------------------------------------------- events


def events_about(events: list[Obj], name: str) -> list[Obj]:
    """Events about the Canary ``name`` (a real Deployment controller records its own about Deployments)."""
    return [e for e in events if e["involvedObject"]["name"] == name and e["involvedObject"]["kind"] == "Canary"]


async def test_events_carry_flaggers_fields_and_aggregate_repeats(cluster: Cluster) -> None:
    # Given a Canary
    obj = await cluster.create(canary())
    # when the engine records an event, the same again, and another one
    message = "Advance podinfo.test canary weight 5"
    await cluster.record_event(obj, "Normal", "Synced", message)
    await cluster.record_event(obj, "Normal", "Synced", message)
    await cluster.record_event(obj, "Warning", "Synced", "Halt advancement no values found")
    # then there are two Events: the repeat only bumped the count
    events = events_about(await cluster.list(EVENT, "test"), "podinfo")
    by_message = {e["message"]: e for e in events}
    assert sorted(by_message) == ["Advance podinfo.test canary weight 5", "Halt advancement no values found"]
    advance = by_message[message]
    assert advance["count"] == 2
    assert advance["type"] == "Normal" and advance["reason"] == "Synced"
    assert advance["source"]["component"] == "flagger"
    assert advance["lastTimestamp"] >= advance["firstTimestamp"]
    involved = advance["involvedObject"]
    assert (involved["kind"], involved["name"], involved["namespace"]) == ("Canary", "podinfo", "test")
    assert involved["uid"] == obj["metadata"]["uid"]
    assert involved["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert by_message["Halt advancement no values found"]["type"] == "Warning"
    assert by_message["Halt advancement no values found"]["count"] == 1


# --------------------------------------------------------------------------------------- watches


async def test_watch_sends_existing_objects_then_changes(cluster: Cluster) -> None:
    # Given a Canary in the watched namespace and one elsewhere (Canaries: no controller writes to them)
    await cluster.create(canary())
    await cluster.create(canary("elsewhere", "other"))
    events = cluster.watch(CANARY, "test")
    try:
        # then the watch starts with the existing object
        first = await next_event(events)
        assert (first.type, first.object["metadata"]["name"]) == ("ADDED", "podinfo")
        # and sees a change, a new object and a deletion, in order, only in its namespace
        await cluster.patch(CANARY, "test", "podinfo", {"spec": {"analysis": {"threshold": 3}}})
        await cluster.create(canary("other-app", "other"))
        await cluster.create(canary("podinfo-two"))
        await cluster.patch_status(CANARY, "test", "podinfo-two", {"phase": "Initializing"})
        await cluster.delete(CANARY, "test", "podinfo")
        seen = [await next_event(events) for _ in range(4)]
        assert [(e.type, e.object["metadata"]["name"]) for e in seen] == [
            ("MODIFIED", "podinfo"), ("ADDED", "podinfo-two"), ("MODIFIED", "podinfo-two"), ("DELETED", "podinfo")]
        assert seen[0].object["spec"]["analysis"]["threshold"] == 3
        assert seen[2].object["status"] == {"phase": "Initializing"}
        assert seen[0].object["kind"] == "Canary"
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def test_watch_of_all_namespaces_sees_every_namespace(cluster: Cluster) -> None:
    events = cluster.watch(CANARY)
    try:
        consumer = asyncio.ensure_future(next_event(events))
        await asyncio.sleep(0.05)  # the watch is established before the writes
        await cluster.create(canary("a", "one"))
        assert (await consumer).object["metadata"]["namespace"] == "one"
        await cluster.create(canary("b", "two"))
        assert (await next_event(events)).object["metadata"]["namespace"] == "two"
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def test_a_watch_wakes_a_waiting_consumer_within_a_second(cluster: Cluster) -> None:
    # Given a controller waiting on a watch of Deployments (as the engine waits between ticks)
    await cluster.create(deployment())
    woke = asyncio.Event()
    images: list[str] = []

    async def controller() -> None:
        async for event in cluster.watch(DEPLOYMENT, "test"):
            image = event.object["spec"]["template"]["spec"]["containers"][0]["image"]
            if image not in images:  # status writes by a deployment controller repeat the same revision
                images.append(image)
            if len(images) == 2:
                woke.set()
                return

    task = asyncio.create_task(controller())
    try:
        await asyncio.sleep(0.1)
        # when the image is bumped
        loop = asyncio.get_running_loop()
        start = loop.time()
        await cluster.patch(DEPLOYMENT, "test", "podinfo", {"spec": {"template": {"spec": {"containers": [
            {"name": "podinfod", "image": "podinfo:3.1.1"}]}}}})
        # then the controller wakes with the new revision in well under a second
        await asyncio.wait_for(woke.wait(), 1.0)
        assert loop.time() - start < 1.0
        assert images == ["podinfo:3.1.0", "podinfo:3.1.1"]
    finally:
        task.cancel()


async def test_cluster_scoped_objects_list_without_a_namespace(cluster: Cluster) -> None:
    # Given the namespaces there are (none in memory; default, kube-system, ... on a real server)
    before = [n["metadata"]["name"] for n in await cluster.list(NAMESPACE)]
    # when two more are created, then they list with the others, sorted, and carry no namespace themselves
    created = ["linkerd-viz", "podinfo-scope"]
    for name in created:
        await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        names = [n["metadata"]["name"] for n in await cluster.list(NAMESPACE)]
        assert names == sorted([*before, *created])
        got = await cluster.get(NAMESPACE, "", "podinfo-scope")
        assert got is not None and "namespace" not in got["metadata"]
    finally:
        for name in created:
            await cluster.delete(NAMESPACE, "", name)


async def test_the_engine_initializes_the_seed_canary_the_same_way_everywhere(cluster: Cluster,
                                                                             substrate: str) -> None:
    # Given the seed lab in the cluster (the real server's namespace "test" already exists)
    for obj in seed_lab():
        if obj["kind"] == "Namespace" and await cluster.get(NAMESPACE, "", obj["metadata"]["name"]):
            continue
        await cluster.create(obj)
    engine = Engine(cluster, FakeMetrics.healthy(), FakeWebhooks(), LoopClock(), namespaces=["test"])

    async def mark_ready(name: str) -> None:
        if substrate == "real":  # the Deployment controller, the scheduler and KWOK make it ready
            for _ in range(300):
                obj = await cluster.get(DEPLOYMENT, "test", name)
                if obj and deployment_readiness(obj, 600, 100, time.time()).ready:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"deployment test/{name} was not ready within 30s")
        # Elsewhere nothing runs pods: Deployments are marked ready through the port.
        obj = await cluster.get(DEPLOYMENT, "test", name)
        assert obj is not None
        await cluster.patch_status(DEPLOYMENT, "test", name, deployment_ready_status(obj))

    await mark_ready("podinfo")
    # when the engine ticks until the primary it created is ready
    await engine.tick_once("test", "podinfo")
    await mark_ready("podinfo-primary")
    await engine.tick_once("test", "podinfo")
    # then the Canary is Initialized and every object Flagger's initialization makes exists, owned by it
    canary_obj = await cluster.get(CANARY, "test", "podinfo")
    assert canary_obj is not None and canary_obj["status"]["phase"] == "Initialized"
    uid = canary_obj["metadata"]["uid"]
    owned = [await cluster.get(DEPLOYMENT, "test", "podinfo-primary"),
             await cluster.get(HPA, "test", "podinfo-primary"),
             *[await cluster.get(SERVICE, "test", n) for n in ("podinfo", "podinfo-canary", "podinfo-primary")],
             await cluster.get(TRAFFIC_SPLIT, "test", "podinfo")]
    for obj in owned:
        assert obj is not None
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"] if r.get("controller")] == [uid]
    split = await cluster.get(TRAFFIC_SPLIT, "test", "podinfo")
    assert split is not None
    assert {b["service"]: int(b["weight"]) for b in split["spec"]["backends"]} == \
        {"podinfo-canary": 0, "podinfo-primary": 100}
    target = await cluster.get(DEPLOYMENT, "test", "podinfo")
    assert target is not None and target["spec"]["replicas"] == 0
    messages = [e["message"] for e in events_about(await cluster.list(EVENT, "test"), "podinfo")]
    assert "Initialization done! podinfo.test" in messages
