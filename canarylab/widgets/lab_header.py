"""The header line: lab or context, engine state, the Canary and its phase, lab time."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from canarylab.widgets.clock_text import hms


class LabHeader(Widget):
    """``canarylab · simulated lab · engine running · test/podinfo Progressing  ⚡ 50% errors on 3.1.2  12:00:35``.

    The badge (an active fault) never leaves the line: on a narrow terminal the lab time goes first, then the
    badge takes its short form (``badge_short``)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "lab-header--brand", "lab-header--muted", "lab-header--state", "lab-header--badge",
    }  # fmt: skip
    DEFAULT_CSS = """
    LabHeader { height: 1; background: $panel; }
    LabHeader > .lab-header--brand { color: $accent; text-style: bold; }
    LabHeader > .lab-header--muted { color: $text-muted; }
    LabHeader > .lab-header--state { text-style: bold; }
    LabHeader > .lab-header--badge { color: $text; background: $error; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._parts: tuple[str, str, str, float | None] = ("", "", "", None)
        self._badge: tuple[str, str] = ("", "")

    def show(self, lab: str, engine: str, canary: str, now: float | None, badge: str = "",
             badge_short: str = "") -> None:
        """Redraw when anything changed (lab time at one-second resolution)."""
        parts = (lab, engine, canary, None if now is None else float(int(now)))
        if parts != self._parts or (badge, badge_short) != self._badge:
            self._parts = parts
            self._badge = (badge, badge_short or badge)
            self.refresh()

    @property
    def badge(self) -> str:
        """The badge as given (empty without one)."""
        return self._badge[0]

    def show_time(self, now: float | None) -> None:
        """Redraw when the lab time's second changed."""
        self.show(*self._parts[:3], now, *self._badge)

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
        clock = Text(f"lab time {hms(now)} UTC " if now is not None else "", style=muted)
        badge_style = self.get_component_rich_style("lab-header--badge")
        long, short = self._badge
        candidates = [Text(""), clock]
        if long:
            badge = Text.assemble((f" {long} ", badge_style), " ")
            candidates = [Text.assemble((f" {short} ", badge_style), " "), badge, Text.assemble(badge, clock)]
        right = candidates[0]
        for option in reversed(candidates):  # the most that fits: badge and time, the badge, its short form
            if left.cell_len + option.cell_len + 1 <= self.size.width:
                right = option
                break
        if long and left.cell_len + right.cell_len + 1 > self.size.width:
            left.truncate(max(1, self.size.width - right.cell_len - 1), overflow="ellipsis")
        gap = max(1, self.size.width - left.cell_len - right.cell_len)
        return Text.assemble(left, " " * gap, right, no_wrap=True, overflow="ellipsis")
