"""The key footer, fitted to the terminal's width: Textual's Footer, compact, shorter, then fewer labels.

At 120 columns every key shows; at 80 the footer goes compact, some labels get shorter, and the keys least
needed at a glance (filter, overview, export, the palette) leave the footer. They still work, and ``?`` and
the command palette list them all; ``?`` and ``q`` are never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE = "command_palette"
"""The palette's pseudo action in :data:`DROP_ORDER` (its key is docked right)."""
SHORT: dict[str, str] = {"pause": "Pause", "gate": "Gate", "rollback": "Rollback"}
"""Shorter labels by action, used when the full ones do not fit."""
DROP_ORDER: tuple[str, ...] = (
    "filter", "overview", "export", "sort", PALETTE, "gate", "pause", "fault", "promote", "rollback", "bump",
)  # fmt: skip
"""Actions that leave the footer first when even short labels do not fit; help and quit always stay."""


@dataclass(frozen=True)
class FooterPlan:
    """What the footer shows: compact or not, the label of each action shown, and the palette key."""

    compact: bool
    labels: dict[str, str]
    palette: bool


def _width(key: str, label: str, compact: bool) -> int:
    # Footer's CSS: " key label " wide; compact "key label" plus a one-cell margin
    return len(key) + len(label) + (2 if compact else 3)


def fit(keys: Sequence[tuple[str, str, str]], width: int, palette: tuple[str, str] | None = None,
        drop_first: Sequence[str] = ()) -> FooterPlan:
    """The widest footer that fits ``width`` cells; ``keys`` are ``(action, key display, label)``.

    Tried in order: every key with its label; compact; compact with :data:`SHORT` labels; then dropping
    actions one by one, ``drop_first`` (what the screen needs least) then :data:`DROP_ORDER`. ``width`` 0 (not laid
    out yet) fits everything."""
    everything = FooterPlan(False, {action: label for action, _, label in keys}, palette is not None)
    if width <= 0:
        return everything
    shortened = {action: SHORT.get(action, label) for action, _, label in keys}
    plans = [everything, FooterPlan(True, everything.labels, everything.palette),
             FooterPlan(True, shortened, everything.palette)]
    dropped: set[str] = set()
    for action in dict.fromkeys([*drop_first, *DROP_ORDER]):
        dropped.add(action)
        plans.append(FooterPlan(True, {a: label for a, label in shortened.items() if a not in dropped},
                                palette is not None and PALETTE not in dropped))
    display = {action: key for action, key, _ in keys}
    for plan in plans:
        used = sum(_width(display[a], label, plan.compact) for a, label in plan.labels.items())
        if plan.palette and palette is not None:
            used += len(palette[0]) + len(palette[1]) + 4  # its padding and the separator bar
        if used <= width:
            return plan
    return plans[-1]


class KeyFooter(Footer):
    """A :class:`~textual.widgets.Footer` that fits its keys to its width (see :func:`fit`)."""

    def __init__(self, *, drop_first: Sequence[str] = (), id: str | None = None) -> None:
        """``drop_first``: actions this screen needs least, leaving the footer before :data:`DROP_ORDER`."""
        super().__init__(id=id)
        self.drop_first = tuple(drop_first)
        self._laid_out_at = -1

    def compose(self) -> ComposeResult:
        widgets = list(super().compose())  # the bindings are ungrouped: every key is a top-level FooterKey
        keys = [w for w in widgets if isinstance(w, FooterKey) and not w.has_class("-command-palette")]
        palette = next((w for w in widgets if isinstance(w, FooterKey) and w.has_class("-command-palette")), None)
        plan = fit([(_action(w), w.key_display, w.description) for w in keys], self.size.width,
                   (palette.key_display, palette.description) if palette is not None else None, self.drop_first)
        self._laid_out_at = self.size.width
        self.set_reactive(Footer.compact, plan.compact)
        self.set_class(plan.compact, "-compact")
        for widget in widgets:
            if widget is palette:
                if plan.palette:
                    yield widget
            elif isinstance(widget, FooterKey):
                label = plan.labels.get(_action(widget))
                if label is not None:
                    widget.description = label
                    yield widget
            else:
                yield widget

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._laid_out_at:
            self.call_after_refresh(self.recompose)


def _action(key: FooterKey) -> str:
    return key.action.removeprefix("app.")
