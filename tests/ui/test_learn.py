"""Lesson 1 walked through the real UI: the lesson panel, the keys a learner presses, progress saved.

The app is ``canarylab learn``'s, on the real simulated lab and engine at a fast lab clock; every wait is
bounded in real time.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from canarylab.learn.model import load_lessons
from canarylab.learn.progress import Progress
from canarylab.learn_app import LearnApp
from canarylab.screens.bump_image import BumpImageScreen
from canarylab.screens.confirm import ConfirmScreen
from canarylab.screens.detail import DetailScreen
from canarylab.screens.lessons import LessonPickerScreen, LessonTextScreen
from canarylab.sim.lab import SimLab
from canarylab.widgets.lesson_panel import LessonPanel

from .conftest import FAST, until
from .screen_text import screen_text


def panel_text(app: LearnApp) -> str:
    """What the lesson panel shows now (all of it, also the part scrolled out of view)."""
    panel = app.screen.query_one(LessonPanel)
    return str(panel._text.render())


async def test_lesson_1_walked_with_the_keys_a_learner_presses(tmp_path: Path) -> None:
    lessons = load_lessons()
    progress = Progress(tmp_path / "learn.json")
    lab = SimLab(speed=FAST, objects=None)
    await lab.start()
    try:
        app = LearnApp(lab, lessons, lessons[0], progress, lab_name="simulated lab", work_root=tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            # given the lesson, the detail opens with the lesson panel beside the charts, at step 1
            await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.query(LessonPanel),
                        "the detail with the lesson panel")
            await until(pilot, lambda: "Watch Flagger take over podinfo" in panel_text(app), "step 1 on the panel")
            assert app.screen.query_one(LessonPanel).has_class("-side")  # a column at 120 wide
            # step 1 completes from the engine's events and the cluster, and waits for n
            await until(pilot, lambda: "press n for the next step" in panel_text(app), "step 1 done", timeout=30)
            assert "✔ Deployment podinfo-primary exists" in panel_text(app)
            assert progress.step("simulated lab", "seed") == 1  # saved as soon as the step passed
            await pilot.press("n")
            await until(pilot, lambda: "Ship podinfo 3.1.1" in panel_text(app), "step 2")
            text = panel_text(app)
            assert "press b" in text
            assert "kubectl -n test set image deployment/podinfo podinfod=stefanprodan/podinfo:3.1.1" in text
            assert "○ podinfo runs podinfo:3.1.1" in text  # not done before the learner acts
            # when the learner presses b and accepts the proposed 3.1.1
            await pilot.press("b")
            await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal")
            await pilot.press("enter")
            await until(pilot, lambda: "press n for the next step" in panel_text(app), "step 2 done", timeout=30)
            assert "✔ event \"New revision detected! Scaling up podinfo.test\"" in panel_text(app)
            # then the analysis starts (step 3) and the weights climb (step 4)
            for title in ("The analysis starts", "Weights and checks", "Promotion"):
                await until(pilot, lambda: "press n for the next step" in panel_text(app), "the step done",
                            timeout=60)
                await pilot.press("n")
                await until(pilot, lambda t=title: t in panel_text(app), f"the step {title!r}")
            # at the last step the learner promotes now with p (confirming), and the lesson completes
            await until(pilot, lambda: any(s.phase == "Progressing" for s in lab.engine.canary_states())
                        or progress.completed("simulated lab", "seed"), "a running analysis", timeout=30)
            if not progress.completed("simulated lab", "seed"):
                await pilot.press("p")
                await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the promote confirmation")
                await pilot.press("y")
            await until(pilot, lambda: progress.completed("simulated lab", "seed"), "lesson 1 complete", timeout=60)
            await pilot.press("n")
            await until(pilot, lambda: "lesson complete" in panel_text(app), "the summary")
            text = panel_text(app)
            assert "You shipped a canary" in text and text.count("? ") >= 2  # a summary and questions
            # the lesson picker lists all six, lesson 1 done; picking lesson 2 ends this app with it chosen
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LessonPickerScreen), "the lesson picker")
            picker = screen_text(app)
            assert "✔ done" in picker and "6. What-if in CI" in picker
            await pilot.press("down", "enter")
            await until(pilot, lambda: app.next_lesson is not None, "the choice")
        assert app.next_lesson is not None and app.next_lesson.id == "break"
        assert Progress.load(tmp_path / "learn.json").current("simulated lab") == "break"
        assert (tmp_path / "01-seed").is_dir()
    finally:
        await lab.stop()


async def test_the_panel_is_a_band_on_a_narrow_terminal(tmp_path: Path) -> None:
    lessons = load_lessons()
    lab = SimLab(speed=FAST)
    await lab.start()
    try:
        app = LearnApp(lab, lessons, lessons[0], Progress(tmp_path / "p.json"), lab_name="simulated lab",
                       work_root=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.query(LessonPanel),
                        "the detail with the lesson panel")
            await until(pilot, lambda: "Watch Flagger" in panel_text(app), "step 1")
            panel = app.screen.query_one(LessonPanel)
            # laid out once the text is there (a loaded machine may take a frame more)
            await until(pilot, lambda: panel.size.width > 0, "the panel laid out")
            assert not panel.has_class("-side") and panel.size.width >= 76
            # compact: what to do comes before the explanation
            text = panel_text(app)
            assert text.index("▶") < text.index("The lab holds the seed") and "(e: all of it)" in text
            # e opens the whole step in a window; Escape closes it
            await pilot.press("e")
            await until(pilot, lambda: isinstance(app.screen, LessonTextScreen), "the step window")
            assert "The lab holds the seed" in str(app.screen.query_one(Static).render())
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "back on the detail")
    finally:
        await lab.stop()
