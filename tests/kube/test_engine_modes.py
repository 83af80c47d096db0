"""``canarylab engine`` output, read-only mode and a Prometheus reached through the service proxy."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from canarylab.cli import engine as cli
from canarylab.engine.events import EngineEvent, KubeEvent, PhaseChanged, WeightChanged
from canarylab.engine.kinds import CANARY, TRAFFIC_SPLIT
from canarylab.kube.lab import KubeLab
from tests.doubles import FakeMetrics
from tests.kube.apiserver import ApiServer
from tests.kube.loadtester import Loadtester
from tests.kube.test_engine_over_http import SPEED, loadtester, no_lab_state, phase, seeded, split, until

__all__ = ["loadtester", "no_lab_state", "seeded"]  # fixtures shared with the promotion scenarios

pytestmark = pytest.mark.timeout(60)


async def test_engine_command_prints_events_as_json_lines_and_logs_writes(
        seeded: ApiServer, loadtester: Loadtester, kubeconfig: Path) -> None:
    # Given `canarylab engine --context kmock --namespace test --json` on the seed lab
    out, writes = io.StringIO(), []
    lab = KubeLab("kmock", ["test"], kubeconfig=str(kubeconfig), metrics=FakeMetrics.healthy(), speed=SPEED,
                  log=writes.append)
    engine = asyncio.create_task(cli.serve(lab, True, out))
    # when it initializes the Canary, then each Kubernetes Event is one JSON line, simulate's shape
    await until(lambda: "Initialization done!" in out.getvalue(), what="the init event")
    engine.cancel()
    with pytest.raises(asyncio.CancelledError):
        await engine
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    done = next(line for line in lines if line["kind"] == "event" and "Initialization" in line["message"])
    assert set(done) == {"kind", "time", "type", "reason", "namespace", "name", "message"}
    assert (done["type"], done["reason"], done["namespace"], done["name"], done["message"]) == \
        ("Normal", "Synced", "test", "podinfo", "Initialization done! podinfo.test")
    assert isinstance(done["time"], float | int) and done["time"] >= 0
    # and every write was logged on its own line
    assert "create Deployment test/podinfo-primary" in writes
    assert "patch Canary test/podinfo status" in writes


def test_engine_text_lines_name_time_type_canary_and_message() -> None:
    out = io.StringIO()
    sink = cli.printer(False, out, 0.0)
    sink(KubeEvent(time=1_800_000_000.0, namespace="test", name="podinfo", type="Warning", reason="Synced",
                   message="Halt advancement no values found for linkerd metric request-success-rate"))
    sink(WeightChanged(time=1_800_000_000.0, namespace="test", name="podinfo", primary=95, canary=5))  # not printed
    assert out.getvalue() == ("2027-01-15T08:00:00Z Warning podinfo.test Halt advancement no values found for "
                              "linkerd metric request-success-rate\n")


async def test_readonly_follows_a_real_flagger_without_writing(seeded: ApiServer, kubeconfig: Path) -> None:
    # Given a cluster where Flagger runs the Canary, and canarylab following it read-only (no --namespace needed)
    events: list[EngineEvent] = []
    lab = KubeLab("kmock", [], readonly=True, kubeconfig=str(kubeconfig), metrics=FakeMetrics.healthy(),
                  log=lambda line: None)
    await lab.connect()
    await lab.start()
    lab.engine.subscribe(events.append)
    try:
        await until(lambda: lab.engine.canary_states(), what="the Canary seen")
        # when Flagger moves the canary to 10% and records an event
        canary = seeded.objects(CANARY, "test")[0]
        seeded.put_object({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
                           "metadata": {"name": "podinfo", "namespace": "test"},
                           "spec": {"service": "podinfo", "backends": [{"service": "podinfo-canary", "weight": 10},
                                                                      {"service": "podinfo-primary", "weight": 90}]}})
        seeded.set_status(CANARY, "test", "podinfo", {"phase": "Progressing", "canaryWeight": 10})
        seeded.put_object({"apiVersion": "v1", "kind": "Event",
                           "metadata": {"name": "podinfo.1", "namespace": "test"},
                           "involvedObject": {"kind": "Canary", "name": "podinfo", "namespace": "test",
                                              "uid": canary["metadata"]["uid"]},
                           "type": "Normal", "reason": "Synced", "message": "Advance podinfo.test canary weight 10",
                           "source": {"component": "flagger"}})
        # then the engine reports Flagger's progress
        await until(lambda: any(isinstance(e, PhaseChanged) and e.new == "Progressing" for e in events),
                    5, "the phase")
        await until(lambda: [s.canary_weight for s in lab.engine.canary_states()] == [10], 5, "the weight")
        await until(lambda: any(isinstance(e, KubeEvent) and e.message.endswith("weight 10") for e in events),
                    5, "Flagger's event")
    finally:
        await lab.stop()
    # and never wrote anything
    assert lab.cluster.writes == 0
    assert phase(seeded) == "Progressing"


@pytest.fixture
async def prometheus(seeded: ApiServer) -> AsyncIterator[list[str]]:
    """A Prometheus stand-in behind prometheus.linkerd-viz:9090: 100 for every query, 1 for vector(1)."""
    queries: list[str] = []

    async def query(request: web.Request) -> web.Response:
        text = request.query.get("query", "")
        queries.append(text)
        value = "1" if text == "vector(1)" else "100"
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1_800_000_000, value]}]}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    seeded.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "linkerd-viz"}})
    seeded.proxy_service("linkerd-viz", "prometheus", 9090, f"http://127.0.0.1:{port}")
    try:
        yield queries
    finally:
        await runner.cleanup()


async def test_linkerd_checks_reach_prometheus_through_the_service_proxy(
        seeded: ApiServer, loadtester: Loadtester, prometheus: list[str], kubeconfig: Path) -> None:
    # Given the engine with its default metrics server http://prometheus.linkerd-viz:9090 (no fake metrics)
    lab = KubeLab("kmock", ["test"], kubeconfig=str(kubeconfig), speed=SPEED, log=lambda line: None)
    await lab.connect()
    await lab.start()
    try:
        await until(lambda: phase(seeded) == "Initialized", what="Initialized")
        await lab.set_image("test", "podinfo", "podinfod", "stefanprodan/podinfo:3.1.1")
        # when the analysis runs, then its checks pass on Prometheus's answers and the weight moves on
        await until(lambda: split(seeded)["podinfo-canary"] >= 10, 30, "weight 10")
    finally:
        await lab.stop()
    assert prometheus[0] == "vector(1)"
    assert any("response_total" in q and 'deployment=~"podinfo"' in q for q in prometheus)
    assert any("histogram_quantile" in q for q in prometheus)
    proxied = [r for r in seeded.requests if r.subresource and r.subresource.startswith("proxy")
               and r.name == "prometheus:9090"]
    assert proxied and all(r.headers.get("Authorization") == "Bearer kmock-token" for r in proxied)
    assert seeded.objects(TRAFFIC_SPLIT, "test")
