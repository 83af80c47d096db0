"""The engine on a "real" cluster: kr8s over HTTP to the in-memory API server, webhooks to a loadtester
stand-in through the API server's service proxy, metrics from FakeMetrics.

Nothing runs pods here, so a test controller inside the API server marks Deployments ready as soon as they
change. Lab time runs scaled (``speed``), so the seed's 30 s interval takes a fraction of a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from canarylab.engine.events import EngineEvent, KubeEvent
from canarylab.engine.kinds import CANARY, DEPLOYMENT, EVENT, SERVICE, TRAFFIC_SPLIT, Obj
from canarylab.kube.lab import KubeLab
from canarylab.manifests import seed_lab
from tests.doubles import FakeMetrics
from tests.kube.apiserver import ApiServer, Write, ready_deployments
from tests.kube.loadtester import Loadtester, run_loadtester

pytestmark = pytest.mark.timeout(90)

SPEED = 120.0  # lab seconds per real second: the seed's 30 s interval is 0.25 s


@pytest.fixture(autouse=True)
def no_lab_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hermetic: canarylab created no context on this machine."""
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
async def loadtester(apiserver: ApiServer) -> AsyncIterator[Loadtester]:
    """The loadtester stand-in behind the Service flagger-loadtester.test:80."""
    async with run_loadtester() as lt:
        apiserver.proxy_service("test", "flagger-loadtester", 80, lt.url)
        yield lt


@pytest.fixture
def seeded(apiserver: ApiServer) -> ApiServer:
    """The seed tutorial's lab in the API server, with Deployments becoming ready at once."""
    apiserver.controllers.append(ready_deployments)
    for obj in seed_lab():
        apiserver.put_object(obj)
    return apiserver


class Run:
    """A KubeLab on the seeded API server, with the events it emitted."""

    def __init__(self, kubeconfig: Path, metrics: FakeMetrics, speed: float = SPEED) -> None:
        self.events: list[EngineEvent] = []
        self.writes: list[str] = []
        self.lab = KubeLab("kmock", ["test"], kubeconfig=str(kubeconfig), metrics=metrics, speed=speed,
                           log=self.writes.append)

    async def __aenter__(self) -> Run:
        await self.lab.connect()
        await self.lab.start()
        self.lab.engine.subscribe(self.events.append)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.lab.stop()

    def messages(self) -> list[str]:
        return [e.message for e in self.events if isinstance(e, KubeEvent)]


async def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``check`` (in-process, cheap) until truthy; fail after ``timeout`` real seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or check}")


def phase(server: ApiServer) -> str:
    canaries = server.objects(CANARY, "test")
    return str((canaries[0].get("status") or {}).get("phase", "")) if canaries else ""


def get(server: ApiServer, kind: Any, name: str) -> Obj:
    return next(o for o in server.objects(kind, "test") if o["metadata"]["name"] == name)


def image(server: ApiServer, name: str) -> str:
    return str(get(server, DEPLOYMENT, name)["spec"]["template"]["spec"]["containers"][0]["image"])


def split(server: ApiServer) -> dict[str, int]:
    return {b["service"]: int(b["weight"]) for b in get(server, TRAFFIC_SPLIT, "podinfo")["spec"]["backends"]}


def routing_never_points_at_a_scaled_down_deployment(writes: list[Write]) -> None:
    """Replay every write in order: whenever a backend has weight, its Deployment has replicas."""
    replicas: dict[str, int] = {}
    weights: dict[str, int] = {}
    backend_of = {"podinfo-canary": "podinfo", "podinfo-primary": "podinfo-primary"}
    for w in writes:
        if w.namespace != "test":
            continue
        if w.kind == "Deployment":
            replicas[w.name] = 0 if w.type == "DELETED" else int(w.object["spec"].get("replicas", 1))
        elif w.kind == "TrafficSplit" and w.type != "DELETED":
            weights = {b["service"]: int(b["weight"]) for b in w.object["spec"]["backends"]}
        else:
            continue
        for service, weight in weights.items():
            if weight > 0:
                assert replicas.get(backend_of[service], 0) > 0, \
                    f"at resourceVersion {w.rv} {service} had weight {weight} but {backend_of[service]} " \
                    f"had {replicas.get(backend_of[service], 0)} replicas"


async def bump(run: Run, tag: str = "3.1.1") -> None:
    await run.lab.set_image("test", "podinfo", "podinfod", f"stefanprodan/podinfo:{tag}")


# ------------------------------------------------------------------------------------------ scenarios


