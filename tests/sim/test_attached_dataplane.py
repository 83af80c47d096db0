"""The simulated data plane attached to a cluster it does not own: pods, Services and TrafficSplits come from
the Cluster port (here the in-memory one; the Docker-free lab gives it the real API server), and the engine
reaches the loadtester, podinfo and Prometheus through the gateway's service-proxy paths on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from canarylab.engine.kinds import POD, SERVICE, TRAFFIC_SPLIT, Obj
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.sim.attached import deployment_of, is_ready
from canarylab.sim.dataplane import AttachedDataPlane

PROXY = "/api/v1/namespaces/{ns}/services/{svc}/proxy{path}"


def pod(name: str, deployment: str, template_hash: str, labels: dict[str, str], image: str, *,
        ready: bool = True) -> Obj:
    return POD.new("test", name, metadata={
        "name": name, "namespace": "test", "labels": {**labels, "pod-template-hash": template_hash},
        "ownerReferences": [{"kind": "ReplicaSet", "name": f"{deployment}-{template_hash}", "apiVersion": "apps/v1",
                             "uid": "x", "controller": True}]},
        spec={"containers": [{"name": "main", "image": image}]},
        status={"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]})


def service(name: str, selector: dict[str, str], port: int) -> Obj:
    return SERVICE.new("test", name, spec={"selector": selector, "ports": [{"port": port, "targetPort": port}]})


def lab_objects() -> list[Obj]:
    return [
        service("flagger-loadtester", {"app": "flagger-loadtester"}, 80),
        service("podinfo-canary", {"app": "podinfo"}, 9898),
        service("podinfo-primary", {"app": "podinfo-primary"}, 9898),
        service("podinfo", {"app": "podinfo-primary"}, 9898),
        service("nobody", {"app": "nobody"}, 80),
        pod("flagger-loadtester-7494bb5d8-vmzvc", "flagger-loadtester", "7494bb5d8", {"app": "flagger-loadtester"},
            "ghcr.io/fluxcd/flagger-loadtester:0.38.0"),
        pod("podinfo-b7b88dd84-7mn2t", "podinfo", "b7b88dd84", {"app": "podinfo"}, "stefanprodan/podinfo:3.1.1"),
        pod("podinfo-b7b88dd84-zzzzz", "podinfo", "b7b88dd84", {"app": "podinfo"}, "stefanprodan/podinfo:3.1.1",
            ready=False),
        pod("podinfo-primary-7dc55b5c5-jptk2", "podinfo-primary", "7dc55b5c5", {"app": "podinfo-primary"},
            "stefanprodan/podinfo:3.1.0"),
        TRAFFIC_SPLIT.new("test", "podinfo", spec={"service": "podinfo", "backends": [
            {"service": "podinfo-primary", "weight": 50}, {"service": "podinfo-canary", "weight": 50}]}),
    ]


@pytest.fixture
def prometheus_stub() -> Iterator[tuple[str, list[str]]]:
    """A stand-in for the lab's Prometheus: records the paths it was asked for."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_pod_is_mapped_to_its_deployment_through_its_replicaset() -> None:
    obj = pod("podinfo-primary-7dc55b5c5-jptk2", "podinfo-primary", "7dc55b5c5", {}, "x")
    assert deployment_of(obj) == "podinfo-primary"
    assert is_ready(obj)
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not is_ready(obj)


async def test_the_gateway_reaches_the_loadtester_podinfo_and_prometheus(
        prometheus_stub: tuple[str, list[str]]) -> None:
    # given a cluster whose pods nobody runs, and the data plane attached to it
    cluster = MemoryCluster()
    cluster.load(lab_objects())
    plane = AttachedDataPlane(cluster)
    prom_url, asked = prometheus_stub
    plane.forward("linkerd-viz", "prometheus", 9090, prom_url)
    await plane.start()
    try:
        for _ in range(100):  # bounded: the view lists every kind within a few loop turns
            if len(plane.view.ready_pods("test", {"app": "podinfo"})) == 1 and plane.view.routes:
                break
            await asyncio.sleep(0.02)
        assert [p.name for p in plane.view.ready_pods("test", {"app": "podinfo"})] == ["podinfo-b7b88dd84-7mn2t"]
        assert plane.view.routes[("test", "podinfo")] == [("podinfo-primary", 50), ("podinfo-canary", 50)]
        async with httpx.AsyncClient(base_url=plane.gateway_url, timeout=10) as http:
            # when the engine calls the seed's pre-rollout webhook through the gateway
            payload = {"name": "podinfo", "namespace": "test", "phase": "Progressing",
                       "metadata": {"type": "bash", "cmd": "curl -sd 'test' http://podinfo-canary.test:9898/token "
                                                           "| grep token"}}
            hook = await http.post(PROXY.format(ns="test", svc="flagger-loadtester:80", path="/"), json=payload)
            # then the simulated loadtester ran it against the simulated podinfo canary
            assert hook.status_code == 200, hook.text
            # and a load test starts traffic on the canary's pods, counted in their Linkerd metrics
            load = {"name": "podinfo", "namespace": "test",
                    "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"}}
            started = await http.post(PROXY.format(ns="test", svc="flagger-loadtester:80", path="/"), json=load)
            assert started.status_code == 202
            await asyncio.sleep(2.5)
            metrics = plane.store.exposition()
            line = next(x for x in metrics.splitlines() if x.startswith("response_total")
                        and 'pod="podinfo-b7b88dd84-7mn2t"' in x)
            assert 'deployment="podinfo"' in line and 'direction="inbound"' in line
            assert float(line.rsplit(" ", 1)[1]) >= 20  # 20 rps of hey (plus background users) for 2 s
            # podinfo answers through the gateway like through the API server's proxy
            info = await http.get(PROXY.format(ns="test", svc="podinfo-canary:9898", path="/"))
            assert info.status_code == 200 and '"version": "3.1.1"' in info.text
            # the in-cluster Prometheus address reaches the lab's real Prometheus, query string intact
            query = await http.get(PROXY.format(ns="linkerd-viz", svc="prometheus:9090", path="/api/v1/query"),
                                   params={"query": "vector(1)"})
            assert query.status_code == 200 and query.json()["status"] == "success"
            assert asked == ["/api/v1/query?query=vector%281%29"]
            # and the API server's answers for what cannot be reached
            missing = await http.get(PROXY.format(ns="test", svc="nothere:80", path="/"))
            assert missing.status_code == 404 and 'services "nothere" not found' in missing.text
            empty = await http.get(PROXY.format(ns="test", svc="nobody:80", path="/"))
            assert empty.status_code == 503 and 'no endpoints available for service "nobody"' in empty.text
        # a pod that goes away leaves the traffic and the metrics
        await cluster.delete(POD, "test", "podinfo-b7b88dd84-7mn2t")
        for _ in range(100):
            if not plane.view.ready_pods("test", {"app": "podinfo"}):
                break
            await asyncio.sleep(0.02)
        assert plane.view.ready_pods("test", {"app": "podinfo"}) == []
        assert 'pod="podinfo-b7b88dd84-7mn2t"' not in plane.store.exposition()
    finally:
        await plane.stop()
