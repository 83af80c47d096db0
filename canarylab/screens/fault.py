"""The fault modal: presets of errors and latency for the canary's pods, or clear."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

DEFAULT_PRESETS: dict[str, tuple[float, float]] = {
    "errors 10%": (0.10, 0.0),
    "errors 50%": (0.50, 0.0),
    "latency +600ms": (0.0, 600.0),
}
"""Used when the lab offers no ``fault_presets`` of its own: ``name -> (error_rate, latency_ms)``."""


@dataclass(frozen=True)
class FaultChoice:
    """What to inject; ``clear`` removes any fault."""

    name: str
    error_rate: float = 0.0
    latency_ms: float = 0.0
    clear: bool = False


def describe(error_rate: float, latency_ms: float) -> str:
    """``50% errors, +600 ms``."""
    parts = []
    if error_rate:
        parts.append(f"{error_rate * 100:g}% errors")
    if latency_ms:
        parts.append(f"+{latency_ms:g} ms latency")
    return ", ".join(parts) or "no fault"


class FaultScreen(ModalScreen[FaultChoice | None]):
    """Pick a preset (Enter) or Escape."""

    DEFAULT_CSS = """
    FaultScreen { align: center middle; }
    FaultScreen > Vertical {
        width: 64; height: auto; padding: 1 2; border: thick $error; background: $surface;
    }
    FaultScreen Label { width: 100%; }  /* long questions wrap instead of being cut */
    FaultScreen .title { text-style: bold; color: $error; margin-bottom: 1; }
    FaultScreen OptionList { height: auto; max-height: 10; }
    FaultScreen .muted { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, deployment: str, presets: Mapping[str, tuple[float, float]]) -> None:
        super().__init__()
        self.deployment = deployment
        self.choices = [FaultChoice(name, rate, latency) for name, (rate, latency) in presets.items()]
        self.choices.append(FaultChoice("clear", clear=True))

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Inject a fault in deployment/{self.deployment} (the canary)", classes="title")
            yield OptionList(*[Option(f"{c.name:<16} {self._what(c)}", id=str(i)) for i, c in enumerate(self.choices)])
            yield Label("Enter applies · Escape cancels", classes="muted")

    @staticmethod
    def _what(choice: FaultChoice) -> str:
        return "remove any injected fault" if choice.clear else describe(choice.error_rate, choice.latency_ms)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)
