"""The fault line of the pods panel: what fault, on which revision, since when; or that a new image started clean."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.widgets import Static

from canarylab.screens.tags import tag
from canarylab.widgets.clock_text import hms
from canarylab.widgets.traffic_bar import tag_of

if TYPE_CHECKING:
    from canarylab.session import FaultInfo


def fault_text(fault: FaultInfo | None, *, can_clear: bool = True, width: int | None = None) -> str:
    """``⚡ fault: 50% errors on canary podinfo:3.1.2 since 12:01:30 · f clears it``, the line saying a new image
    started clean, or ``""``; when that takes more than two lines of ``width``, a shorter wording (``⚡ 50% errors
    on 3.1.2 since 12:01:30``)."""
    if fault is None:
        return ""
    if fault.active:
        clear = " · f clears it" if can_clear else ""
        long = f"⚡ fault: {fault.what()} on canary {tag_of(fault.image)} since {hms(fault.since)}{clear}"
        short = f"⚡ {fault.what()} on {tag(fault.image)} since {hms(fault.since)}"
    else:
        long = (f"✓ {tag_of(fault.replaced_by or '')} started clean: the fault ({fault.what()}) stayed with "
                f"{tag_of(fault.image)}")
        short = f"✓ {tag(fault.replaced_by or '')} clean; fault stayed with {tag(fault.image)}"
    return long if width is None or len(long) <= 2 * width else short


class FaultLine(Static):
    """Hidden without a fault; red while one is active, green once a new revision left it behind."""

    DEFAULT_CSS = """
    FaultLine { height: auto; padding: 0 1; display: none; }
    FaultLine.active { display: block; color: $text; background: $error 60%; text-style: bold; }
    FaultLine.left { display: block; color: $text-success; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._fault: FaultInfo | None = None
        self._can_clear = True
        self._text = ""

    def show(self, fault: FaultInfo | None, *, can_clear: bool = True) -> None:
        """Redraw when the fault changed."""
        self._fault, self._can_clear = fault, can_clear
        self._redraw()

    def on_resize(self, event: events.Resize) -> None:
        self._redraw()

    def _redraw(self) -> None:
        fault = self._fault
        width = self.size.width - 2 if self.size.width > 2 else None  # the padding
        text = fault_text(fault, can_clear=self._can_clear, width=width)
        self.set_class(fault is not None and fault.active, "active")
        self.set_class(fault is not None and not fault.active, "left")
        if text != self._text:
            self._text = text
            self.update(text)
