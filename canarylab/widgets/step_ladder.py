"""The step ladder: the weights the analysis walks (5, 10, ... 50, promote) and where the run stands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

_MARK = {"done": "✔", "current": "▶", "todo": "", "failed": "✘ "}
PROMOTING = ("Promoting", "Finalising")
RUNNING = ("Progressing", "WaitingPromotion", "Waiting", *PROMOTING)


def ladder(
    steps: Sequence[int], weight: int, iterations: int, phase: str, strategy: str
) -> list[tuple[str, str]]:
    """``(label, role)`` chips: roles ``done``, ``current``, ``todo``, ``failed``.

    Canary strategy: one chip per weight in ``steps`` then ``promote``; Blue/Green: one per iteration.
    """
    blue_green = strategy != "canary"
    # A weight is the step the canary is at; an iteration count is how many are done (the next one runs).
    position = iterations + 1 if blue_green else weight
    running = phase in RUNNING
    chips: list[tuple[str, str]] = []
    for step in steps:
        label = f"#{step}" if blue_green else f"{step}%"
        if phase in ("Succeeded", "WaitingPromotion", *PROMOTING) or (running and position > step):
            role = "done"
        elif running and position == step:
            role = "current"
        else:
            role = "todo"
        chips.append((label, role))
    if phase == "Succeeded":
        chips.append(("promoted", "done"))
    elif phase in PROMOTING or phase == "WaitingPromotion":
        chips.append(("promote", "current"))
    elif phase == "Failed":
        chips.append(("rolled back", "failed"))
    else:
        chips.append(("promote", "todo"))
    return chips


class StepLadder(Widget):
    """One line of chips joined by arrows; the current step stands out."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "step-ladder--done", "step-ladder--current", "step-ladder--todo", "step-ladder--failed",
    }  # fmt: skip
    DEFAULT_CSS = """
    StepLadder { height: 1; }
    StepLadder > .step-ladder--done { color: $success; }
    StepLadder > .step-ladder--current { color: $background; background: $warning; text-style: bold; }
    StepLadder > .step-ladder--todo { color: $text-muted; }
    StepLadder > .step-ladder--failed { color: $background; background: $error; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._chips: list[tuple[str, str]] = []

    def show(self, steps: Sequence[int], weight: int, iterations: int, phase: str, strategy: str) -> None:
        """Redraw for the Canary's current state (no-op when unchanged)."""
        chips = ladder(steps, weight, iterations, phase, strategy)
        if chips != self._chips:
            self._chips = chips
            self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        arrow = self.get_component_rich_style("step-ladder--todo")
        full = sum(len(label) + 2 + len(_MARK[role]) for label, role in self._chips) + 3 * (len(self._chips) - 1)
        compact = full > self.size.width
        for i, (label, role) in enumerate(self._chips):
            if i:
                text.append("›" if compact else " › ", arrow)
            shown = label.rstrip("%") if compact and label.endswith("%") else label
            shown = _MARK[role] + shown  # marks too, so the ladder reads without colours
            text.append(f"{shown}" if compact else f" {shown} ", self.get_component_rich_style(f"step-ladder--{role}"))
        return text
