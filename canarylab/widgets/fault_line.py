"""The fault line of the pods panel: what fault, on which revision, since when; or that a new image started clean."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Static

from canarylab.widgets.clock_text import hms
from canarylab.widgets.traffic_bar import tag_of

if TYPE_CHECKING:
    from canarylab.session import FaultInfo


def fault_text(fault: FaultInfo | None, *, can_clear: bool = True) -> str:
    """``⚡ fault: 50% errors on canary podinfo:3.1.2 since 12:01:30 · f clears it``, the line saying a new image
    started clean, or ``""``."""
    if fault is None:
        return ""
    if fault.active:
        clear = " · f clears it" if can_clear else ""
        return f"⚡ fault: {fault.what()} on canary {tag_of(fault.image)} since {hms(fault.since)}{clear}"
    return (f"✓ {tag_of(fault.replaced_by or '')} started clean: the fault ({fault.what()}) stayed with "
            f"{tag_of(fault.image)}")


class FaultLine(Static):
    """Hidden without a fault; red while one is active, muted once a new revision left it behind."""

    DEFAULT_CSS = """
    FaultLine { height: auto; padding: 0 1; display: none; }
    FaultLine.active { display: block; color: $text; background: $error 60%; text-style: bold; }
    FaultLine.left { display: block; color: $text-success; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._shown: tuple[str, bool | None] = ("", None)

    def show(self, fault: FaultInfo | None, *, can_clear: bool = True) -> None:
        """Redraw when the fault changed."""
        text = fault_text(fault, can_clear=can_clear)
        shown = (text, None if fault is None else fault.active)
        if shown == self._shown:
            return
        self._shown = shown
        self.set_class(fault is not None and fault.active, "active")
        self.set_class(fault is not None and not fault.active, "left")
        self.update(text)
