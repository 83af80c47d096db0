"""The lesson panel: the current step of a lesson, what to do, its kubectl equivalent, the check's progress.

Docked at the right of the dashboard on wide terminals and at the bottom on narrow ones (the app's
breakpoint classes ``-wide``/``-narrow`` on the screen). It draws a :class:`~canarylab.learn.tracker.StepView`
and nothing else: the tracker decides what the step is and whether it is done.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from canarylab.learn.tracker import StepView


def progress_dots(done: int, total: int) -> str:
    """``●●○○○``: steps done and left."""
    return "●" * min(done, total) + "○" * max(0, total - done)


def render(view: StepView, *, compact: bool = False) -> Text:
    """The panel's text; ``compact`` (a short panel) puts what to do before the explanation and drops extras."""
    text = Text()
    text.append(f"Lesson {view.number} · {view.lesson}\n", style="bold")
    if view.complete:
        text.append("✔ lesson complete\n\n", style="bold green")
        text.append(view.summary + "\n\n")
        for question in view.questions:
            text.append("? ", style="bold")
            text.append(question + "\n")
        text.append("\nn next lesson · l all lessons · q quit", style="italic")
        return text
    text.append(f"step {view.step_index + 1}/{view.steps} "
                f"{progress_dots(view.step_index + (1 if view.done else 0), view.steps)} ", style="dim")
    text.append(view.title, style="bold")
    text.append(" (e: all of it)\n" if compact else "\n", style="dim")
    explain = Text(view.explain + "\n")
    if view.done:
        text.append("✔ done · press n for the next step\n", style="bold green")
    if not compact:
        text.append(explain)
    text.append("▶ ", style="bold")
    text.append(view.do + "\n", style="bold")
    for key, command in view.equivalents:
        if command:
            text.append(f"  {key} ≙ ", style="dim bold")
            text.append(command + "\n", style="dim")
    for part in view.parts:
        text.append("  ✔ " if part.ok else "  ○ ", style="green" if part.ok else "dim")
        text.append(part.text + "\n")
    if not view.parts:
        text.append("  ○ checking…\n", style="dim")
    if view.hint:
        text.append("hint: ", style="bold italic")
        text.append(view.hint + "\n", style="italic")
    if view.note:
        text.append(view.note + "\n", style="italic")
    for path in view.files:
        text.append("file: ", style="dim")
        text.append(path + "\n")
    if compact:
        text.append(explain)
    if view.try_commands:
        text.append("try: ", style="dim")
        text.append("\n     ".join(view.try_commands) + "\n", style="dim")
    return text


class LessonPanel(VerticalScroll):
    """The current lesson step, scrollable when it does not fit."""

    DEFAULT_CSS = """
    LessonPanel {
        height: 9; border: round $accent; border-title-color: $text; padding: 0 1; background: $surface;
    }
    LessonPanel.-side { width: 46; height: 1fr; }
    LessonPanel > Static { width: 100%; }
    """
    WIDE = 110
    """From this many columns the panel is a column beside the charts and events, else a band under them."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._view: StepView | None = None
        self._compact: bool | None = None
        self._text = Static("", id="lesson-text")

    def compose(self) -> ComposeResult:
        yield self._text

    def on_mount(self) -> None:
        self.border_title = "lesson"

    def show(self, view: StepView) -> None:
        """Redraw when the step, its progress or the layout changed."""
        compact = not self.has_class("-side")
        if view == self._view and compact == self._compact:
            return
        if self._view is not None and (view.number, view.step_index) != (self._view.number, self._view.step_index):
            self.scroll_home(animate=False)
        self._view, self._compact = view, compact
        self.border_title = "lesson" if view.complete else f"lesson · step {view.step_index + 1}/{view.steps}"
        self._text.update(render(view, compact=compact))
