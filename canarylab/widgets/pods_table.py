"""Pods per revision: ready/total, image and HPA replicas for primary and canary."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from canarylab.screens.workloads import Revision, Workloads
from canarylab.widgets.traffic_bar import tag_of


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

    def on_mount(self) -> None:
        self.add_columns("revision", "deployment", "ready", "image", "HPA")

    def show(self, workloads: Workloads) -> None:
        """Redraw when the pods changed."""
        if workloads == self._shown:
            return
        self._shown = workloads
        self.clear()
        for rev in (workloads.primary, workloads.canary):
            ready = ready_text(rev)
            healthy = rev.found and rev.ready >= rev.desired
            self.add_row(
                rev.role, rev.deployment,
                Text(ready, style="bold" if healthy else "italic"),
                tag_of(rev.image) if rev.image else "-", rev.hpa,
            )  # fmt: skip
