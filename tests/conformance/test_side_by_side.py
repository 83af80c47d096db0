"""The quick conformance subset: the real Flagger and ``canarylab engine`` on the same real API server.

Given the same Canary, the same scripted Linkerd metrics (through a real Prometheus) and the same webhook
answers, when a new revision is rolled out under each, then both go through the same phases, weights, failed
checks and events and leave the same objects behind. ``make conformance`` runs all the scenarios.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canarylab.conformance.compare import compare
from canarylab.conformance.harness import (
    Substrate,
    delete_namespaces,
    find_binary,
    run_scenario,
    start_substrate,
    stop_substrate,
)  # fmt: skip
from canarylab.conformance.scenarios import BY_NAME, SCENARIOS

pytestmark = pytest.mark.timeout(420)

QUICK = [s.name for s in SCENARIOS if s.quick]


@pytest.fixture
async def substrate(control_plane, tmp_path: Path) -> AsyncIterator[Substrate]:  # type: ignore[no-untyped-def]
    sub = await start_substrate(Path(control_plane.kubeconfig), control_plane.context, find_binary("kubectl"),
                                tmp_path / "logs")
    try:
        yield sub
    finally:
        await stop_substrate(sub)


def test_the_quick_subset_is_small_and_covers_checks_steps_and_hooks() -> None:
    assert set(QUICK) == {"rollback-error-rate", "step-weights", "pre-rollout-failing"}
    assert len(SCENARIOS) >= 18


async def test_flagger_and_the_engine_agree_on_the_quick_scenarios(substrate: Substrate) -> None:
    import asyncio

    prefix = "q" + format(int(time.time()) % 4096, "x")
    pairs = await asyncio.gather(*(run_scenario(substrate, BY_NAME[name], prefix) for name in QUICK))
    # the session's API server is shared with other tests: leave it as we found it
    await delete_namespaces(substrate, [r.namespace for pair in pairs for r in pair.values()])
    report = []
    for name, pair in zip(QUICK, pairs, strict=True):
        f, e = pair["flagger"], pair["engine"]
        verdict = compare(f, e)
        report.append(f"{name}: {verdict.label} {verdict.first}")
        # The runs really happened: Flagger drove the canary, and the outcome is the scenario's.
        assert not f.timed_out and not e.timed_out, report[-1]
        assert f.phases and f.phases[-1] == ("Failed" if name != "step-weights" else "Succeeded"), f
        assert f.events, f"{name}: Flagger recorded no events; see {substrate.logs}"
    for pair in pairs:
        verdict = compare(pair["flagger"], pair["engine"])
        assert verdict.match or verdict.deliberate, "\n".join(report) + f"\nlogs: {substrate.logs}"
    weights = pairs[QUICK.index("step-weights")]["flagger"].weights
    assert weights[:4] == [0, 5, 15, 40], weights
