"""The Engine on a virtual clock: tasks per Canary, waking on new revisions, commands, restarts, readonly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from canarylab.engine.clock import LoopClock, run_virtual
from canarylab.engine.commands import Abort, OpenGate, Pause, Promote, Resume
from canarylab.engine.controller import PAUSED_ANNOTATION, Engine, EngineError
from canarylab.engine.events import (
    CanaryProblem,
    CanaryRemoved,
    EngineEvent,
    EngineNotice,
    KubeEvent,
    PhaseChanged,
    StatusChanged,
    WeightChanged,
)
from canarylab.engine.kinds import CANARY, DEPLOYMENT, INGRESS, TRAFFIC_SPLIT, VIRTUAL_SERVICE, Kind, Obj
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.ports import ClusterError, WatchEvent
from canarylab.manifests import seed_lab
from tests.doubles import FakeMetrics, FakeWebhooks
from tests.engine.conftest import canary, podinfo, with_hooks

EPOCH = 1_700_000_000.0


class Run:
    """An Engine running in the background on a virtual clock over a MemoryCluster."""

    def __init__(self, objects: list[Obj], *, cluster: MemoryCluster | None = None,
                 webhooks: FakeWebhooks | None = None, readonly: bool = False) -> None:
        self.clock = LoopClock(epoch=EPOCH)
        self.cluster = cluster or MemoryCluster(self.clock, instant_ready=True)
        self.cluster.load(objects)
        self.webhooks = webhooks or FakeWebhooks()
        self.metrics = FakeMetrics.healthy()
        self.engine = Engine(self.cluster, self.metrics, self.webhooks, self.clock, readonly=readonly)
        self.events: list[EngineEvent] = []
        self.engine.subscribe(self.events.append)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.engine.run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    async def until(self, what: Callable[[], bool], limit: float = 3600) -> float:
        """Lab seconds until ``what`` holds (polling every 0.1s of lab time, at most ``limit``)."""
        start = self.clock.elapsed()
        while not what():
            assert self.clock.elapsed() - start < limit, f"timed out; events: {self.messages()[-5:]}"
            await asyncio.sleep(0.1)
        return self.clock.elapsed() - start

    def phase(self, name: str = "podinfo", namespace: str = "test") -> str:
        obj = self.cluster.get_now(CANARY, namespace, name)
        return str(((obj or {}).get("status") or {}).get("phase", ""))

    def messages(self, name: str = "podinfo") -> list[str]:
        return [e.message for e in self.events if isinstance(e, KubeEvent) and e.name == name]

    def set_image(self, image: str, name: str = "podinfo", namespace: str = "test") -> None:
        dep = self.cluster.get_now(DEPLOYMENT, namespace, name)
        assert dep is not None
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.cluster.replace_now(dep)


def virtual(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test body on the virtual-time loop."""

    def wrapper() -> None:
        run_virtual(test)

    wrapper.__name__ = test.__name__
    wrapper.__doc__ = test.__doc__
    return wrapper


def _subsequence(expected: list[str], actual: list[str]) -> bool:
    it = iter(actual)
    return all(any(a == e for a in it) for e in expected)


def test_seed_canary_from_image_bump_to_promotion_produces_the_seed_events_in_well_under_a_second() -> None:
    started = time.perf_counter()

    async def body() -> None:
        # Given the seed lab (namespace test, podinfo + HPA, loadtester, the tutorial's Canary) unchanged
        run = Run(seed_lab())
        run.start()
        await run.until(lambda: run.phase() == "Initialized")
        # When the image is bumped as in the tutorial
        run.set_image("stefanprodan/podinfo:3.1.1")
        took = await run.until(lambda: run.phase() == "Succeeded")
        await run.stop()
        # Then the seed's events happen in order
        seed_events = ["all the metrics providers are available!", "Initialization done! podinfo.test",
                       "New revision detected! Scaling up podinfo.test",
                       "Starting canary analysis for podinfo.test", "Pre-rollout check acceptance-test passed",
                       *[f"Advance podinfo.test canary weight {w}" for w in range(5, 55, 5)],
                       "Copying podinfo.test template spec to podinfo-primary.test",
                       "Routing all traffic to primary", "Promotion completed! Scaling down podinfo.test"]
        assert run.messages() == seed_events
        # in about 7 lab minutes (flagger-spec 2.16), with the primary on the new image
        assert 6 * 60 <= took <= 8 * 60
        primary = run.cluster.get_now(DEPLOYMENT, "test", "podinfo-primary")
        assert primary is not None
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "stefanprodan/podinfo:3.1.1"
        # and the load test ran on every analysis tick with Flagger's payload
        assert run.webhooks.payloads("load-test")[0]["metadata"]["cmd"].startswith("hey -z 2m")

    run_virtual(body)
    assert time.perf_counter() - started < 1.0


