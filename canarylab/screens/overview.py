"""The overview screen: every Canary like ``kubectl get canaries -A``; Enter opens one."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from canarylab.screens.view import LabView
from canarylab.widgets.canary_table import SORT_KEYS, CanaryTable
from canarylab.widgets.key_footer import KeyFooter
from canarylab.widgets.lab_header import LabHeader


class OverviewScreen(Screen[None]):
    """The table, a filter input (``/``) and the footer; Enter asks the app to open the detail."""

    DEFAULT_CSS = """
    OverviewScreen #filter { display: none; }
    OverviewScreen #filter.visible { display: block; }
    OverviewScreen #summary { height: 1; color: $text-muted; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort", "Sort"),
        Binding("enter", "open", "Open", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._view: LabView | None = None

    def compose(self) -> ComposeResult:
        yield LabHeader(id="header")
        yield Static("", id="summary")
        yield CanaryTable(id="canaries")
        # No blinking cursor: a blink is two repaints a second for nothing while idle.
        box = Input(placeholder="filter by namespace, name or phase (Escape clears)", id="filter")
        box.cursor_blink = False
        yield box
        # this is the overview; sort and filter matter more here than pause or gate (the detail has those)
        yield KeyFooter(drop_first=("overview", "gate", "pause", "export"))

    def current_key(self) -> tuple[str, str] | None:
        """The Canary under the cursor."""
        key = self.query_one(CanaryTable).selected_key()
        if key is None:
            return None
        namespace, _, name = key.partition("/")
        return namespace, name

    def show_clock(self, view: LabView) -> None:
        """Only the header's lab time moved."""
        self.query_one(LabHeader).show_time(view.now)

    def show(self, view: LabView) -> None:
        """Redraw from the latest snapshot."""
        self._view = view
        table = self.query_one(CanaryTable)
        table.show(view.states, view.now)
        count = f"{len(view.states)} canar{'y' if len(view.states) == 1 else 'ies'}"
        faults = view.active_faults()
        badge = f"⚡ {len(faults)} fault{'s' if len(faults) > 1 else ''} injected" if faults else ""
        self.query_one(LabHeader).show(view.title, view.engine, count, view.now, badge, "⚡ fault" if faults else "")
        sort = f"sorted by {table.sort_by}" + (f" · filter '{table.filter}'" if table.filter else "")
        shown = table.row_count
        parts = [f"{shown} of {len(view.states)} canaries", sort, "! needs attention", "Enter opens", "s sorts"]
        while len(parts) > 2 and len(" · ".join(parts)) > self.size.width - 2:
            parts.pop()  # a narrow terminal drops the tips before the counts
        self.query_one("#summary", Static).update(" · ".join(parts))

    def on_resize(self) -> None:
        if self._view:
            self.show(self._view)  # the summary line fits the new width

    def action_sort(self) -> None:
        table = self.query_one(CanaryTable)
        self._sort(SORT_KEYS[(SORT_KEYS.index(table.sort_by) + 1) % len(SORT_KEYS)])

    def _sort(self, key: str) -> None:
        self.query_one(CanaryTable).resort(key)
        if self._view:
            self.show(self._view)

    @on(DataTable.HeaderSelected)
    def _sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        self._sort(str(event.column_key.value))

    def open_filter(self) -> None:
        """Show and focus the filter input (``/``)."""
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        self.query_one(CanaryTable).filter = event.value
        if self._view:
            self.show(self._view)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(CanaryTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.query_one(CanaryTable).focus()

    @on(DataTable.RowSelected)
    def action_open(self) -> None:
        key = self.current_key()
        if key is not None:
            self.app.call_later(self.app.action_open_canary, *key)  # type: ignore[attr-defined]
