"""NGINX in the simulated lab: users come in through the ingress; the canary Ingress's weight decides."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.sim.conftest import Run

Simulate = Callable[..., Run]
Write = Callable[[str, str], str]
NGINX = str(Path(__file__).parent / "manifests" / "nginx.yaml")


def test_an_nginx_canary_steps_its_ingress_weight_and_promotes(simulate: Simulate) -> None:
    run = simulate("-f", NGINX)
    assert run.code == 0, run.err
    assert run.weights() == [10, 20, 30, 40, 50]
    assert run.messages[-1] == "Promotion completed! Scaling down podinfo.test"


def test_errors_that_reach_users_through_the_canary_ingress_roll_it_back(simulate: Simulate, write: Write) -> None:
    scenario = write("faulty.yaml", """
        - at: 0s
          setImage: {deployment: podinfo, container: podinfod, image: stefanprodan/podinfo:3.1.1}
        - at: 0s
          fault: {deployment: podinfo, errorRate: 0.5}
    """)
    run = simulate("-f", NGINX, "--scenario", scenario)
    assert run.code == 1, run.err
    assert run.messages[-1] == "Canary failed! Scaling down podinfo.test"