@virtual
async def test_a_new_revision_is_seen_in_under_a_second_not_at_the_next_interval() -> None:
    run = Run([podinfo(), canary(interval="5m")])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    await asyncio.sleep(60)
    run.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    took = await run.until(lambda: run.phase() == "Progressing")
    await run.stop()
    assert took < 1


@virtual
async def test_an_invalid_canary_is_reported_and_the_others_keep_running() -> None:
    bad = canary(stepWeight=-5)
    bad["metadata"]["name"] = "broken"
    run = Run([podinfo(), canary(), bad])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    await asyncio.sleep(60)
    problems = [e for e in run.events if isinstance(e, CanaryProblem)]
    assert len(problems) == 1 and problems[0].name == "broken"
    assert "spec.analysis.stepWeight: must be between 1 and 100 (got -5)" in problems[0].message
    assert any(m == problems[0].message for m in run.messages("broken"))  # also a Warning Kubernetes event
    state = {s.name: s for s in run.engine.canary_states()}
    assert state["broken"].problem and state["podinfo"].problem is None and state["podinfo"].phase == "Initialized"
    # When the spec is fixed, the canary runs
    run.cluster.patch_now(CANARY, "test", "broken", {"spec": {"analysis": {"stepWeight": 5}}})
    await run.until(lambda: run.phase("broken") == "Initialized", limit=5)
    await run.stop()


@virtual
async def test_a_new_engine_resumes_a_run_from_the_canary_status() -> None:
    cluster = MemoryCluster(LoopClock(epoch=EPOCH), instant_ready=True)
    first = Run([podinfo(), canary()], cluster=cluster)
    first.start()
    await first.until(lambda: first.phase() == "Initialized")
    first.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await first.until(lambda: (cluster.get_now(CANARY, "test", "podinfo") or {})["status"].get("canaryWeight") == 20)
    await first.stop()
    # Given a new engine over the same cluster
    second = Run([], cluster=cluster)
    second.start()
    await second.until(lambda: second.phase() == "Succeeded", limit=600)
    await second.stop()
    # Then it carried on from weight 20 without starting again
    assert "Starting canary analysis for podinfo.test" not in second.messages()
    assert [e.canary for e in second.events if isinstance(e, WeightChanged) and e.canary][:3] == [30, 40, 50]


@virtual
async def test_deleting_the_canary_stops_its_task() -> None:
    run = Run([podinfo(), canary()])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.cluster.delete_now(CANARY, "test", "podinfo")
    await asyncio.sleep(1)
    assert any(isinstance(e, CanaryRemoved) for e in run.events)
    assert run.engine.canary_states() == []
    await run.stop()


@virtual
async def test_abort_rolls_back_at_once_with_a_manual_message() -> None:
    run = Run([podinfo(), canary(interval="1m")])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await run.until(lambda: run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 10)  # type: ignore[index]
    await run.engine.send(Abort(namespace="test", name="podinfo"))
    took = await run.until(lambda: run.phase() == "Failed")
    assert took < 1
    assert run.messages()[-2:] == ["Rolling back podinfo.test manual abort requested",
                                   "Canary failed! Scaling down podinfo.test"]
    with pytest.raises(EngineError, match="no analysis to abort"):
        await run.engine.send(Abort(namespace="test", name="podinfo"))
    await run.stop()


@virtual
async def test_promote_now_skips_the_remaining_steps_through_the_promotion_path() -> None:
    run = Run([podinfo(), canary(interval="1m")])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await run.until(lambda: run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 10)  # type: ignore[index]
    await run.engine.send(Promote(namespace="test", name="podinfo"))
    await run.until(lambda: run.phase() == "Promoting", limit=1)
    assert run.messages()[-1] == "Copying podinfo.test template spec to podinfo-primary.test"
    await run.until(lambda: run.phase() == "Succeeded", limit=300)
    await run.stop()


@virtual
async def test_pause_stops_ticking_survives_in_an_annotation_and_resume_continues() -> None:
    run = Run([podinfo(), canary(interval="1m")])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await run.until(lambda: run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 10)  # type: ignore[index]
    await run.engine.send(Pause(namespace="test", name="podinfo"))
    obj = run.cluster.get_now(CANARY, "test", "podinfo")
    assert obj is not None and obj["metadata"]["annotations"][PAUSED_ANNOTATION] == "true"
    assert run.engine.canary_states()[0].paused
    await asyncio.sleep(600)
    assert run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 10  # type: ignore[index]
    await run.engine.send(Resume(namespace="test", name="podinfo"))
    await run.until(lambda: run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 20,  # type: ignore[index]
                    limit=1)
    await run.stop()


