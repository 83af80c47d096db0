"""The in-memory Cluster, Metrics and Webhooks fakes behave like the real things the engine talks to."""

from __future__ import annotations

import asyncio

import pytest

from canarylab.engine.clock import LoopClock, run_virtual
from canarylab.engine.kinds import CANARY, DEPLOYMENT, EVENT, SERVICE
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.ports import (
    Cluster,
    Conflict,
    MetricQuery,
    MetricsError,
    NotFound,
    NoValuesFound,
    WatchEvent,
    WebhookCall,
)
from canarylab.manifests import seed_lab
from tests.doubles import FakeMetrics, FakeWebhooks


def deployment(name: str = "podinfo", image: str = "podinfo:6.0.0", replicas: int = 2) -> dict:
    return DEPLOYMENT.new("test", name, spec={
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": name, "image": image}]}},
    })  # fmt: skip


def test_memory_cluster_is_a_cluster_port() -> None:
    assert isinstance(MemoryCluster(), Cluster)


async def test_create_stamps_metadata_and_refuses_duplicates() -> None:
    # Given an empty cluster on a clock at a known epoch
    cluster = MemoryCluster(LoopClock(epoch=1_700_000_000))
    # When a Deployment is created
    stored = await cluster.create(deployment())
    # Then it has Kubernetes' system fields
    meta = stored["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["resourceVersion"].isdigit()
    assert meta["creationTimestamp"] == "2023-11-14T22:13:20Z"
    # And creating it again is a Conflict
    with pytest.raises(Conflict):
        await cluster.create(deployment())


async def test_replace_bumps_generation_on_spec_change_and_keeps_status() -> None:
    cluster = MemoryCluster()
    first = await cluster.create(deployment())
    await cluster.patch_status(DEPLOYMENT, "test", "podinfo", {"readyReplicas": 2})
    # When the spec changes through replace with the current resourceVersion
    current = await cluster.get(DEPLOYMENT, "test", "podinfo")
    assert current is not None
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.0.1"
    replaced = await cluster.replace(current)
    # Then generation moved, status is kept, resourceVersion grew
    assert replaced["metadata"]["generation"] == 2
    assert replaced["status"] == {"readyReplicas": 2}
    assert int(replaced["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    # And a replace with the old resourceVersion is refused
    with pytest.raises(Conflict):
        await cluster.replace(first)
    # And a metadata-only patch leaves generation alone
    patched = await cluster.patch(DEPLOYMENT, "test", "podinfo", {"metadata": {"annotations": {"a": "b"}}})
    assert patched["metadata"]["generation"] == 2 and patched["metadata"]["annotations"] == {"a": "b"}


async def test_merge_patch_deletes_with_null_and_ignores_status() -> None:
    cluster = MemoryCluster()
    await cluster.create(deployment())
    await cluster.patch(DEPLOYMENT, "test", "podinfo",
                        {"metadata": {"labels": {"x": "1"}}, "status": {"replicas": 9}})
    out = await cluster.patch(DEPLOYMENT, "test", "podinfo", {"metadata": {"labels": {"x": None}}})
    assert out["metadata"]["labels"] == {} and "status" not in out


async def test_delete_and_not_found() -> None:
    cluster = MemoryCluster()
    await cluster.create(deployment())
    await cluster.delete(DEPLOYMENT, "test", "podinfo")
    assert await cluster.get(DEPLOYMENT, "test", "podinfo") is None
    with pytest.raises(NotFound):
        await cluster.delete(DEPLOYMENT, "test", "podinfo")
    with pytest.raises(NotFound):
        await cluster.patch_status(DEPLOYMENT, "test", "podinfo", {})


async def test_list_filters_by_namespace_and_labels() -> None:
    cluster = MemoryCluster()
    cluster.load(seed_lab())
    services = await cluster.list(SERVICE, "test")
    assert [s["metadata"]["name"] for s in services] == ["flagger-loadtester"]
    assert await cluster.list(DEPLOYMENT, "test", {"app": "podinfo"})
    assert not await cluster.list(DEPLOYMENT, "other")
    assert len(await cluster.list(CANARY)) == 1


async def test_copies_in_and_out() -> None:
    cluster = MemoryCluster()
    obj = deployment()
    stored = await cluster.create(obj)
    obj["spec"]["replicas"] = 7
    stored["spec"]["replicas"] = 8
    got = await cluster.get(DEPLOYMENT, "test", "podinfo")
    assert got is not None and got["spec"]["replicas"] == 2


async def test_events_are_v1_events_aggregated_on_repeat() -> None:
    cluster = MemoryCluster(LoopClock(epoch=0))
    canary = cluster.load([c for c in seed_lab() if c["kind"] == "Canary"])
    await cluster.record_event(canary[0], "Normal", "Synced", "Initialization done! podinfo.test")
    await cluster.record_event(canary[0], "Warning", "Synced", "Halt advancement")
    await cluster.record_event(canary[0], "Warning", "Synced", "Halt advancement")
    events = await cluster.list(EVENT, "test")
    assert len(events) == 2
    halt = next(e for e in events if e["message"] == "Halt advancement")
    assert halt["count"] == 2 and halt["type"] == "Warning" and halt["reason"] == "Synced"
    assert halt["source"] == {"component": "flagger"}
    assert halt["involvedObject"]["kind"] == "Canary" and halt["involvedObject"]["name"] == "podinfo"
    assert [e["message"] for e in cluster.events_for(canary[0])] == [
        "Initialization done! podinfo.test", "Halt advancement"]


def test_watch_gives_existing_then_live_changes_to_every_watcher() -> None:
    async def main() -> None:
        cluster = MemoryCluster()
        await cluster.create(deployment("a"))
        seen: dict[str, list[tuple[str, str]]] = {"w1": [], "w2": []}

        async def watcher(tag: str) -> None:
            async for ev in cluster.watch(DEPLOYMENT, "test"):
                seen[tag].append((ev.type, ev.object["metadata"]["name"]))

        tasks = [asyncio.create_task(watcher(t)) for t in seen]
        await asyncio.sleep(0)
        await cluster.create(deployment("b"))
        await cluster.create(SERVICE.new("test", "svc", spec={}))  # another kind: not seen
        await cluster.delete(DEPLOYMENT, "test", "a")
        await asyncio.sleep(1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        expected = [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]
        assert seen == {"w1": expected, "w2": expected}
        assert not cluster._watchers  # cancelled watches unregister

    run_virtual(main)


def test_listeners_see_changes_synchronously_and_in_order_even_when_they_write() -> None:
    cluster = MemoryCluster()
    seen: list[tuple[str, str, str]] = []

    def controller(ev: WatchEvent) -> None:
        seen.append((ev.type, ev.object["kind"], ev.object["metadata"]["resourceVersion"]))
        if ev.object["kind"] == "Deployment" and ev.type == "ADDED":
            cluster.patch_status_now(DEPLOYMENT, "test", ev.object["metadata"]["name"], {"replicas": 1})

    remove = cluster.add_listener(controller)
    cluster.create_now(deployment())
    assert [s[0] for s in seen] == ["ADDED", "MODIFIED"]
    assert [int(s[2]) for s in seen] == sorted(int(s[2]) for s in seen)
    remove()
    cluster.create_now(deployment("other"))
    assert len(seen) == 2


def test_instant_ready_deployments_report_ready_replicas() -> None:
    cluster = MemoryCluster(instant_ready=True)
    stored = cluster.create_now(deployment(replicas=3))
    assert stored["status"]["readyReplicas"] == 3
    assert stored["status"]["observedGeneration"] == 1
    scaled = cluster.patch_now(DEPLOYMENT, "test", "podinfo", {"spec": {"replicas": 0}})
    assert "readyReplicas" not in scaled["status"] and scaled["status"]["observedGeneration"] == 2


def _q(metric: str) -> MetricQuery:
    return MetricQuery(metric=metric, query="sum(x)", namespace="test", target="podinfo", interval="1m",
                       interval_seconds=60)


async def test_fake_metrics_answers_values_no_values_errors_and_sequences() -> None:
    metrics = FakeMetrics({"ok": 99.5, "none": NoValuesFound, "down": MetricsError("connection refused"),
                           "seq": [1.0, 2.0], "fn": lambda q: len(q.target)})
    assert await metrics.query(_q("ok")) == 99.5
    with pytest.raises(NoValuesFound):
        await metrics.query(_q("none"))
    with pytest.raises(MetricsError, match="connection refused"):
        await metrics.query(_q("down"))
    assert [await metrics.query(_q("seq")) for _ in range(3)] == [1.0, 2.0, 2.0]
    assert await metrics.query(_q("fn")) == 7
    with pytest.raises(MetricsError):
        await metrics.query(_q("unknown"))
    assert len(metrics.queried("seq")) == 3


async def test_fake_webhooks_status_codes_and_sequences() -> None:
    hooks = FakeWebhooks()
    hooks.set("gate", [403, 403, 200])

    def call(name: str) -> WebhookCall:
        return WebhookCall(name=name, type="confirm-rollout", url=f"http://x/{name}", payload={"name": "p"})

    results = [await hooks.call(call("gate")) for _ in range(4)]
    assert [r.ok for r in results] == [False, False, True, True]
    assert results[0].error == "Forbidden"
    assert (await hooks.call(call("other"))).ok
    assert hooks.payloads("gate") == [{"name": "p"}] * 4
