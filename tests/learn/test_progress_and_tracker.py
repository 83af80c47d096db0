"""Progress survives a restart; the tracker advances only when a check passes; a real lab gets a setup step."""

from __future__ import annotations

import itertools
from pathlib import Path

from canarylab.engine.events import KubeEvent
from canarylab.engine.kinds import CANARY, DEPLOYMENT
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.errors import UserError
from canarylab.learn.apply import apply_file
from canarylab.learn.model import find_lesson, load_lessons
from canarylab.learn.progress import Progress, default_path
from canarylab.learn.tracker import Tracker, for_lab, prepare_work_dir
from canarylab.manifests import seed_lab


def test_progress_is_saved_per_lab_and_reset(tmp_path: Path) -> None:
    path = tmp_path / "state" / "learn.json"
    progress = Progress(path)
    progress.record("simulated lab", "seed", 3)
    progress.record("context kind-canarylab", "gates", 1)
    again = Progress.load(path)
    assert again.current("simulated lab") == "seed" and again.step("simulated lab", "seed") == 3
    assert again.current("context kind-canarylab") == "gates" and not again.completed("simulated lab", "seed")
    again.record("simulated lab", "seed", 5, completed=True)
    assert Progress.load(path).completed("simulated lab", "seed")
    assert again.reset() and not path.exists() and not again.reset()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{ broken")
    assert Progress.load(path).labs == {}  # an unreadable file is a fresh start, not a crash


def test_the_progress_file_follows_xdg_state_home(tmp_path: Path) -> None:
    assert default_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "canarylab" / "learn.json"
    assert default_path({"CANARYLAB_LEARN_PROGRESS": "/x/p.json"}) == Path("/x/p.json")


def _event(message: str) -> KubeEvent:
    return KubeEvent(time=0, namespace="test", name="podinfo", type="Normal", reason="Synced", message=message)


async def test_the_tracker_advances_on_the_check_and_shows_the_hint_after_a_while(tmp_path: Path) -> None:
    cluster = MemoryCluster(instant_ready=True)
    cluster.load(seed_lab())
    clock = itertools.count(0.0, 10.0)  # each look at the clock is 10 s later
    advanced: list[tuple[int, bool]] = []
    tracker = Tracker(find_lesson(load_lessons(), "seed"), cluster, tmp_path, now=lambda: next(clock),
                      on_advance=lambda step, done: advanced.append((step, done)))
    assert not await tracker.update()  # nothing happened: step 1 stays
    tracker.feed([_event("Initialization done! podinfo.test")])
    assert not await tracker.update()  # the event alone is not enough: podinfo-primary must exist too
    primary = cluster.get_now(DEPLOYMENT, "test", "podinfo")
    assert primary is not None
    primary["metadata"] = {"name": "podinfo-primary", "namespace": "test"}
    cluster.create_now(primary)
    assert await tracker.update()
    assert advanced == [(1, False)] and tracker.step is not None and tracker.step.title == "Ship podinfo 3.1.1"
    view = tracker.view(lambda key: {"bump": "b"}[key])
    assert view.equivalents[0] == ("b", "kubectl -n test set image deployment/podinfo "
                                        "podinfod=stefanprodan/podinfo:3.1.1")
    assert view.hint == ""  # 10 s on the step
    for _ in range(5):
        tracker.now()
    assert "3.1.0" in tracker.view().hint  # 45 s later the hint shows; completion still needs the check
    assert tracker.view(index=0).done and all(p.ok for p in tracker.view(index=0).parts)


async def test_on_a_real_lab_a_lesson_with_its_own_objects_starts_with_kubectl_apply(tmp_path: Path) -> None:
    gates = find_lesson(load_lessons(), "gates")
    real = for_lab(gates, real=True, work_dir=tmp_path)
    assert len(real.steps) == len(gates.steps) + 1
    setup = real.steps[0]
    assert setup.kubectl == f"kubectl apply -f {tmp_path / 'gates-canary.yaml'}"
    prepare_work_dir(real, tmp_path)
    cluster = MemoryCluster(instant_ready=True)
    cluster.load(seed_lab())
    tracker = Tracker(real, cluster, tmp_path, real=True)
    assert tracker.view().do.startswith("type in another terminal: kubectl apply -f ")
    assert not await tracker.update()  # the seed's Canary has no confirm-rollout gate
    assert await apply_file(cluster, tmp_path / "gates-canary.yaml") == ["canary.flagger.app/podinfo configured"]
    assert await tracker.update()
    assert for_lab(gates, real=False, work_dir=tmp_path) is gates


async def test_apply_creates_or_configures_and_refuses_an_invalid_canary(tmp_path: Path) -> None:
    cluster = MemoryCluster(instant_ready=True)
    cluster.load(seed_lab())
    lesson = find_lesson(load_lessons(), "metric")
    prepare_work_dir(lesson, tmp_path)
    lines = await apply_file(cluster, tmp_path / "my-check.yaml")
    assert lines == ["metrictemplate.flagger.app/error-rate created", "canary.flagger.app/podinfo configured"]
    canary = cluster.get_now(CANARY, "test", "podinfo")
    assert canary is not None and canary["spec"]["analysis"]["interval"] == "10s"
    assert (await apply_file(cluster, tmp_path / "my-check.yaml"))[1] == "canary.flagger.app/podinfo unchanged"
    bad = tmp_path / "bad.yaml"
    bad.write_text((tmp_path / "my-check.yaml").read_text().replace("stepWeight: 10", "stepWeight: 500"))
    try:
        await apply_file(cluster, bad)
    except UserError as err:
        assert "bad.yaml: document 2 (Canary podinfo): spec.analysis.stepWeight" in str(err)
    else:
        raise AssertionError("an invalid Canary was applied")


async def test_a_fresh_simulated_lab_catches_up_to_the_saved_step(tmp_path: Path) -> None:
    from canarylab.learn.player import catch_up, lesson_lab

    lesson = find_lesson(load_lessons(), "gates")
    lab = lesson_lab(lesson, speed=2.0)
    await lab.start()
    try:
        prepare_work_dir(lesson, tmp_path)
        # given a learner who had done 3 steps (shipped into the gate, opened it, paused), a new lab replays them
        assert await catch_up(lab, lesson, 3, tmp_path, speed=400.0) == 3
        canary = lab.cluster.get_now(CANARY, "test", "podinfo")
        assert canary is not None and canary["metadata"]["annotations"]["canarylab.dev/paused"] == "true"
        assert canary["status"]["phase"] == "Progressing"
        assert lab.clock.speed == 2.0  # back to the learner's speed
    finally:
        await lab.stop()