async def test_the_seed_canary_is_promoted_from_image_bump_to_success(
        seeded: ApiServer, loadtester: Loadtester, kubeconfig: Path) -> None:
    # Given the seed lab and the engine running against it over HTTP
    async with Run(kubeconfig, FakeMetrics.healthy()) as run:
        await until(lambda: phase(seeded) == "Initialized", what="Initialized")
        # then initialization made the primary, three services, the TrafficSplit 100/0, the target at zero
        assert image(seeded, "podinfo-primary") == "stefanprodan/podinfo:3.1.0"
        assert get(seeded, DEPLOYMENT, "podinfo")["spec"]["replicas"] == 0
        assert sorted(s["metadata"]["name"] for s in seeded.objects(SERVICE, "test")) == \
            ["flagger-loadtester", "podinfo", "podinfo-canary", "podinfo-primary"]
        assert split(seeded) == {"podinfo-canary": 0, "podinfo-primary": 100}
        canary_uid = seeded.objects(CANARY, "test")[0]["metadata"]["uid"]
        owners = get(seeded, DEPLOYMENT, "podinfo-primary")["metadata"]["ownerReferences"]
        assert [(o["kind"], o["uid"]) for o in owners] == [("Canary", canary_uid)]
        # when the image is bumped
        await bump(run)
        # then the analysis runs to promotion
        await until(lambda: "Promotion completed! Scaling down podinfo.test" in run.messages(), 60, "promotion")
        messages = run.messages()
    assert phase(seeded) == "Succeeded"
    assert "New revision detected! Scaling up podinfo.test" in messages
    assert [m for m in messages if m.startswith("Advance podinfo.test canary weight")] == \
        [f"Advance podinfo.test canary weight {w}" for w in range(5, 55, 5)]
    assert "Copying podinfo.test template spec to podinfo-primary.test" in messages
    assert messages[-1] == "Promotion completed! Scaling down podinfo.test"
    assert image(seeded, "podinfo-primary") == "stefanprodan/podinfo:3.1.1"
    assert get(seeded, DEPLOYMENT, "podinfo")["spec"]["replicas"] == 0
    assert split(seeded) == {"podinfo-canary": 0, "podinfo-primary": 100}
    # the webhooks reached the loadtester stand-in through the API server's service proxy
    assert loadtester.paths()[0] == "/"
    assert loadtester.calls[0][1]["metadata"]["type"] == "bash"  # acceptance-test (pre-rollout)
    assert any(c[1]["metadata"].get("cmd", "").startswith("hey") for c in loadtester.calls)  # load-test
    # Kubernetes Events were recorded on the Canary with Flagger's source
    events = [e for e in seeded.objects(EVENT, "test") if e["involvedObject"]["kind"] == "Canary"]
    assert {e["source"]["component"] for e in events} == {"flagger"}
    # ... and, as client-go's recorder does for Flagger, from the tenth distinct message in ten minutes the
    # Synced events are combined into one (the real Flagger shows the same in docs/conformance.md)
    assert "(combined from similar events): Promotion completed! Scaling down podinfo.test" in \
        {e["message"] for e in events}
    routing_never_points_at_a_scaled_down_deployment(seeded.writes)


async def test_failing_checks_roll_the_canary_back(
        seeded: ApiServer, loadtester: Loadtester, kubeconfig: Path) -> None:
    # Given the engine and a canary whose success rate is 50% (the seed requires 99%)
    metrics = FakeMetrics.healthy()
    async with Run(kubeconfig, metrics) as run:
        await until(lambda: phase(seeded) == "Initialized", what="Initialized")
        metrics.set("request-success-rate", 50.0)
        # when the image is bumped
        await bump(run, "3.1.2")
        # then after five failed checks it rolls back
        # (Flagger records "Canary failed!" before it writes the Failed status: wait for both)
        await until(lambda: "Canary failed! Scaling down podinfo.test" in run.messages()
                    and phase(seeded) == "Failed", 60, "rollback")
        messages = run.messages()
    assert "Rolling back podinfo.test failed checks threshold reached 5" in messages
    assert messages[-1] == "Canary failed! Scaling down podinfo.test"
    assert image(seeded, "podinfo-primary") == "stefanprodan/podinfo:3.1.0"
    assert get(seeded, DEPLOYMENT, "podinfo")["spec"]["replicas"] == 0
    assert split(seeded) == {"podinfo-canary": 0, "podinfo-primary": 100}
    routing_never_points_at_a_scaled_down_deployment(seeded.writes)


async def test_a_restarted_engine_continues_the_run_from_the_stored_status(
        seeded: ApiServer, loadtester: Loadtester, kubeconfig: Path) -> None:
    # Given a run halfway: the engine stopped at weight 20 or more
    async with Run(kubeconfig, FakeMetrics.healthy()) as first:
        await until(lambda: phase(seeded) == "Initialized", what="Initialized")
        await bump(first)
        await until(lambda: split(seeded)["podinfo-canary"] >= 20, 60, "weight 20")
    stopped_at = split(seeded)["podinfo-canary"]
    assert phase(seeded) == "Progressing"
    # when a new engine starts
    async with Run(kubeconfig, FakeMetrics.healthy()) as second:
        await until(lambda: "Promotion completed! Scaling down podinfo.test" in second.messages(), 60, "promotion")
        messages = second.messages()
    assert phase(seeded) == "Succeeded"
    # then it went on from the stored weight, without detecting the revision again
    assert "New revision detected! Scaling up podinfo.test" not in messages
    advances = [int(m.rsplit(" ", 1)[1]) for m in messages if m.startswith("Advance podinfo.test canary weight")]
    assert advances == list(range(stopped_at + 5, 55, 5))
    assert image(seeded, "podinfo-primary") == "stefanprodan/podinfo:3.1.1"
    # and across both engines the routing object never pointed at a scaled-down Deployment
    routing_never_points_at_a_scaled_down_deployment(seeded.writes)


async def test_a_new_revision_is_seen_within_a_second(
        seeded: ApiServer, loadtester: Loadtester, kubeconfig: Path) -> None:
    # Given an initialized canary and an engine whose analysis interval is 30 s of real time
    async with Run(kubeconfig, FakeMetrics.healthy(), speed=1.0) as run:
        await until(lambda: phase(seeded) == "Initialized", what="Initialized")
        await asyncio.sleep(0.2)  # the engine is between ticks, sleeping on its interval
        # when the image is bumped
        loop = asyncio.get_running_loop()
        start = loop.time()
        await bump(run)
        # then the engine sees the new revision through its watch, not at the next interval
        await until(lambda: "New revision detected! Scaling up podinfo.test" in run.messages(), 5, "detection")
        delay = loop.time() - start
    assert delay < 1.0