@virtual
async def test_open_gate_passes_the_waiting_gate_and_opens_the_loadtester_gate() -> None:
    gate = {"name": "approve", "type": "confirm-rollout", "url": "http://flagger-loadtester.test/gate/check"}
    webhooks = FakeWebhooks()
    webhooks.set("approve", 403)
    run = Run([podinfo(), with_hooks(gate, interval="1m")], webhooks=webhooks)
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await run.until(lambda: run.phase() == "Waiting")
    assert run.engine.canary_states()[0].waiting_gate == "approve"
    await run.engine.send(OpenGate(namespace="test", name="podinfo"))
    took = await run.until(lambda: run.phase() == "Progressing")
    assert took < 1
    opened = webhooks.called("http://flagger-loadtester.test/gate/open")
    assert len(opened) == 1 and dict(opened[0].payload) == {"name": "podinfo", "namespace": "test"}
    with pytest.raises(EngineError, match="not waiting at a gate"):
        await run.engine.send(OpenGate(namespace="test", name="podinfo"))
    await run.stop()


@virtual
async def test_commands_for_unknown_canaries_say_so() -> None:
    run = Run([podinfo(), canary()])
    with pytest.raises(EngineError, match="does not exist"):
        await run.engine.send(Abort(namespace="test", name="nope"))


@virtual
async def test_canary_state_has_what_a_ui_row_needs() -> None:
    run = Run([podinfo(), canary()])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await run.until(lambda: run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 20)  # type: ignore[index]
    state = run.engine.canary_states()[0]
    await run.stop()
    assert (state.phase, state.canary_weight, state.primary_weight) == ("Progressing", 20, 80)
    assert state.steps == (10, 20, 30, 40, 50) and state.max_weight == 50 and state.threshold == 5
    assert (state.interval, state.strategy, state.router, state.target) == (15.0, "canary", "TrafficSplit", "podinfo")


@virtual
async def test_readonly_follows_what_flagger_writes_and_refuses_commands() -> None:
    run = Run([podinfo(), canary()], readonly=True)
    run.start()
    await asyncio.sleep(1)
    writes = run.cluster.writes
    # When "Flagger" writes status, the TrafficSplit and an Event
    obj = run.cluster.get_now(CANARY, "test", "podinfo")
    assert obj is not None
    run.cluster.patch_status_now(CANARY, "test", "podinfo", {"phase": "Progressing", "canaryWeight": 10})
    run.cluster.create_now(TRAFFIC_SPLIT.new("test", "podinfo", spec={"service": "podinfo", "backends": [
        {"service": "podinfo-canary", "weight": 10}, {"service": "podinfo-primary", "weight": 90}]}))
    run.cluster.record_event_now(obj, "Normal", "Synced", "Advance podinfo.test canary weight 10")
    await asyncio.sleep(1)
    kinds: dict[type, list[Any]] = {}
    for e in run.events:
        kinds.setdefault(type(e), []).append(e)
    assert kinds[PhaseChanged][-1].new == "Progressing"
    assert kinds[StatusChanged][-1].canary_weight == 10
    assert (kinds[WeightChanged][-1].primary, kinds[WeightChanged][-1].canary) == (90, 10)
    assert kinds[KubeEvent][-1].message == "Advance podinfo.test canary weight 10"
    assert run.cluster.writes == writes + 3  # only the test's own writes
    with pytest.raises(EngineError, match="read-only"):
        await run.engine.send(Abort(namespace="test", name="podinfo"))
    await run.stop()


@virtual
async def test_a_new_interval_takes_effect_at_once_other_spec_edits_at_the_next_tick() -> None:
    run = Run([podinfo(), canary(interval="1m")])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    run.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await run.until(lambda: run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 10)  # type: ignore[index]
    # When the threshold changes, nothing happens before the next interval
    run.cluster.patch_now(CANARY, "test", "podinfo", {"spec": {"analysis": {"threshold": 3}}})
    await asyncio.sleep(5)
    assert run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 10  # type: ignore[index]
    # When the interval changes, the canary ticks at once and then every 20s
    run.cluster.patch_now(CANARY, "test", "podinfo", {"spec": {"analysis": {"interval": "20s"}}})
    took = await run.until(
        lambda: run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 20)  # type: ignore[index]
    assert took < 1
    took = await run.until(
        lambda: run.cluster.get_now(CANARY, "test", "podinfo")["status"]["canaryWeight"] == 30)  # type: ignore[index]
    assert 19 <= took <= 21
    await run.stop()


