"""The Textual progress screen of `canarylab up`, driven by Pilot: steps move from pending to done."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import RichLog, Static

from canarylab.lab.installer import Installer, LabFailed
from canarylab.lab.runner import Command, Result
from canarylab.lab.state import LabState
from canarylab.lab.versions import Versions
from canarylab.screens.lab_progress import LabProgressApp, StepRow
from tests.lab.conftest import fresh_lab_runner


async def wait_until_finished(app: LabProgressApp, pilot: Pilot[Any], limit: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not app.finished:
        assert loop.time() < deadline, "the installer did not finish in time"
        await pilot.pause(0.02)


async def test_steps_start_pending_and_end_done_with_the_log_tail(versions: Versions) -> None:
    # given the lab's steps and a gate that holds the first command until the test has looked
    runner = fresh_lab_runner()
    installer = Installer("canarylab", "gatewayapi", runner, versions)
    app = LabProgressApp(installer, auto_exit=False)
    gate = asyncio.Event()
    original = runner.run
    loop = asyncio.get_running_loop()

    def held_run(command: Command, **kwargs: Any) -> Result:
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(timeout=20)
        return original(command, **kwargs)

    runner.run = held_run  # type: ignore[method-assign]
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.pause()
        rows = list(app.query(StepRow))
        assert [r.key for r in rows] == [s.key for s in installer.steps]
        # when nothing has finished yet: the first step runs, the others wait
        assert rows[0].status == "running"
        assert all(r.status == "pending" for r in rows[1:])
        # then the installer runs to the end
        gate.set()
        await wait_until_finished(app, pilot)
        await pilot.pause()
        assert all(r.status == "done" for r in rows), [(r.key, r.status) for r in rows]
        assert all("-done" in r.classes for r in rows)
        assert "The lab is ready." in str(app.query_one("#verdict", Static).render())
        log = app.query_one("#log", RichLog)
        assert any("kind create cluster --name canarylab" in line.text for line in log.lines)
        # and q quits once it is done, with no failure
        await pilot.press("q")
    assert app.return_value is None


async def test_a_failed_step_is_marked_and_q_returns_the_failure(versions: Versions) -> None:
    runner = fresh_lab_runner().when("linkerd --context kind-canarylab check", exit_code=1, stdout="× not ready")
    installer = Installer("canarylab", "smi", runner, versions)
    app = LabProgressApp(installer)
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_until_finished(app, pilot)
        await pilot.pause()
        statuses = {r.key: r.status for r in app.query(StepRow)}
        assert statuses["linkerd"] == "done"
        assert statuses["linkerd-check"] == "failed"
        assert statuses["viz"] == "pending"
        verdict = str(app.query_one("#verdict", Static).render())
        assert "linkerd check" in verdict and "Press q to quit" in verdict
        await pilot.press("q")
    assert app.return_value is not None
    assert app.return_value.step == "linkerd-check"


async def test_leaving_early_stops_the_installer_before_its_next_step(versions: Versions) -> None:
    # given the installer is busy with its first command
    runner = fresh_lab_runner()
    installer = Installer("canarylab", "smi", runner, versions)
    app = LabProgressApp(installer)
    gate = asyncio.Event()
    original = runner.run
    loop = asyncio.get_running_loop()

    def held_run(command: Command, **kwargs: Any) -> Result:
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(timeout=20)
        return original(command, **kwargs)

    runner.run = held_run  # type: ignore[method-assign]
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.pause()
        # when the user leaves with ctrl+q, then the command returns
        await pilot.press("ctrl+q")
        gate.set()
    # then preflight finishes but no later step starts: nothing is created
    deadline = loop.time() + 10
    while "preflight" not in LabState.load("canarylab").done:
        assert loop.time() < deadline, "preflight never finished"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert not any(line.startswith("kind create") for line in runner.lines())
    assert LabState.load("canarylab").done == ["preflight"]


def test_a_cancelled_installer_stops_before_the_next_step(versions: Versions) -> None:
    installer = Installer("canarylab", "smi", fresh_lab_runner(), versions)
    installer.cancel()
    with pytest.raises(LabFailed) as stopped:
        installer.run()
    assert "stopped before 'Preflight checks'" in str(stopped.value) and "resumes there" in str(stopped.value)
