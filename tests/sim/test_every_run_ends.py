"""Every run ends: a ``simulate --timeout`` that lands on, just before or just after an analysis tick stops the
engine's loops, in every phase a Canary can be in (issue 14).

The regression: a timeout exactly on a tick while the Canary waited at a closed confirm-promotion gate printed
the result and then spun at 100 % CPU forever (Python 3.11's ``asyncio.wait_for`` dropped the cancellation that
landed together with the gate's answer, and the per-canary loop kept iterating on virtual time).

Runs are on the virtual clock. A guarded loop raises :class:`RunawayLoop` as soon as virtual time goes past the
deadline by more than a few intervals, so a loop that does not stop fails the test at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import copy
import io
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canarylab.cli.simulate import EXIT_FAILED, EXIT_SUCCEEDED, EXIT_TIMEOUT, Simulation
from canarylab.engine.clock import VirtualTimeLoop
from canarylab.engine.events import EngineEvent, KubeEvent, PhaseChanged
from canarylab.manifests import seed_lab
from canarylab.sim.scenario import Step, default_scenario

INTERVAL = 10.0
SLACK = 5 * INTERVAL
"""How far past the deadline virtual time may go while the run stops (stopping takes no lab time at all)."""


class RunawayLoop(AssertionError):
    """Virtual time ran far past the deadline: some loop kept going after the run ended."""


class GuardedLoop(VirtualTimeLoop):
    limit = float("inf")

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        if self.time() > self.limit:
            raise RunawayLoop(f"virtual time reached {self.time():.1f}s, the run should have ended by "
                              f"{self.limit:.1f}s")


def _canary(hooks: list[dict[str, Any]]) -> dict[str, Any]:
    canary = copy.deepcopy(next(o for o in seed_lab() if o["kind"] == "Canary"))
    analysis = canary["spec"]["analysis"]
    analysis.update(interval=f"{int(INTERVAL)}s", stepWeight=25, maxWeight=50, threshold=2)
    analysis["webhooks"] = [h for h in analysis["webhooks"] if h["type"] != "rollout"] + hooks
    return canary


def _gate(kind: str) -> dict[str, Any]:
    return {"name": f"{kind}-gate", "type": kind, "url": "http://flagger-loadtester.test/gate/check"}


FAULT = Step(0.0, "fault", "test", {"deployment": "podinfo", "errorRate": 0.5}, 2)

# Each variant drives the Canary through a different set of phases (the comment says which).
VARIANTS: dict[str, tuple[list[dict[str, Any]], list[Step]]] = {
    # Initializing, Initialized, Progressing, Promoting, Finalising, Succeeded
    "promotes": ([], default_scenario()),
    # Progressing, then Failed
    "rolls-back": ([], [*default_scenario(), FAULT]),
    # Waiting at a closed confirm-rollout gate
    "confirm-rollout": ([_gate("confirm-rollout")], default_scenario()),
    # Progressing, held at a closed confirm-traffic-increase gate
    "confirm-traffic-increase": ([_gate("confirm-traffic-increase")], default_scenario()),
    # WaitingPromotion at a closed confirm-promotion gate (the spin of issue 14)
    "confirm-promotion": ([_gate("confirm-promotion")], default_scenario()),
}


def _objects(hooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in seed_lab() if o["kind"] != "Canary"] + [_canary(hooks)]


def _run(variant: str, timeout: float) -> tuple[int, list[float], list[str], str]:
    """One run; returns the exit code, the lab times of every tick that emitted something, the phases seen,
    and stdout."""
    hooks, steps = VARIANTS[variant]
    out, err = io.StringIO(), io.StringIO()
    session = Simulation(_objects(hooks), steps, as_json=True, timeout=timeout, out=out, err=err)
    instants: list[float] = []
    phases: list[str] = []

    def seen(event: EngineEvent) -> None:
        start = session.lab.started_at or 0.0
        if isinstance(event, KubeEvent):
            instants.append(event.time - start)
        elif isinstance(event, PhaseChanged):
            phases.append(event.new)

    session.lab.engine.subscribe(seen)

    def guarded() -> GuardedLoop:
        loop = GuardedLoop()
        loop.limit = timeout + SLACK
        return loop

    with asyncio.Runner(loop_factory=guarded) as runner:
        code = runner.run(session.main())
    return code, instants, phases, out.getvalue()


_TICKS: dict[str, list[float]] = {}


def _ticks(variant: str) -> list[float]:
    """The lab times at which the engine ticked (and said something) in a 20-interval run of ``variant``."""
    if variant not in _TICKS:
        _, instants, _, _ = _run(variant, 20 * INTERVAL)
        _TICKS[variant] = sorted(set(instants))
    return _TICKS[variant]


def test_the_variants_reach_the_phases_they_are_meant_to() -> None:
    reached = {v: set(_run(v, 20 * INTERVAL)[2]) for v in VARIANTS}
    assert {"Progressing", "Promoting", "Finalising", "Succeeded"} <= reached["promotes"]
    assert "Failed" in reached["rolls-back"]
    assert "Waiting" in reached["confirm-rollout"]
    assert "WaitingPromotion" in reached["confirm-promotion"]
    assert "Progressing" in reached["confirm-traffic-increase"]


def test_a_timeout_exactly_on_the_tick_at_a_closed_confirm_promotion_gate_ends_the_run() -> None:
    """The finding of issue 14, pinned: before the fix this ran forever (RunawayLoop here)."""
    ticks = _ticks("confirm-promotion")
    started = time.monotonic()
    code, _, phases, out = _run("confirm-promotion", ticks[-1])
    assert code == EXIT_TIMEOUT
    assert "WaitingPromotion" in phases
    assert out.splitlines()[-1].startswith('{"kind": "result"')
    assert time.monotonic() - started < 10


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(variant=st.sampled_from(sorted(VARIANTS)), tick=st.integers(min_value=0, max_value=60),
       delta=st.sampled_from([0.0, 0.0, -1e-9, 1e-9, -1e-3, 1e-3, -0.5, 0.5, -INTERVAL / 2]))
def test_timeouts_on_and_around_tick_instants_always_end_the_run(variant: str, tick: int, delta: float) -> None:
    ticks = _ticks(variant)
    timeout = ticks[tick % len(ticks)] + delta
    if timeout <= 0:
        timeout = 1e-3
    started = time.monotonic()
    code, _, _, out = _run(variant, timeout)  # RunawayLoop if any loop keeps going
    assert code in (EXIT_SUCCEEDED, EXIT_FAILED, EXIT_TIMEOUT)
    assert out.splitlines()[-1].startswith('{"kind": "result"')
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_tick_instant_of_every_variant_as_the_timeout(variant: str) -> None:
    """Exhaustive over the first 20 intervals: the timeout exactly on each tick the engine made."""
    for instant in _ticks(variant):
        if instant <= 0:
            continue
        code, _, _, _ = _run(variant, instant)
        assert code in (EXIT_SUCCEEDED, EXIT_FAILED, EXIT_TIMEOUT)
