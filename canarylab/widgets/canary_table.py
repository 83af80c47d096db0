"""The overview: every Canary as a row, like ``kubectl get canaries -A``, sortable and filterable."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from canarylab.widgets.status import look, needs_attention, phase_text

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState

COLUMNS = ("", "NAMESPACE", "NAME", "STATUS", "WEIGHT", "FAILEDCHECKS", "LASTTRANSITION")
SORT_KEYS = ("attention", "namespace", "name", "status", "weight", "failed", "transition")


def sort_and_filter(states: Sequence[CanaryState], sort: str, text: str) -> list[CanaryState]:
    """Rows to show: those whose namespace/name/phase contain ``text``, ordered by ``sort``."""
    needle = text.strip().lower()
    rows = [s for s in states if not needle or needle in f"{s.namespace}/{s.name} {s.phase}".lower()]
    keys = {
        "attention": lambda s: (not needs_attention(s), s.namespace, s.name),
        "namespace": lambda s: (s.namespace, s.name),
        "name": lambda s: (s.name, s.namespace),
        "status": lambda s: (s.phase, s.namespace, s.name),
        "weight": lambda s: (-s.canary_weight, s.namespace, s.name),
        "failed": lambda s: (-s.failed_checks, s.namespace, s.name),
        "transition": lambda s: (s.last_transition_time or "", s.namespace, s.name),
    }
    return sorted(rows, key=keys.get(sort, keys["namespace"]))


def transition_text(stamp: str | None, now: float | None) -> str:
    """``lastTransitionTime`` as ``21:22:35`` when it is today (lab time), else in full; ``-`` when unset."""
    if not stamp:
        return "-"
    if now is not None and stamp.startswith(time.strftime("%Y-%m-%dT", time.gmtime(now))) and len(stamp) >= 19:
        return stamp[11:19]
    return stamp


class CanaryTable(DataTable[str | Text]):
    """Rows keyed ``namespace/name``; the cursor stays on the same Canary across refreshes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "canary-table--idle", "canary-table--busy", "canary-table--good", "canary-table--bad",
        "canary-table--attention",
    }  # fmt: skip
    DEFAULT_CSS = """
    CanaryTable { height: 1fr; }
    CanaryTable > .canary-table--idle { color: $text-muted; }
    CanaryTable > .canary-table--busy { color: $accent; }
    CanaryTable > .canary-table--good { color: $success; }
    CanaryTable > .canary-table--bad { color: $error; text-style: bold; }
    CanaryTable > .canary-table--attention { color: $warning; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.sort_by = "namespace"
        self.filter = ""
        self._shown: list[Any] = []

    def on_mount(self) -> None:
        for label, key in zip(COLUMNS, SORT_KEYS, strict=True):
            self.add_column(label, key=key)

    def show(self, states: Sequence[CanaryState], now: float | None = None) -> None:
        """Redraw the rows (only when something visible changed), keeping the cursor's Canary."""
        rows = sort_and_filter(states, self.sort_by, self.filter)
        shown = [(s.namespace, s.name, phase_text(s), s.canary_weight, s.failed_checks, s.threshold,
                  transition_text(s.last_transition_time, now), needs_attention(s), s.waiting_gate) for s in rows]
        if shown == self._shown:
            return
        self._shown = shown
        selected = self.selected_key()
        self.clear()
        for s in rows:
            icon, role = look(s.phase)
            if s.problem:
                icon, role = "✘", "bad"
            attention = needs_attention(s)
            status = phase_text(s) + (f" · gate {s.waiting_gate}" if s.waiting_gate else "")
            self.add_row(
                Text("!" if attention else " ", self.get_component_rich_style("canary-table--attention", partial=True)),
                s.namespace, s.name,
                Text(f"{icon} {status}", self.get_component_rich_style(f"canary-table--{role}", partial=True)),
                str(s.canary_weight),
                f"{s.failed_checks}/{s.threshold}",
                transition_text(s.last_transition_time, now),
                key=f"{s.namespace}/{s.name}",
            )  # fmt: skip
        if selected is not None and selected in {f"{s.namespace}/{s.name}" for s in rows}:
            self.move_cursor(row=self.get_row_index(selected))

    def resort(self, key: str) -> None:
        """Order rows by ``key`` (one of :data:`SORT_KEYS`) from the next :meth:`show` on."""
        self.sort_by = key
        self._shown = []  # force the redraw even though the rows did not change

    def selected_key(self) -> str | None:
        """``namespace/name`` under the cursor, or ``None`` for an empty table."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except CellDoesNotExist:  # the cursor may point past a table that just shrank
            return None
        return str(key) if key is not None else None
