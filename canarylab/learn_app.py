"""``canarylab learn``'s dashboard: the canarylab dashboard with a lesson panel, a lesson picker and progress.

The app wires a :class:`~canarylab.learn.tracker.Tracker` to the engine's events and the lab's cluster, and
draws its :class:`~canarylab.learn.tracker.StepView` in a :class:`~canarylab.widgets.lesson_panel.LessonPanel`
on the overview and the detail. Picking another lesson ends this app with :attr:`LearnApp.next_lesson` set:
``canarylab.cli.learn`` then starts that lesson's lab and a new app.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.css.query import NoMatches

from canarylab import keymap as keys
from canarylab.app import CanaryLabApp
from canarylab.engine.events import EngineEvent
from canarylab.errors import UserError
from canarylab.learn.apply import apply_file
from canarylab.learn.model import Lesson
from canarylab.learn.progress import Progress
from canarylab.learn.tracker import Tracker, for_lab, prepare_work_dir, work_dir_of
from canarylab.screens.detail import DetailScreen
from canarylab.screens.lessons import LessonPickerScreen, LessonTextScreen
from canarylab.screens.overview import OverviewScreen
from canarylab.widgets.key_footer import KeyFooter
from canarylab.widgets.lesson_panel import LessonPanel, render

if TYPE_CHECKING:
    from canarylab.session import Lab

LEARN_KEYS = {"lessons": "l", "apply": "a", "next": "n", "explain": "e"}


class LearnApp(CanaryLabApp):
    """The dashboard as a guided lesson."""

    TITLE = "canarylab learn"
    CSS = "DetailScreen #hint { display: none; }"  # the lesson panel is the guide: one voice, not two
    BINDINGS: ClassVar[list[BindingType]] = [
        *CanaryLabApp.BINDINGS,
        Binding(LEARN_KEYS["lessons"], "lessons", "Lessons", id=keys.PREFIX + "lessons"),
        Binding(LEARN_KEYS["apply"], "apply", "Apply file", id=keys.PREFIX + "apply"),
        Binding(LEARN_KEYS["next"], "next_step", "Next step", id=keys.PREFIX + "next"),
        Binding(LEARN_KEYS["explain"], "explain", "Explain", id=keys.PREFIX + "explain"),
    ]

    def __init__(self, lab: Lab, lessons: list[Lesson], lesson: Lesson, progress: Progress, *, lab_name: str,
                 work_root: Path, keymap: Mapping[str, str] | None = None, real: bool = False,
                 start_step: int | None = None, learn_interval: float = 0.5, validate: str = "strict",
                 **options: object) -> None:
        """``start_step``: where the learner is (default: the saved step on a real lab, step 1 on a fresh one);
        ``validate``: ``--validate`` for the work files the learner applies."""
        super().__init__(lab, start_lab=False, keymap=keymap, **options)  # type: ignore[arg-type]
        self.validate = validate
        self.lessons = lessons
        self.progress = progress
        self.lab_name = lab_name
        self.real = real
        self.next_lesson: Lesson | None = None
        self.work_dir = work_dir_of(lesson, work_root)
        self.lesson = for_lab(lesson, real=real, work_dir=self.work_dir)
        # A real lab keeps its state, so the saved step is where the learner is; a fresh simulated lab is where
        # canarylab.cli.learn's replay left it.
        if start_step is None:
            start_step = progress.step(lab_name, lesson.id) if real else 0
        start = start_step
        self.tracker = Tracker(self.lesson, lab.cluster, self.work_dir, real=real, step_index=start,
                               on_advance=self._advanced)
        self.shown_step = self.tracker.step_index
        """The step the panel shows: it stays on a step the learner completed until they press ``n``."""
        self._learn_events: list[EngineEvent] = []
        self._learn_interval = learn_interval
        self._evaluating = False
        self._learn_unsubscribe = lab.engine.subscribe(self._learn_events.append)

    def on_mount(self) -> None:
        # Textual calls CanaryLabApp.on_mount too (handlers run for every class in the MRO): no super() here.
        prepare_work_dir(self.lesson, self.work_dir)
        self.progress.record(self.lab_name, self.lesson.id, self.tracker.step_index,
                             completed=self.progress.completed(self.lab_name, self.lesson.id))
        self.set_interval(self._learn_interval, self._learn_tick)
        self.call_after_refresh(self._learn_tick)

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_panel)  # the panel may move between the side and the band

    async def on_unmount(self) -> None:
        self._learn_unsubscribe()  # CanaryLabApp.on_unmount runs as well

    # ----------------------------------------------------------------------------------------- the lesson

    def _learn_tick(self) -> None:
        events, self._learn_events[:] = list(self._learn_events), []
        self.tracker.feed(events)
        if not self._evaluating:  # one evaluation at a time (a simulate check runs a child process)
            self._evaluating = True
            self.run_worker(self._evaluate, group="learn", exit_on_error=False)  # type: ignore[arg-type]
        self._show_panel()

    async def _evaluate(self) -> None:
        try:
            advanced = await self.tracker.update()
        except Exception as err:  # a check that cannot be evaluated is shown, the lesson goes on
            self.tracker.note = f"the check could not be evaluated: {err}"
            advanced = False
        finally:
            self._evaluating = False
        if advanced:
            self.tracker.note = ""
            self._learn_tick()  # the next step may already hold
        self._show_panel()

    def _advanced(self, step: int, complete: bool) -> None:
        self.progress.record(self.lab_name, self.lesson.id, step, completed=complete)
        if complete:
            self.notify(f"Lesson {self.lesson.number} complete: {self.lesson.title}", title="✔ well done",
                        timeout=8)
        else:
            done = self.lesson.steps[step - 1].title
            self.notify(f"{done} · press n for the next step", title=f"✔ step {step}/{len(self.lesson.steps)} done",
                        timeout=5)
        self.refresh_bindings()

    def key_label(self, key_id: str) -> str:
        """A key id as the learner presses it now (``bump`` -> ``b``, after any remapping)."""
        default = keys.BY_ID[key_id].keys if key_id in keys.BY_ID else LEARN_KEYS.get(key_id, key_id)
        mapped = self._keymap.get(keys.PREFIX + key_id, default)
        first = mapped.split(",")[0].strip()
        return self.get_key_display(Binding(first, ""))

    def _show_panel(self) -> None:
        screen = self.lab_screen()
        if screen is None or not isinstance(screen, OverviewScreen | DetailScreen):
            return
        # Wide: a column beside the detail's charts and events; narrow (and the overview): a band above the hint.
        side = isinstance(screen, DetailScreen) and screen.size.width >= LessonPanel.WIDE
        panels = screen.query(LessonPanel)
        panel = panels.first() if panels else None
        if panel is not None and panel.has_class("-side") != side:
            panel.remove()
            panel = None
        if panel is None:
            try:
                panel = LessonPanel(id="lesson", classes="-side" if side else "")
                if side:
                    screen.query_one("#body").mount(panel, after=screen.query_one("#side"))
                elif isinstance(screen, DetailScreen):
                    screen.mount(panel, before=screen.query_one("#hint"))
                else:
                    screen.mount(panel, before=screen.query_one(KeyFooter))
            except NoMatches:
                return  # the screen is still composing: the next tick mounts the panel
            self.call_after_refresh(self._show_panel)
            return
        panel.show(self.tracker.view(self.key_label, self.shown_step))

    # --------------------------------------------------------------------------------------------- keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``n`` only once the lesson is complete; ``a`` only when the lesson has a file to apply."""
        if action == "next_step":
            return self.shown_step < self.tracker.step_index or self.tracker.complete
        if action == "apply":
            return bool(self.lesson.work_files) and not self.readonly
        return super().check_action(action, parameters)

    def action_lessons(self) -> None:
        """``l``: the lesson picker."""
        rows = []
        for lesson in self.lessons:
            if self.progress.completed(self.lab_name, lesson.id):
                state = "✔ done"
            elif self.progress.step(self.lab_name, lesson.id):
                state = f"step {self.progress.step(self.lab_name, lesson.id) + 1}/{len(lesson.steps)}"
            else:
                state = ""
            rows.append((lesson.id, f"{lesson.number}. {lesson.title}", state))

        def chosen(lesson_id: str | None) -> None:
            if lesson_id is None:
                return
            self.next_lesson = next(lesson for lesson in self.lessons if lesson.id == lesson_id)
            if not self.real or self.next_lesson.id != self.lesson.id:
                self.progress.record(self.lab_name, lesson_id, self.progress.step(self.lab_name, lesson_id),
                                     completed=self.progress.completed(self.lab_name, lesson_id))
            self.exit()

        self.push_screen(LessonPickerScreen(rows, self.lesson.id), chosen)

    def action_explain(self) -> None:
        """``e``: the whole step in a window (the panel is short on a small terminal)."""
        self.push_screen(LessonTextScreen(render(self.tracker.view(self.key_label, self.shown_step))))

    def action_next_step(self) -> None:
        """``n``: on from a completed step to the next (after the last one, to the next lesson)."""
        if self.shown_step < self.tracker.step_index:
            self.shown_step += 1
            self.progress.record(self.lab_name, self.lesson.id, self.tracker.step_index,
                                 completed=self.tracker.complete)
            self.refresh_bindings()
            self._show_panel()
            return
        if self.tracker.complete:
            self.next_lesson_now()

    def next_lesson_now(self) -> None:
        """The lesson after this one (after the last, the picker)."""
        later = [lesson for lesson in self.lessons if lesson.number > self.lesson.number]
        if not later:
            self.action_lessons()
            return
        self.next_lesson = later[0]
        self.progress.record(self.lab_name, later[0].id, 0)
        self.exit()

    def action_apply(self) -> None:
        """``a``: ``kubectl apply -f`` the step's work file (simulated lab); on a real lab, say what to type."""
        step = self.tracker.step
        name = (step.edit if step and step.edit else None) or next(iter(self.lesson.work_files), None)
        if name is None:
            self.notify("this lesson has no file to apply", severity="warning")
            return
        path = self.work_dir / name
        if self.real:
            self.notify(f"type in your terminal: kubectl apply -f {path}", title="apply", timeout=10)
            return

        async def apply() -> None:
            try:
                lines = await apply_file(self.lab.cluster, path, self.lesson.canary[0], validate=self.validate)
            except UserError as err:
                self.notify(str(err), title=f"kubectl apply -f {name} failed", severity="error", timeout=15)
                return
            self.notify("\n".join(lines), title=f"kubectl apply -f {name}", timeout=6)
            self._learn_tick()

        self.run_worker(apply(), group="apply")
