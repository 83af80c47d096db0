"""Istio with mirroring in the simulated lab: the copies reach the canary and its checks, users never see it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.sim.conftest import Run

Simulate = Callable[..., Run]
Write = Callable[[str, str], str]
MIRROR = str(Path(__file__).parent / "manifests" / "istio-mirror.yaml")


def test_mirrored_requests_feed_the_canarys_checks_and_it_is_promoted(simulate: Simulate) -> None:
    run = simulate("-f", MIRROR)
    assert run.code == 0, run.err
    # mirrored background traffic gives the canary metrics from the first check on: no "no values" halt
    assert not any("no values found" in m for m in run.messages)
    assert "Stop traffic mirroring and route all traffic to canary" in run.messages
    assert run.messages[-1] == "Promotion completed! Scaling down podinfo.test"


def test_errors_in_the_mirrored_copies_roll_the_new_version_back(simulate: Simulate, write: Write) -> None:
    scenario = write("faulty.yaml", """
        - at: 0s
          setImage: {deployment: podinfo, container: podinfod, image: stefanprodan/podinfo:3.1.1}
        - at: 0s
          fault: {deployment: podinfo, errorRate: 0.5}
    """)
    run = simulate("-f", MIRROR, "--scenario", scenario)
    assert run.code == 1, run.err
    assert any(m.startswith("Halt podinfo.test advancement success rate") for m in run.messages)
    assert "Stop traffic mirroring and route all traffic to canary" not in run.messages
