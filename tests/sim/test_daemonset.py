"""DaemonSet targets, Flagger's way: a primary DaemonSet, the canary "scaled to zero" by a node selector."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from canarylab.engine.clock import run_virtual
from canarylab.engine.context import SCALE_TO_ZERO_LABEL
from canarylab.engine.kinds import DAEMON_SET
from canarylab.engine.targets import daemon_set_readiness
from canarylab.sim.cluster import NODES
from canarylab.sim.lab import SimLab
from tests.sim.conftest import Run

Simulate = Callable[..., Run]
Write = Callable[[str, str], str]
DS = str(Path(__file__).parent / "manifests" / "daemonset.yaml")


def test_the_default_scenario_ships_the_daemon_sets_new_image_and_promotes_it(simulate: Simulate) -> None:
    run = simulate("-f", DS)
    assert run.code == 0, run.err
    assert [m for m in run.messages if "iteration" in m] == \
        [f"Advance podinfo-ds.test canary iteration {i}/4" for i in range(1, 5)]
    assert run.messages[-4:] == ["Routing all traffic to canary",
                                 "Copying podinfo-ds.test template spec to podinfo-ds-primary.test",
                                 "Routing all traffic to primary",
                                 "Promotion completed! Scaling down podinfo-ds.test"]


def test_a_fault_on_the_daemon_set_rolls_it_back(simulate: Simulate, write: Write) -> None:
    scenario = write("faulty.yaml", """
        - at: 0s
          setImage: {daemonset: podinfo-ds, container: podinfod, image: stefanprodan/podinfo:3.1.1}
        - at: 0s
          fault: {daemonset: podinfo-ds, errorRate: 0.5}
    """)
    run = simulate("-f", DS, "--scenario", scenario)
    assert run.code == 1, run.err
    assert run.messages[-2:] == ["Rolling back podinfo-ds.test failed checks threshold reached 3",
                                 "Canary failed! Scaling down podinfo-ds.test"]


def test_a_scenario_naming_a_missing_daemon_set_is_refused(simulate: Simulate, write: Write) -> None:
    scenario = write("bad.yaml", """
        - at: 0s
          setImage: {daemonset: nope, container: podinfod, image: stefanprodan/podinfo:3.1.1}
    """)
    run = simulate("-f", DS, "--scenario", scenario)
    assert run.code == 2
    assert "setImage.daemonset: DaemonSet nope does not exist in namespace test (the lab has podinfo-ds.test)" \
        in run.err


def test_one_daemon_pod_per_node_and_the_canary_goes_to_zero_by_node_selector() -> None:
    async def main() -> dict[str, object]:
        lab = SimLab([DS], speed=None)
        await lab.start()
        try:
            async def phase(wanted: str) -> None:
                for _ in range(900):  # lab seconds on virtual time
                    if [s.phase for s in lab.engine.canary_states()] == [wanted]:
                        return
                    await asyncio.sleep(1)
                raise AssertionError(f"never {wanted}: {[s.phase for s in lab.engine.canary_states()]}")

            await phase("Initialized")
            initialized = lab.cluster.get_now(DAEMON_SET, "test", "podinfo-ds")
            pods_at_init = len([p for p in lab.cluster.pods[("test", "podinfo-ds")].values() if not p.terminating])
            await lab.set_image("test", "podinfo-ds", "podinfod", "stefanprodan/podinfo:3.1.1")
            await phase("Succeeded")
            await asyncio.sleep(5)  # the scaled-down daemon pods terminate
            primary = lab.cluster.get_now(DAEMON_SET, "test", "podinfo-ds-primary")
            target = lab.cluster.get_now(DAEMON_SET, "test", "podinfo-ds")
            return {
                "init_selector": initialized["spec"]["template"]["spec"].get("nodeSelector"),
                "pods_at_init": pods_at_init,
                "primary_status": primary["status"],
                "primary_image": primary["spec"]["template"]["spec"]["containers"][0]["image"],
                "primary_selector": primary["spec"]["template"]["spec"].get("nodeSelector"),
                "target_selector": target["spec"]["template"]["spec"].get("nodeSelector"),
                "target_pods": [p for p in lab.cluster.pods[("test", "podinfo-ds")].values() if not p.terminating],
            }
        finally:
            await lab.stop()

    got = run_virtual(main)
    # initialization "scaled the target to zero": Flagger's node selector, no daemon pod left
    assert got["init_selector"] == {SCALE_TO_ZERO_LABEL: "true"}
    assert got["pods_at_init"] == 0
    # after promotion the primary runs the new image on every node, without the selector
    status = got["primary_status"]
    assert isinstance(status, dict)
    assert status["desiredNumberScheduled"] == status["numberAvailable"] == status["updatedNumberScheduled"] \
        == len(NODES)
    assert got["primary_image"] == "stefanprodan/podinfo:3.1.1"
    assert got["primary_selector"] is None
    assert got["target_selector"] == {SCALE_TO_ZERO_LABEL: "true"} and got["target_pods"] == []


def test_daemon_set_readiness_uses_flaggers_conditions_and_messages() -> None:
    def ds(generation: int = 1, **status: int) -> dict:
        return {"metadata": {"generation": generation}, "status": {"observedGeneration": 1, **status}}

    assert daemon_set_readiness(ds(2), 60, 100, None, 0).error == \
        "waiting for rollout to finish: observed daemonset generation less than desired generation"
    assert daemon_set_readiness(ds(desiredNumberScheduled=3, updatedNumberScheduled=1), 60, 100, 0, 10).error == \
        "waiting for rollout to finish: 1 out of 3 new pods have been updated"
    assert daemon_set_readiness(ds(desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=1),
                                60, 100, 0, 10).error == \
        "waiting for rollout to finish: 1 of 3 (readyThreshold 100%) updated pods are available"
    late = daemon_set_readiness(ds(desiredNumberScheduled=3, updatedNumberScheduled=1), 60, 100, 0, 61)
    assert (late.error, late.retriable) == ("exceeded its progressDeadlineSeconds: 60", False)
    assert daemon_set_readiness(ds(desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=3),
                                60, 100, 0, 1000).ready
