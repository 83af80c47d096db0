"""The bump modal: ``kubectl set image`` with the next tag proposed, editable."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class BumpImageScreen(ModalScreen[str | None]):
    """Dismisses with the image to set (Enter) or ``None`` (Escape)."""

    DEFAULT_CSS = """
    BumpImageScreen { align: center middle; }
    BumpImageScreen > Vertical {
        width: 70; height: auto; padding: 1 2; border: thick $accent; background: $surface;
    }
    BumpImageScreen Label { width: 100%; }  /* long questions wrap instead of being cut */
    BumpImageScreen .title { text-style: bold; color: $accent; margin-bottom: 1; }
    BumpImageScreen .muted { color: $text-muted; margin-top: 1; }
    BumpImageScreen #note { color: $text-warning; margin-bottom: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, deployment: str, container: str, current: str, proposed: str, note: str = "") -> None:
        """``note``: what happens on Enter when it is not an immediate ``kubectl set image`` (a queued ship)."""
        super().__init__()
        self.deployment, self.container, self.current, self.proposed = deployment, container, current, proposed
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Ship a new image to deployment/{self.deployment}", classes="title")
            yield Label(f"container {self.container}, now {self.current}")
            if self.note:
                yield Label(self.note, id="note")
            box = Input(self.proposed, id="image", placeholder="repository/name:tag")
            box.cursor_blink = False  # no blink: two repaints a second for nothing (and stable snapshots)
            yield box
            enter = ("Enter queues the image" if self.note
                     else "Enter sets the image (the engine detects a new revision)")
            yield Label(f"{enter} · Escape cancels", classes="muted")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        image = event.value.strip()
        if not image:
            self.notify("type an image, e.g. stefanprodan/podinfo:3.1.1", severity="error")
            return
        self.dismiss(image)

    def action_cancel(self) -> None:
        self.dismiss(None)
