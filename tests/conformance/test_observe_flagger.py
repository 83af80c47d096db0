"""Observe mode on the real Flagger: ``canarylab ui --readonly`` follows a run Flagger drives.

Given Flagger v1.44 running out of cluster on the real API server and a Canary held at its confirm-promotion
gate, when the read-only dashboard watches that namespace, then it shows the phase, the canary weight and the
Events that ``kubectl describe canary`` shows, while held and after the promotion; and it wrote nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canarylab.app import CanaryLabApp
from canarylab.conformance.harness import (
    Run,
    Substrate,
    delete_namespaces,
    find_binary,
    start_substrate,
    stop_substrate,
)  # fmt: skip
from canarylab.conformance.scenarios import BY_NAME, canary
from canarylab.kube.lab import KubeLab
from canarylab.screens.detail import DetailScreen
from tests.ui.conftest import until
from tests.ui.screen_text import screen_text

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def substrate(control_plane, tmp_path: Path) -> AsyncIterator[Substrate]:  # type: ignore[no-untyped-def]
    sub = await start_substrate(Path(control_plane.kubeconfig), control_plane.context, find_binary("kubectl"),
                                tmp_path / "logs")
    try:
        yield sub
    finally:
        await stop_substrate(sub)


def describe(sub: Substrate, namespace: str) -> dict[str, object]:
    """Phase, canary weight and event messages from ``kubectl describe canary podinfo``."""
    text = sub.kubectl_run("describe", "canary", "podinfo", "-n", namespace)
    phase = re.search(r"^\s+Phase:\s+(\S+)", text, re.M)
    weight = re.search(r"^\s+Canary Weight:\s+(\d+)", text, re.M)
    events = text.split("Events:", 1)[1] if "Events:" in text else ""
    messages = [m.group(1).strip() for m in re.finditer(r"flagger\s+(\S.*)$", events, re.M)]
    return {"phase": phase.group(1) if phase else None, "weight": int(weight.group(1)) if weight else None,
            "messages": messages, "text": text}


def on_screen(message: str, text: str) -> bool:
    """The event log wraps long messages inside its panel at a word; their first 40 characters stay on one line."""
    return " ".join(message.split())[:40] in text


def shown(app: CanaryLabApp) -> str:
    return " ".join(screen_text(app).split())


async def test_the_readonly_dashboard_shows_what_kubectl_describe_shows_for_a_flagger_run(
        control_plane, substrate: Substrate, tmp_path: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))  # canarylab created no context here
    namespace = f"observe-{int(time.time()) % 4096:x}"
    gate = BY_NAME["gate-confirm-promotion"]
    hooks = gate.canary["spec"]["analysis"]["webhooks"]
    scenario = dataclasses.replace(gate, canary=canary({"maxWeight": 20, "webhooks": hooks}))
    run = Run(substrate, scenario, "flagger", namespace)
    flagger = asyncio.create_task(run.run())
    # what `canarylab ui --context canarylab-kwok -n NS --readonly` runs
    lab = KubeLab(control_plane.context, [namespace], readonly=True, kubeconfig=str(control_plane.kubeconfig),
                  log=lambda line: None)
    await lab.start()
    try:
        app = CanaryLabApp(lab, start_lab=False)
        async with app.run_test(size=(200, 60)) as pilot:
            # held at the gate: Flagger keeps the canary at weight 20 in WaitingPromotion for a few ticks
            await until(pilot, lambda: run.observed(0).phase == "WaitingPromotion", "Flagger at the gate", 200)
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen", 30)
            await until(pilot, lambda: "WaitingPromotion" in shown(app), "WaitingPromotion on screen", 30)
            held = describe(substrate, namespace)
            # Flagger zeroes status.canaryWeight in WaitingPromotion (setStatusPhase) while the TrafficSplit still
            # sends 20 % to the canary: describe prints the status, the dashboard draws the TrafficSplit.
            assert held["phase"] == "WaitingPromotion" and held["weight"] == 0, held["text"]
            assert run.observed(0).canary_weight == 20
            await until(pilot, lambda: "waiting for promotion approval" in shown(app), "the Halt event", 30)
            text = shown(app)
            assert "primary podinfo:6.0.0 80%" in text and "20% podinfo:6.0.1 canary" in text, screen_text(app)
            assert "WaitingPromotion · gate approve-promotion" in text
            for message in held["messages"]:  # type: ignore[attr-defined]
                assert on_screen(message, text), f"{message!r} (kubectl describe) not on screen:\n{screen_text(app)}"
            # opened: Flagger promotes; the dashboard follows to Succeeded with the same events
            await until(pilot, lambda: flagger.done(), "Flagger's run to end", 200)
            await until(pilot, lambda: "Succeeded" in shown(app), "Succeeded on screen", 30)
            done = describe(substrate, namespace)
            assert done["phase"] == "Succeeded" and done["weight"] == 0, done["text"]
            messages: list[str] = done["messages"]  # type: ignore[assignment]
            missing = lambda: [m for m in messages if not on_screen(m, shown(app))]  # noqa: E731
            try:
                await until(pilot, lambda: not missing(), "every event kubectl describe shows", 30)
            except AssertionError:
                raise AssertionError(f"not on screen: {missing()}\n{screen_text(app)}\n{done['text']}") from None
            # the overview lists the Canary with Flagger's phase and weight
            await pilot.press("escape")
            await until(pilot, lambda: "podinfo" in shown(app) and "Succeeded" in shown(app), "the overview", 20)
    finally:
        await lab.stop()
        if not flagger.done():
            flagger.cancel()
        rec = await asyncio.gather(flagger, return_exceptions=True)
        await delete_namespaces(substrate, [namespace])  # the session's API server is shared
    recording = rec[0]
    assert not isinstance(recording, BaseException), recording
    assert recording.phases[-1] == "Succeeded"
    assert lab.cluster.writes == 0  # read-only: canarylab wrote nothing
