"""The header line: lab or context, engine state, the Canary and its phase, lab time."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from canarylab.widgets.clock_text import hms


class LabHeader(Widget):
    """``canarylab · simulated lab · engine running · test/podinfo Progressing · 12:00:35``."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"lab-header--brand", "lab-header--muted", "lab-header--state"}
    DEFAULT_CSS = """
    LabHeader { height: 1; background: $panel; }
    LabHeader > .lab-header--brand { color: $accent; text-style: bold; }
    LabHeader > .lab-header--muted { color: $text-muted; }
    LabHeader > .lab-header--state { text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._parts: tuple[str, str, str, float | None] = ("", "", "", None)

    def show(self, lab: str, engine: str, canary: str, now: float | None) -> None:
        """Redraw when anything changed (lab time at one-second resolution)."""
        parts = (lab, engine, canary, None if now is None else float(int(now)))
        if parts != self._parts:
            self._parts = parts
            self.refresh()

    def show_time(self, now: float | None) -> None:
        """Redraw when the lab time's second changed."""
        self.show(*self._parts[:3], now)

    def render(self) -> Text:
        lab, engine, canary, now = self._parts
        muted = self.get_component_rich_style("lab-header--muted")
        left = Text.assemble(
            (" canarylab", self.get_component_rich_style("lab-header--brand")), (" · ", muted), lab,
            (" · engine ", muted), (engine, self.get_component_rich_style("lab-header--state")),
        )  # fmt: skip
        if canary:
            state = self.get_component_rich_style("lab-header--state")
            left.append_text(Text.assemble((" · ", muted), (canary, state)))
        right = Text(f"lab time {hms(now)} UTC " if now is not None else "", style=muted)
        if left.cell_len + right.cell_len + 1 > self.size.width:
            right = Text("")  # narrow terminal: the lab time goes first
        gap = max(1, self.size.width - left.cell_len - right.cell_len)
        return Text.assemble(left, " " * gap, right, no_wrap=True, overflow="ellipsis")
