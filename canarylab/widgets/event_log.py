"""The Canary's event log in Flagger's wording, timestamped, warnings highlighted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.widgets import RichLog

from canarylab.screens.history import LogLine
from canarylab.widgets.clock_text import hms


class EventLog(RichLog):
    """Appends only the lines it has not written yet; starts over when shown another Canary."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "event-log--time", "event-log--warning", "event-log--error", "event-log--normal",
    }  # fmt: skip
    DEFAULT_CSS = """
    EventLog { height: 1fr; background: $surface; scrollbar-size-vertical: 1; overflow-x: hidden; }
    EventLog > .event-log--time { color: $text-muted; }
    EventLog > .event-log--warning { color: $warning; text-style: bold; }
    EventLog > .event-log--error { color: $error; text-style: bold; }
    EventLog > .event-log--normal { color: $foreground; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, auto_scroll=True, max_lines=1000,
                         min_width=20)
        self._written = 0

    def show(self, lines: Sequence[LogLine], total: int) -> None:
        """Bring the log up to date: ``lines`` are the kept lines, ``total`` how many were ever appended."""
        new = total - self._written
        if new <= 0:
            return
        if new > len(lines):  # lines dropped from the bounded history, or a fresh Canary: redraw all
            self.clear()
            new = len(lines)
        for line in list(lines)[len(lines) - new :]:
            role = "normal" if line.type == "Normal" else "error" if line.type == "Error" else "warning"
            self.write(Text.assemble(
                (hms(line.time) + " ", self.get_component_rich_style("event-log--time")),
                ("⚠ " if role != "normal" else "  ", self.get_component_rich_style(f"event-log--{role}")),
                (line.message, self.get_component_rich_style(f"event-log--{role}")),
            ))  # fmt: skip
        self._written = total

    def reset(self) -> None:
        """Forget what was written (another Canary is shown)."""
        self.clear()
        self._written = 0
