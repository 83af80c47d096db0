"""KubeCluster on a flaky API server: dropped watches, 410 Gone, conflicts, 5xx and an unreachable server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import kmock
import pytest

from canarylab.engine.kinds import CANARY, DEPLOYMENT
from canarylab.engine.ports import ClusterError, WatchEvent
from canarylab.errors import UserError
from canarylab.kube.cluster import ApiUnreachable, ConnectError, KubeCluster
from tests.contract.test_cluster_contract import canary, deployment
from tests.kube.apiserver import ApiServer, free_port, serve, write_kubeconfig

pytestmark = pytest.mark.timeout(30)


async def take(events: object, n: int, timeout: float = 3.0) -> list[WatchEvent]:
    return [await asyncio.wait_for(anext(events), timeout) for _ in range(n)]  # type: ignore[call-overload]


def names(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type, e.object["metadata"]["name"]) for e in events]


async def test_a_dropped_watch_resumes_where_it_stopped(apiserver: ApiServer, kube: KubeCluster) -> None:
    # Given a watch that has seen one Deployment
    await kube.create(deployment("a"))
    events = kube.watch(DEPLOYMENT, "test")
    assert names(await take(events, 1)) == [("ADDED", "a")]
    pending = asyncio.ensure_future(anext(events))
    await apiserver.until_watching()
    # when the connection is cut and things change before the watch is back
    assert apiserver.drop_watches(abort=True) == 1
    await kube.patch(DEPLOYMENT, "test", "a", {"spec": {"replicas": 5}})
    await kube.create(deployment("b"))
    # then the watch resumes from its resourceVersion: each change once, nothing listed again
    seen = [await asyncio.wait_for(pending, 3), *await take(events, 1)]
    assert names(seen) == [("MODIFIED", "a"), ("ADDED", "b")]
    assert seen[0].object["spec"]["replicas"] == 5
    await kube.delete(DEPLOYMENT, "test", "b")
    assert names(await take(events, 1)) == [("DELETED", "b")]
    await events.aclose()
    watches = [r for r in apiserver.requests if r.params.get("watch") == "true"]
    assert len(watches) >= 2
    assert watches[-1].params["resourceVersion"] not in ("", "0")


async def test_a_watch_past_compaction_relists_and_sends_only_differences(apiserver: ApiServer,
                                                                          kube: KubeCluster) -> None:
    # Given a watch that has seen three Deployments
    for name in ("keep", "change", "remove"):
        await kube.create(deployment(name))
    events = kube.watch(DEPLOYMENT, "test")
    assert len(await take(events, 3)) == 3
    pending = asyncio.ensure_future(anext(events))
    await apiserver.until_watching()
    # when, while it is disconnected, one changes and one goes, and the server forgets that history
    apiserver.drop_watches(abort=True)
    await kube.patch(DEPLOYMENT, "test", "change", {"spec": {"replicas": 3}})
    await kube.delete(DEPLOYMENT, "test", "remove")
    apiserver.compact()
    # then the 410 makes it relist, and only the differences come out
    seen = [await asyncio.wait_for(pending, 3), *await take(events, 1)]
    assert sorted(names(seen)) == [("DELETED", "remove"), ("MODIFIED", "change")]
    await kube.create(deployment("new"))
    assert names(await take(events, 1)) == [("ADDED", "new")]
    await events.aclose()


async def test_bookmarks_keep_the_resume_point_fresh(apiserver: ApiServer, kube: KubeCluster) -> None:
    # Given a watch of Canaries while only Deployments change (the Canary watch sees nothing but bookmarks)
    await kube.create(canary())
    events = kube.watch(CANARY, "test")
    assert len(await take(events, 1)) == 1
    pending = asyncio.ensure_future(anext(events))
    await apiserver.until_watching()
    for i in range(3):
        await kube.create(deployment(f"d{i}"))
    await asyncio.sleep(0.5)  # bookmarks every 0.2 s carry the newer resourceVersion
    # when history is compacted and the watch drops, it resumes from the bookmark: no 410, no relist
    apiserver.compact()
    lists_before = sum(1 for r in apiserver.requests if r.params.get("watch") is None and r.name is None
                       and r.resource is not None and r.resource.plural == "canaries")
    apiserver.drop_watches()
    await kube.patch_status(CANARY, "test", "podinfo", {"phase": "Initialized"})
    assert names([await asyncio.wait_for(pending, 3)]) == [("MODIFIED", "podinfo")]
    lists_after = sum(1 for r in apiserver.requests if r.params.get("watch") is None and r.name is None
                      and r.resource is not None and r.resource.plural == "canaries")
    assert lists_after == lists_before
    await events.aclose()


async def test_a_status_patch_conflict_is_retried_after_a_reread(apiserver: ApiServer, kube: KubeCluster,
                                                                 write_log: list[str]) -> None:
    await kube.create(canary())
    conflicts = [409]

    def conflict_once(request: kmock.Request) -> int | None:
        if request.subresource == "status" and conflicts:
            return conflicts.pop()
        return None

    apiserver.faults.append(conflict_once)
    start = len(apiserver.requests)
    stored = await kube.patch_status(CANARY, "test", "podinfo", {"phase": "Progressing", "canaryWeight": 5})
    assert stored["status"] == {"phase": "Progressing", "canaryWeight": 5}
    verbs = [(r.method.value, r.subresource) for r in apiserver.requests[start:]]
    assert verbs == [("PATCH", "status"), ("GET", None), ("PATCH", "status")]
    assert write_log[-1] == "patch Canary test/podinfo status"


async def test_server_errors_are_retried_with_backoff(apiserver: ApiServer, kube: KubeCluster) -> None:
    failures = [503, 500]
    apiserver.faults.append(lambda request: failures.pop() if failures else None)
    await kube.create(deployment())  # two 5xx, then success
    assert await kube.get(DEPLOYMENT, "test", "podinfo") is not None


async def test_a_client_error_is_reported_not_retried(apiserver: ApiServer, kube: KubeCluster) -> None:
    apiserver.faults.append(lambda request: 422 if request.method.value == "POST" else None)
    with pytest.raises(ClusterError, match="422"):
        await kube.create(deployment())
    assert sum(1 for r in apiserver.requests if r.method.value == "POST") == 1


async def test_every_write_is_logged_on_one_line(kube: KubeCluster, write_log: list[str]) -> None:
    obj = await kube.create(canary())
    await kube.create(deployment())
    await kube.patch(DEPLOYMENT, "test", "podinfo", {"spec": {"replicas": 0}})
    await kube.patch_status(CANARY, "test", "podinfo", {"phase": "Initializing"})
    await kube.record_event(obj, "Normal", "Synced", "Initialization done! podinfo.test")
    await kube.delete(DEPLOYMENT, "test", "podinfo")
    assert write_log[:4] == ["create Canary test/podinfo", "create Deployment test/podinfo",
                             "patch Deployment test/podinfo spec", "patch Canary test/podinfo status"]
    assert write_log[4].startswith("create Event test/podinfo.")
    assert write_log[5] == "delete Deployment test/podinfo"
    assert kube.writes == 6


async def test_readonly_and_namespace_guards_refuse_before_sending(apiserver: ApiServer,
                                                                   kubeconfig: Path) -> None:
    readonly = await KubeCluster.connect("kmock", kubeconfig=str(kubeconfig), readonly=True)
    with pytest.raises(ClusterError, match="--readonly"):
        await readonly.create(deployment())
    scoped = await KubeCluster.connect("kmock", kubeconfig=str(kubeconfig), namespaces=["test"])
    await scoped.create(deployment())
    with pytest.raises(ClusterError, match="only writes in the namespaces you named"):
        await scoped.create(deployment("x", "prod"))
    assert [o["metadata"]["namespace"] for o in apiserver.objects(DEPLOYMENT)] == ["test"]


# ------------------------------------------------------------------------------ unreachable server


async def test_an_unreachable_server_gives_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}", context="lab")
    with pytest.raises(ConnectError) as caught:
        await KubeCluster.connect("lab", kubeconfig=str(kubeconfig), server=f"http://127.0.0.1:{port}")
    message = str(caught.value)
    assert isinstance(caught.value, UserError)
    assert "'lab'" in message and f"http://127.0.0.1:{port}" in message
    assert "connection refused" in message and "kubectl --context lab cluster-info" in message


async def test_connect_waits_for_the_server_and_says_so(tmp_path: Path) -> None:
    # Given a kubeconfig pointing at a port where the API server is not up yet
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}", context="lab")
    notices: list[str] = []
    connecting = asyncio.create_task(KubeCluster.connect("lab", kubeconfig=str(kubeconfig), wait=True,
                                                         log=notices.append))
    await asyncio.sleep(0.8)
    assert not connecting.done()
    assert notices and "Retrying in" in notices[0] and "connection refused" in notices[0]
    # when it comes up, then the engine connects
    async with serve(port=port):
        cluster = await asyncio.wait_for(connecting, 5)
        assert await cluster.list(DEPLOYMENT) == []


async def test_requests_and_watches_ride_out_an_api_server_restart(tmp_path: Path) -> None:
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    notices: list[str] = []
    async with serve(port=port, bookmark_interval=0.2) as first:
        kube = await KubeCluster.connect("kmock", kubeconfig=str(kubeconfig), log=notices.append,
                                         backoff=(0.05, 0.2), attempts=3)
        await kube.create(deployment())
        events = kube.watch(DEPLOYMENT, "test")
        assert names(await take(events, 1)) == [("ADDED", "podinfo")]
        pending = asyncio.ensure_future(anext(events))
        await first.until_watching()
    # Given the API server is down: a request fails after its retries with the clear message
    with pytest.raises(ApiUnreachable, match="cannot reach the Kubernetes API server of context 'kmock'"):
        await kube.get(DEPLOYMENT, "test", "podinfo")
    await asyncio.sleep(0.3)
    assert not pending.done()
    # when it comes back with the same data, the watch reconnects and sees the next change
    async with serve(port=port, restore=first):
        await kube.patch(DEPLOYMENT, "test", "podinfo", {"spec": {"replicas": 7}})
        event: WatchEvent = await asyncio.wait_for(pending, 5)
        assert (event.type, event.object["spec"]["replicas"]) == ("MODIFIED", 7)
        await events.aclose()
    assert any("answers again" in n for n in notices)
    assert sum("cannot reach" in n for n in notices) == 1  # said once per outage, not per retry




async def test_a_watch_of_a_kind_the_server_lacks_says_which_crd_once(apiserver: ApiServer, kube: KubeCluster,
                                                                      write_log: list[str]) -> None:
    # Given a cluster without Flagger's CRDs (every canaries request answers 404)
    apiserver.faults.append(lambda r: 404 if r.resource is not None and r.resource.plural == "canaries" else None)
    events = kube.watch(CANARY, "test")
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.6)  # several retries
    # then the engine keeps waiting and said once which CRD is missing
    assert not pending.done()
    missing = [line for line in write_log if "does not serve canaries.flagger.app/v1beta1" in line]
    assert len(missing) == 1 and "is its CRD installed?" in missing[0]
    # and when the CRD appears, the watch starts
    apiserver.faults.clear()
    await kube.create(canary())
    event = await asyncio.wait_for(pending, 3)
    assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "podinfo")
    await events.aclose()


async def test_a_broken_credential_plugin_is_a_user_error_not_an_outage(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "eks",'
        ' "clusters": [{"name": "eks", "cluster": {"server": "https://127.0.0.1:1"}}],'
        ' "users": [{"name": "eks", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",'
        ' "command": "/nonexistent/aws-iam-authenticator"}}}],'
        ' "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}]}')
    with pytest.raises(UserError, match="cannot load the credentials of kube context 'eks'"):
        await KubeCluster.connect("eks", kubeconfig=str(kubeconfig), wait=True)
