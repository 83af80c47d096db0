"""SVG snapshots of every screen and modal at fixed sizes, on the real engine and simulated lab.

Deterministic: the whole app runs on :class:`VirtualTimeLoop` (virtual time, as ``canarylab simulate``
does) with the lab clock's epoch fixed, so lab times, weights and metric values are the same every run.
Update after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at
the report.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot

from canarylab.app import CanaryLabApp
from canarylab.engine.clock import VirtualTimeLoop
from canarylab.sim.lab import SimLab

EPOCH = 1_700_000_000.0  # 2023-11-14T22:13:20Z
LAB_TIMEOUT = 3600.0  # lab seconds any wait may take (virtual: costs well under a second of real time)


class _FrozenClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _VirtualPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return VirtualTimeLoop()


@pytest.fixture(autouse=True)
def virtual_time() -> Iterator[None]:
    """Every loop the snapshot creates runs on virtual time."""
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(_VirtualPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(previous)


def seed_app(**options: Any) -> CanaryLabApp:
    lab = SimLab(speed=None)
    lab.clock.epoch = EPOCH  # a fixed clock: the same timestamps every run
    # The lab starts in run_before, once Textual's start-up (which waits on real CPU idleness) is over.
    # Reports would go here (the help box names the folder; no snapshot saves one).
    options.setdefault("export_dir", Path("/tmp/canarylab-reports"))
    return CanaryLabApp(lab, start_lab=False, **options)


def _press(app: CanaryLabApp, key: str) -> None:
    """Send one key as the terminal would. Not ``pilot.press``: it waits for the process's CPU to go
    idle (real time), which moves virtual time by a varying amount and so shifts the run."""
    char = {"enter": "\r", "slash": "/", "question_mark": "?", "space": " "}.get(key, key if len(key) == 1 else None)
    event = events.Key(key, char)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


def steps(*script: str | Callable[[CanaryLabApp], bool]) -> Callable[[Pilot[Any]], Any]:
    """A ``run_before``: for each item, wait (in lab time) for a condition or press a key."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app: CanaryLabApp = pilot.app  # type: ignore[assignment]
        await app.lab.start()
        for item in script:
            if isinstance(item, str):
                _press(app, item)
                await asyncio.sleep(0.5)
                continue
            start = app.lab.clock.now()
            while not item(app):
                assert app.lab.clock.now() - start < LAB_TIMEOUT, "the lab never reached the state to snapshot"
                await asyncio.sleep(0.1)
            # Go on at the next whole lab second: the poll above wakes at a varying offset after the event.
            elapsed = app.lab.clock.now() - EPOCH
            await asyncio.sleep(math.ceil(elapsed) - elapsed + 0.25)
        # Freeze the lab where the script left it: the screenshot itself waits a variable amount of
        # (virtual) time, during which the engine would tick on and the header's clock would move.
        await app.lab.stop()
        app.lab.clock = _FrozenClock(app.lab.clock.now())  # type: ignore[misc]
        # The pods panel is polled on a real-time interval: read the frozen lab's pods once more, so the panel
        # shows where the script left them, however loaded the machine is.
        await app._poll()
        app._dirty = True
        await asyncio.sleep(1.0)  # a few coalesced repaints

    return run_before


def phase_is(phase: str) -> Callable[[CanaryLabApp], bool]:
    return lambda app: any(s.phase == phase for s in app.lab.engine.canary_states())


def weight_at_least(weight: int) -> Callable[[CanaryLabApp], bool]:
    return lambda app: any(s.canary_weight >= weight for s in app.lab.engine.canary_states())


INITIALIZED = phase_is("Initialized")
SHIP = (INITIALIZED, "b", "enter")


def test_overview(snap_compare: Any) -> None:
    assert snap_compare(seed_app(open_single=False), terminal_size=(110, 16), run_before=steps(INITIALIZED))


def test_detail_initialized_80x24(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(80, 24), run_before=steps(INITIALIZED))


def test_detail_mid_run_120x40(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(120, 40), run_before=steps(*SHIP, weight_at_least(30)))


def test_detail_mid_run_80x24(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(80, 24), run_before=steps(*SHIP, weight_at_least(30)))


def test_detail_after_a_fault_rolled_back_120x40(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(120, 40), run_before=steps(
        *SHIP, weight_at_least(15), "f", "down", "enter", phase_is("Failed"),
    ))  # fmt: skip


def test_help(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(100, 30), run_before=steps(INITIALIZED, "question_mark"))


def test_bump_modal(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(100, 30), run_before=steps(INITIALIZED, "b"))


def test_fault_modal(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(100, 30), run_before=steps(*SHIP, weight_at_least(5), "f"))


def test_rollback_confirmation(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(100, 30), run_before=steps(*SHIP, weight_at_least(5), "r"))


def test_promote_confirmation(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(100, 30), run_before=steps(*SHIP, weight_at_least(5), "p"))


def test_overview_filtered(snap_compare: Any) -> None:
    assert snap_compare(seed_app(open_single=False), terminal_size=(110, 16),
                        run_before=steps(INITIALIZED, "slash", "p", "o", "d"))


def failed_checks_at_least(count: int) -> Callable[[CanaryLabApp], bool]:
    return lambda app: any(s.failed_checks >= count for s in app.lab.engine.canary_states())


FAULT = ("f", "down", "enter")


def test_detail_with_an_active_fault_120x40(snap_compare: Any) -> None:
    # the header badge, the pods panel's fault line (what, on which revision, since when) and the hint
    assert snap_compare(seed_app(), terminal_size=(120, 40), run_before=steps(
        *SHIP, weight_at_least(10), *FAULT, failed_checks_at_least(2),
    ))  # fmt: skip


def test_detail_with_an_active_fault_80x24(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(80, 24), run_before=steps(
        *SHIP, weight_at_least(10), *FAULT, failed_checks_at_least(2),
    ))  # fmt: skip


def test_detail_after_a_new_image_left_the_fault_behind_120x40(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(120, 40), run_before=steps(
        *SHIP, weight_at_least(10), *FAULT, phase_is("Failed"), "b", "enter", weight_at_least(5),
    ))  # fmt: skip


def test_bump_modal_while_initializing_queues(snap_compare: Any) -> None:
    assert snap_compare(seed_app(), terminal_size=(100, 30), run_before=steps(phase_is("Initializing"), "b"))
