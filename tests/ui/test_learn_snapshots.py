"""SVG snapshots of ``canarylab learn``'s lesson panel at 120x40 (a column) and 80x24 (a band), as in
``test_snapshots.py``: virtual time, a fixed lab epoch, keys sent as the terminal sends them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from canarylab.learn.model import load_lessons
from canarylab.learn.progress import Progress
from canarylab.learn_app import LearnApp
from canarylab.sim.lab import SimLab

from .test_snapshots import EPOCH, steps, virtual_time

__all__ = ["virtual_time"]  # the autouse fixture: every loop of these snapshots runs on virtual time


def learn_app(tmp_path: Path, lesson: int = 0) -> LearnApp:
    lab = SimLab(speed=None)
    lab.clock.epoch = EPOCH
    lessons = load_lessons()
    app = LearnApp(lab, lessons, lessons[lesson], Progress(tmp_path / "learn.json"), lab_name="simulated lab",
                   work_root=Path("/work/canarylab-lessons"))
    ticks = itertools.count(0.0, 1000.0)
    app.tracker.now = lambda: next(ticks)  # 1000 s pass between two looks: the hint shows
    return app


def reached(step: int) -> Callable[[LearnApp], bool]:
    return lambda app: app.tracker.step_index >= step


def at(seconds: float) -> Callable[[LearnApp], bool]:
    """Lab seconds since the start: the tracker evaluates on Textual's timer, so keys wait for a fixed lab time."""
    return lambda app: app.lab.elapsed() >= seconds  # type: ignore[attr-defined]


# Lesson 1, step 4 (weights and checks) live, after shipping 3.1.1 at 60 s and reading on with n: at 160 s the
# weight is 15 % (analysis from 90 s, a step every 30 s).
STEP_4 = (reached(1), at(60), "n", "b", "enter", reached(3), at(160), "n", "n")


def test_learn_panel_mid_lesson_120x40(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(learn_app(tmp_path), terminal_size=(120, 40), run_before=steps(*STEP_4))


def test_learn_panel_mid_lesson_80x24(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(learn_app(tmp_path), terminal_size=(80, 24), run_before=steps(*STEP_4))


def test_learn_panel_step_done_80x24(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(learn_app(tmp_path), terminal_size=(80, 24), run_before=steps(reached(1), at(40)))
