"""The Canary's event log in Flagger's wording, timestamped, warnings highlighted.

Wide, each event wraps to show all of it. Narrow (an 80-column terminal), each event is one line cut with an
ellipsis, and the message drops what the header already says (the Canary's ``name.namespace``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.widgets import RichLog

from canarylab.screens.history import LAB, LogLine
from canarylab.widgets.clock_text import hms

NARROW = 50
"""Below this many columns an event is one line: shortened message, cut with an ellipsis."""


def short_message(message: str, namespace: str) -> str:
    """Flagger's message without the Canary's ``name.namespace`` where the sentence still reads
    (``Advance podinfo.test canary weight 5`` -> ``Advance canary weight 5``; a halt keeps only its reason, as the
    line is marked ⚠), and other ``name.<namespace>``
    as ``name`` (``podinfo-primary.test not ready`` -> ``podinfo-primary not ready``); URLs are kept."""
    if not namespace:
        return message
    name, ns = r"[a-z0-9][a-z0-9-]*", re.escape(namespace)
    key = rf"{name}\.{ns}"
    # "Halt podinfo.test advancement success rate 50.00% < 99%": the ⚠ says halt, the value must show
    text = re.sub(rf"^Halt (?:{key} )?advancement ", "", message)
    text = re.sub(rf"^(Advance|Rolling back) {key} ", r"\1 ", text)
    text = re.sub(rf" for {key}$", "", text)  # "Starting canary analysis for podinfo.test"
    text = re.sub(rf"(! (?:Scaling (?:up|down) )?){key}$", r"\1", text).rstrip()  # "Initialization done! ..."
    return re.sub(rf"(?<![\w./:-])({name})\.{ns}(?![\w./-])", r"\1", text)


class EventLog(RichLog):
    """Appends only the lines it has not written yet; rewrites them all when the width crosses :data:`NARROW`."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "event-log--time", "event-log--warning", "event-log--error", "event-log--normal", "event-log--lab",
        "event-log--expected", "event-log--note",
    }  # fmt: skip
    DEFAULT_CSS = """
    EventLog { height: 1fr; background: $surface; scrollbar-size-vertical: 1; overflow-x: hidden; }
    EventLog > .event-log--time { color: $text-muted; }
    EventLog > .event-log--warning { color: $warning; text-style: bold; }
    EventLog > .event-log--error { color: $error; text-style: bold; }
    EventLog > .event-log--normal { color: $foreground; }
    EventLog > .event-log--lab { color: $text-accent; text-style: italic; }
    EventLog > .event-log--expected { color: $foreground; }
    EventLog > .event-log--note { color: $text-muted; text-style: italic; }
    """
    MARKS: ClassVar[dict[str, str]] = {"normal": "  ", "warning": "⚠ ", "error": "⚠ ", "lab": "» ", "expected": "… "}
    """The mark before each kind of line: ``⚠`` for what needs a look, ``…`` for a routine wait Flagger reports
    as a warning, ``»`` for the dashboard's own lines about the lab."""

    def __init__(self, namespace: str = "", *, id: str | None = None) -> None:
        """``namespace``: the Canary's, dropped from names in narrow lines."""
        super().__init__(id=id, wrap=True, markup=False, highlight=False, auto_scroll=True, max_lines=1000,
                         min_width=20)
        self.namespace = namespace
        self._written = 0
        self._lines: Sequence[LogLine] = ()
        self._total = 0
        self._narrow: bool | None = None  # unknown until the first resize

    def show(self, lines: Sequence[LogLine], total: int) -> None:
        """Bring the log up to date: ``lines`` are the kept lines, ``total`` how many were ever appended."""
        self._lines, self._total = lines, total
        if self._narrow is None:
            return  # no width yet: the first resize writes them
        new = total - self._written
        if new <= 0:
            return
        if new > len(lines):  # lines dropped from the bounded history, or a fresh Canary: redraw all
            self.clear()
            new = len(lines)
        for line in list(lines)[len(lines) - new :]:
            self.write(self._line(line))
        self._written = total

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < NARROW
        if narrow != self._narrow:
            self._narrow = narrow
            self.reset()
            self.show(self._lines, self._total)

    def _line(self, line: LogLine) -> Text:
        role = {"Normal": "normal", "Error": "error", LAB: "lab"}.get(line.type, "warning")
        if role == "warning" and line.expected:
            role = "expected"
        style = self.get_component_rich_style(f"event-log--{role}")
        time = (hms(line.time) + " ", self.get_component_rich_style("event-log--time"))
        mark = self.MARKS[role]
        if self._narrow:
            message = short_message(line.message, self.namespace) if role != "lab" else line.message
            return Text.assemble(time, (mark.strip() + " " if mark.strip() else "", style), (message, style),
                                 no_wrap=True, overflow="ellipsis")
        text = Text.assemble(time, (mark, style), (line.message, style))
        if line.expected:
            text.append_text(Text.assemble(" (", (line.expected, self.get_component_rich_style("event-log--note")),
                                           ")"))
        return text

    def reset(self) -> None:
        """Forget what was written (another Canary is shown, or the width changed)."""
        self.clear()
        self._written = 0
