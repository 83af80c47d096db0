"""The lesson picker: every lesson with its progress on this lab; Enter opens one."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option


class LessonPickerScreen(ModalScreen[str | None]):
    """Dismisses with the chosen lesson id, or ``None`` (Escape)."""

    DEFAULT_CSS = """
    LessonPickerScreen { align: center middle; }
    LessonPickerScreen > Vertical {
        width: 76; max-width: 100%; height: auto; padding: 1 2; border: thick $accent; background: $surface;
    }
    LessonPickerScreen .title { text-style: bold; margin-bottom: 1; }
    LessonPickerScreen OptionList { height: auto; max-height: 12; }
    LessonPickerScreen .note { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, rows: list[tuple[str, str, str]], current: str) -> None:
        """``rows``: ``(lesson id, label, state)`` in order; ``current`` is highlighted."""
        super().__init__()
        self.rows, self.current = rows, current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Lessons", classes="title")
            yield OptionList(*[Option(f"{label}  {state}".rstrip(), id=lesson) for lesson, label, state in self.rows])
            yield Label("Enter opens a lesson (the simulated lab restarts for it) · Escape closes", classes="note")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [row[0] for row in self.rows]
        options.highlighted = ids.index(self.current) if self.current in ids else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class LessonTextScreen(ModalScreen[None]):
    """The whole current step (or the summary), for terminals where the panel shows only part of it."""

    DEFAULT_CSS = """
    LessonTextScreen { align: center middle; }
    LessonTextScreen > VerticalScroll {
        width: 90; max-width: 100%; height: auto; max-height: 90%; padding: 0 1; border: thick $accent;
        background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,e,q", "close", "Close")]

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.text)

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).border_subtitle = "Escape closes · ↑↓ scroll"
        self.query_one(VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
