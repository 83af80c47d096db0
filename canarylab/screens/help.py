"""``?``: every key, as currently mapped, with what it does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


class HelpScreen(ModalScreen[None]):
    """A table of ``(keys, action, what it does)``; any of Escape, ``q`` or ``?`` closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 90; max-width: 100%; height: auto; max-height: 100%; padding: 1 2;
        border: thick $accent; background: $surface;
    }
    HelpScreen .top { height: auto; margin-bottom: 1; }
    HelpScreen .title { text-style: bold; color: $accent; width: 1fr; }
    HelpScreen .close { color: $text-accent; text-style: bold; width: auto; }
    HelpScreen DataTable { height: auto; }
    HelpScreen .muted { color: $text-muted; margin-top: 1; width: 100%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, rows: Sequence[tuple[str, str, str]], note: str) -> None:
        super().__init__()
        self.rows, self.note = rows, note

    def compose(self) -> ComposeResult:
        with Vertical():
            with Horizontal(classes="top"):
                yield Label("canarylab keys", classes="title")
                yield Label("Escape, q or ? closes this box", classes="close")
            table: DataTable[str] = DataTable(cursor_type="none", show_cursor=False)
            table.add_columns("key", "action", "what it does")
            for row in self.rows:
                table.add_row(*row)
            yield table
            yield Label(self.note, classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