@virtual
async def test_a_failing_watch_is_reported_once_and_retried() -> None:
    class Flaky(MemoryCluster):
        failures = 3

        async def watch(self, kind: Kind, namespace: str | None = None) -> AsyncIterator[WatchEvent]:
            if kind.kind == "Canary" and Flaky.failures > 0:
                Flaky.failures -= 1
                raise ClusterError("connection refused")
            async for ev in super().watch(kind, namespace):
                yield ev

    cluster = Flaky(LoopClock(epoch=EPOCH), instant_ready=True)
    run = Run([podinfo(), canary()], cluster=cluster)
    run.start()
    await run.until(lambda: run.phase() == "Initialized", limit=60)
    notices = [e for e in run.events if isinstance(e, EngineNotice) and "watching Canaries failed" in e.message]
    assert len(notices) == 1
    await run.stop()


@virtual
async def test_malformed_objects_never_stop_the_engine() -> None:
    # Given a healthy canary
    run = Run([podinfo(), canary()])
    run.start()
    await run.until(lambda: run.phase() == "Initialized")
    # when someone writes objects with a spec that is not an object, the cluster refuses them as an API server does
    for kind, api in (("Deployment", "apps/v1"), ("Canary", "flagger.app/v1beta1")):
        with pytest.raises(ClusterError, match=f'{kind} "corrupt" is invalid: spec: .* must be of type object'):
            run.cluster.create_now({"apiVersion": api, "kind": kind,
                                    "metadata": {"name": "corrupt", "namespace": "test"}, "spec": "not an object"})
    # and a Canary whose targetRef is a list (schema-valid where unknown fields are kept) gets through
    odd = canary()
    odd["metadata"]["name"] = "odd"
    odd["spec"]["targetRef"] = ["podinfo"]
    run.cluster.create_now(odd)
    run.set_image("stefanprodan/podinfo:3.1.1")
    # then the healthy canary still runs to promotion and the odd one is reported, not fatal
    await run.until(lambda: run.phase() == "Succeeded")
    assert run.task is not None and not run.task.done()
    problems = [e for e in run.events if isinstance(e, CanaryProblem)]
    assert {p.name for p in problems} == {"odd"}
    assert "spec.targetRef" in problems[0].message
    assert {s.name: s.problem is not None for s in run.engine.canary_states()} == {"podinfo": False, "odd": True}
    await run.stop()


@virtual
async def test_readonly_follows_the_virtual_service_and_the_canary_ingress_flagger_writes() -> None:
    istio = canary()
    istio["spec"]["provider"] = "istio"
    nginx = canary()
    nginx["metadata"]["name"] = "web"
    nginx["spec"].update({"provider": "nginx", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                             "name": "web"},
                          "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}})
    run = Run([podinfo(), istio, nginx], readonly=True)
    run.start()
    await asyncio.sleep(1)
    writes = run.cluster.writes

    # When "Flagger" writes the VirtualService of a session-affinity run: the sticky route, then the weighted one
    run.cluster.create_now(VIRTUAL_SERVICE.new("test", "podinfo", spec={"hosts": ["podinfo"], "http": [
        {"match": [{"headers": {"Cookie": {"regex": ".*flagger-cookie.*abc.*"}}}],
         "route": [{"destination": {"host": "podinfo-primary"}, "weight": 0},
                   {"destination": {"host": "podinfo-canary"}, "weight": 100}]},
        {"route": [{"destination": {"host": "podinfo-primary"}, "weight": 80},
                   {"destination": {"host": "podinfo-canary"}, "weight": 20,
                    "headers": {"response": {"add": {"Set-Cookie": "flagger-cookie=abc; Max-Age=86400"}}}}]}]}))
    # and the user's Ingress (no canary annotations) and its canary copy at weight 30
    ingress = {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                                              "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    run.cluster.create_now(INGRESS.new("test", "web", spec=ingress))
    run.cluster.create_now(INGRESS.new("test", "web-canary", spec=ingress) | {"metadata": {
        "name": "web-canary", "namespace": "test", "annotations": {
            "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "30"}}})
    await asyncio.sleep(1)
    weights = {(e.name, e.primary, e.canary) for e in run.events if isinstance(e, WeightChanged)}
    assert ("podinfo", 80, 20) in weights and ("web", 70, 30) in weights
    assert not any(name == "web" and (primary, weight) == (100, 0) for name, primary, weight in weights)

    # When Flagger steps the canary Ingress, the dashboard's weight follows
    run.cluster.patch_now(INGRESS, "test", "web-canary", {"metadata": {"annotations": {
        "nginx.ingress.kubernetes.io/canary-weight": "40"}}})
    await asyncio.sleep(1)
    last = [e for e in run.events if isinstance(e, WeightChanged) and e.name == "web"][-1]
    assert (last.primary, last.canary) == (60, 40)
    assert run.cluster.writes == writes + 4  # only the test's own writes
    await run.stop()
