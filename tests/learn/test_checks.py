"""Step checks decide from engine events and cluster state, never from time."""

from __future__ import annotations

from pathlib import Path

from canarylab.engine.events import CheckEvaluated, KubeEvent, WeightChanged
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.learn.checks import Observation, evaluate, passed
from canarylab.learn.model import parse_check
from canarylab.manifests import seed_lab

NS, NAME = "test", "podinfo"


def cluster() -> MemoryCluster:
    c = MemoryCluster(instant_ready=True)
    c.load(seed_lab())
    return c


def obs(c: MemoryCluster, events: list, tmp_path: Path) -> Observation:  # type: ignore[type-arg]
    return Observation(events, c, NS, NAME, tmp_path)


def event(message: str, kind: str = "Normal", name: str = NAME) -> KubeEvent:
    return KubeEvent(time=0, namespace=NS, name=name, type=kind, reason="Synced", message=message)  # type: ignore[arg-type]


async def test_an_event_check_sees_only_events_of_this_canary(tmp_path: Path) -> None:
    check = parse_check({"event": "New revision detected!"}, "t")
    c = cluster()
    assert not await passed(check, obs(c, [], tmp_path))
    assert not await passed(check, obs(c, [event("New revision detected! Scaling up x", name="other")], tmp_path))
    assert await passed(check, obs(c, [event("New revision detected! Scaling up podinfo.test")], tmp_path))
    warning = parse_check({"warning": "Halt"}, "t")
    assert not await passed(warning, obs(c, [event("Halt advancement")], tmp_path))  # a Normal event
    assert await passed(warning, obs(c, [event("Halt advancement", "Warning")], tmp_path))


async def test_state_checks_read_the_cluster(tmp_path: Path) -> None:
    c = cluster()
    image = parse_check({"image": {"deployment": "podinfo", "contains": "3.1.1"}}, "t")
    assert not await passed(image, obs(c, [], tmp_path))
    dep = c.get_now(*_dep())
    assert dep is not None
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "stefanprodan/podinfo:3.1.1"
    c.replace_now(dep)
    assert await passed(image, obs(c, [], tmp_path))
    hook = parse_check({"canaryWebhook": "confirm-promotion"}, "t")
    assert not await passed(hook, obs(c, [], tmp_path))
    assert await passed(parse_check({"canaryWebhook": "pre-rollout"}, "t"), obs(c, [], tmp_path))
    assert await passed(parse_check({"exists": {"kind": "Deployment", "name": "podinfo"}}, "t"), obs(c, [], tmp_path))
    assert not await passed(parse_check({"exists": {"kind": "MetricTemplate", "name": "x"}}, "t"), obs(c, [], tmp_path))


def _dep():  # type: ignore[no-untyped-def]
    from canarylab.engine.kinds import DEPLOYMENT

    return DEPLOYMENT, NS, NAME


async def test_all_reports_each_part_and_weight_and_metric_checks_use_their_numbers(tmp_path: Path) -> None:
    check = parse_check({"all": [{"weight": {"atLeast": 25}}, {"metric": {"name": "request-duration", "ok": False}},
                                 {"canaryWeightStayed": {"max": 0}}]}, "t")
    events = [WeightChanged(time=0, namespace=NS, name=NAME, primary=80, canary=20),
              CheckEvaluated(time=0, namespace=NS, name=NAME, metric="request-duration", value=630.0, min=None,
                             max=500.0, ok=False)]
    parts = await evaluate(check, obs(cluster(), events, tmp_path))
    assert [(p.text, p.ok) for p in parts] == [
        ("canary weight 25 %", False), ("check request-duration fails", True),
        ("canary weight stays at most 0 %", False),
    ]


async def test_matches_holds_once_the_file_is_applied(tmp_path: Path) -> None:
    (tmp_path / "canary.yaml").write_text(
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: podinfo, namespace: test}\n"
        "spec:\n  analysis: {interval: 30s, threshold: 5}\n")
    check = parse_check({"matches": "canary.yaml"}, "t")
    assert await passed(check, obs(cluster(), [], tmp_path))  # the seed's Canary has those fields
    edited = (tmp_path / "canary.yaml").read_text().replace("threshold: 5", "threshold: 7")
    (tmp_path / "canary.yaml").write_text(edited)
    assert not await passed(check, obs(cluster(), [], tmp_path))
    (tmp_path / "canary.yaml").write_text("{ not yaml")
    assert not await passed(check, obs(cluster(), [], tmp_path))


async def test_a_simulate_check_runs_the_scenario_once_per_content(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    async def fake_simulate(args):  # type: ignore[no-untyped-def]
        calls.append(list(args))
        return 1, "+04:00 Warning podinfo.test Rolling back podinfo.test failed checks threshold reached 5"

    (tmp_path / "s.yaml").write_text("- at: 0s\n  setImage: {deployment: podinfo, container: podinfod, image: x}\n")
    check = parse_check({"simulate": {"scenario": "s.yaml", "exit": 1, "event": "Rolling back"}}, "t")
    o = Observation([], cluster(), NS, NAME, tmp_path, fake_simulate)
    assert await passed(check, o) and await passed(check, o)
    assert len(calls) == 1 and calls[0][:2] == ["--scenario", str(tmp_path / "s.yaml")]
    assert not await passed(parse_check({"simulate": {"scenario": "s.yaml", "exit": 0}}, "t"), o)
