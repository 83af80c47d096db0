"""A/B testing in the simulated lab: the loadtester's ``hey -H`` requests reach the canary, other users don't."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from canarylab.engine.clock import run_virtual
from canarylab.sim.lab import SimLab
from tests.sim.conftest import Run

Simulate = Callable[..., Run]
Write = Callable[[str, str], str]

AB = str(Path(__file__).parent / "manifests" / "ab-testing.yaml")


def test_an_ab_canary_runs_its_iterations_and_promotes(simulate: Simulate) -> None:
    run = simulate("-f", AB)
    assert run.code == 0, run.err
    iterations = [m for m in run.messages if "canary iteration" in m]
    assert iterations == [f"Advance podinfo.test canary iteration {i}/10" for i in range(1, 11)]
    assert run.messages[-1] == "Promotion completed! Scaling down podinfo.test"


def test_errors_on_the_new_version_reach_only_the_matched_users_and_roll_it_back(simulate: Simulate,
                                                                                 write: Write) -> None:
    scenario = write("faulty.yaml", """
        - at: 0s
          setImage: {namespace: test, deployment: podinfo, container: podinfod, image: stefanprodan/podinfo:3.1.1}
        - at: 0s
          fault: {namespace: test, deployment: podinfo, errorRate: 0.5}
    """)
    run = simulate("-f", AB, "--scenario", scenario)
    assert run.code == 1
    assert any(m.startswith("Halt podinfo.test advancement success rate") for m in run.messages)
    assert run.messages[-1] == "Canary failed! Scaling down podinfo.test"


def test_only_requests_with_the_matched_header_land_on_the_canary() -> None:
    async def main() -> tuple[set[str], set[str], set[str]]:
        lab = SimLab([AB], speed=None)
        await lab.start()
        try:
            for _ in range(600):  # lab seconds, on virtual time
                if [s.phase for s in lab.engine.canary_states()] == ["Initialized"]:
                    break
                await asyncio.sleep(1)
            await lab.set_image("test", "podinfo", "podinfod", "stefanprodan/podinfo:3.1.1")
            for _ in range(600):  # until the first iteration routed the matched users to the canary
                state = lab.engine.canary_states()[0]
                if state.iterations >= 1:
                    break
                await asyncio.sleep(1)
            traffic = lab.traffic
            plain = {pod.deployment for pod, _ in traffic.endpoints("test", "podinfo")}
            insider = {pod.deployment for pod, _ in traffic.endpoints("test", "podinfo", (("X-Canary", "insider"),))}
            cookie = {pod.deployment for pod, _ in
                      traffic.endpoints("test", "podinfo", (("Cookie", "canary=always; theme=dark"),))}
            return plain, insider, cookie
        finally:
            await lab.stop()

    plain, insider, cookie = run_virtual(main)
    assert plain == {"podinfo-primary"}
    assert insider == {"podinfo"} and cookie == {"podinfo"}  # header names match case-insensitively
