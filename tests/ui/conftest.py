"""Shared fixtures: the dashboard on the real simulated lab and engine, and bounded waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from canarylab.app import CanaryLabApp
from canarylab.sim.lab import SimLab

FAST = 30.0
"""Lab speed for Pilot tests: the seed's 30 s interval becomes 1 s, so a run outlasts the keys a test
presses even on a loaded machine, and a rollback (5 failed checks) takes about 5 s."""
FASTER = 100.0
"""For scenarios that only wait for the end of a whole run."""


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., CanaryLabApp]:
    """``make_app(files=(), speed=FAST, readonly=False, **app_options)``: the app on a fresh SimLab."""

    def make(files: tuple[str, ...] = (), speed: float = FAST, readonly: bool = False,
             **options: object) -> CanaryLabApp:
        lab = SimLab(files, speed=speed, readonly=readonly)
        return CanaryLabApp(lab, export_dir=tmp_path, **options)  # type: ignore[arg-type]

    return make


async def until(pilot: Pilot[None], condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` after ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)
