"""Pods per revision: ready/total, image and HPA replicas for primary and canary."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from canarylab.screens.workloads import Revision, Workloads
from canarylab.widgets.traffic_bar import tag_of

NARROW = 56
"""Below this width the deployment column goes (the revision column already says which is which) and the
image column shows the tag only (the traffic bar above names the image)."""


def ready_text(rev: Revision) -> str:
    """``2/2``, or ``-`` when the Deployment does not exist (yet)."""
    return f"{rev.ready}/{rev.desired}" if rev.found else "-"


class PodsTable(DataTable[str | Text]):
    """Two rows, primary then canary."""

    DEFAULT_CSS = """
    PodsTable { height: auto; max-height: 4; overflow: hidden hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="none", zebra_stripes=False, show_cursor=False)
        self._shown: Workloads | None = None
        self._narrow: bool | None = None

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < NARROW
        if narrow != self._narrow:
            self._narrow = narrow
            self._redraw()

    def show(self, workloads: Workloads) -> None:
        """Redraw when the pods changed."""
        if workloads != self._shown:
            self._shown = workloads
            self._redraw()

    def _redraw(self) -> None:
        self.clear(columns=True)
        wide = not self._narrow
        self.add_columns("revision", *(["deployment"] if wide else []), "ready", "image", "HPA")
        if self._shown is None:
            return
        for rev in (self._shown.primary, self._shown.canary):
            healthy = rev.found and rev.ready >= rev.desired
            self.add_row(
                rev.role, *([rev.deployment] if wide else []),
                Text(ready_text(rev), style="bold" if healthy else "italic"),
                (tag_of(rev.image) if wide else tag_of(rev.image).rsplit(":", 1)[-1]) if rev.image else "-", rev.hpa,
            )  # fmt: skip
