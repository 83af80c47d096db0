"""The key footer, fitted to the terminal's width: every key, then compact, shorter, then fewer labels.

At 120 columns every key shows; at 80 the footer goes compact, some labels get shorter, and the keys least
needed at a glance (filter, overview, export, the palette) leave the footer. They still work, and ``?`` and
the command palette list them all; ``?`` and ``q`` are never dropped.

It is drawn from Textual's public API only (the screen's active bindings and their key displays), in the
theme's footer colours, so it follows Textual's releases without reaching into its private widgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

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
    # " key label " wide; compact "key label" plus a one-cell gap
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


@dataclass(frozen=True)
class _Key:
    key: str
    display: str
    label: str
    action: str
    enabled: bool


class KeyFooter(Widget, can_focus=False):
    """The screen's keys on one line at the bottom, fitted to the width (see :func:`fit`); click a key to press it."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-footer--key", "key-footer--label", "key-footer--disabled"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    KeyFooter > .key-footer--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    KeyFooter > .key-footer--label {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    KeyFooter > .key-footer--disabled {
        text-style: dim;
    }
    """

    def __init__(self, *, drop_first: Sequence[str] = (), id: str | None = None) -> None:
        """``drop_first``: actions this screen needs least, leaving the footer before :data:`DROP_ORDER`."""
        super().__init__(id=id)
        self.drop_first = tuple(drop_first)
        self._spans: list[tuple[int, int, _Key]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self.refresh()

    def _keys(self) -> tuple[list[_Key], _Key | None]:
        """The screen's shown bindings, one per action in binding order, and the command palette's."""
        app = self.app
        palette_key = app.COMMAND_PALETTE_BINDING if app.ENABLE_COMMAND_PALETTE else None
        keys: list[_Key] = []
        palette: _Key | None = None
        seen: set[str] = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            item = _Key(binding.key, app.get_key_display(binding), binding.description,
                        binding.action.removeprefix("app."), active.enabled)
            if key == palette_key:
                palette = item
            elif binding.show and item.action not in seen:
                seen.add(item.action)
                keys.append(item)
        return keys, palette

    def render(self) -> Text:
        keys, palette = self._keys()
        plan = fit([(k.action, k.display, k.label) for k in keys], self.size.width,
                   (palette.display, palette.label) if palette is not None else None, self.drop_first)
        key_style = self.get_component_rich_style("key-footer--key")
        label_style = self.get_component_rich_style("key-footer--label")
        dim = self.get_component_rich_style("key-footer--disabled")
        text = Text(no_wrap=True, overflow="crop")
        self._spans = []

        def add(item: _Key, label: str, compact: bool) -> None:
            start = len(text)
            key_text, label_text = (item.display, f" {label}") if compact else (f" {item.display} ", f"{label} ")
            text.append(key_text, key_style if item.enabled else key_style + dim)
            text.append(label_text, label_style if item.enabled else label_style + dim)
            self._spans.append((start, len(text), item))

        for item in keys:
            label = plan.labels.get(item.action)
            if label is not None:
                add(item, label, plan.compact)
                if plan.compact:
                    text.append(" ")
        if plan.palette and palette is not None:
            tail = len(palette.display) + len(palette.label) + 4
            text.append(" " * max(1, self.size.width - len(text) - tail))
            text.append("▏", label_style)
            add(palette, palette.label, compact=False)
        return text

    def on_click(self, event: events.Click) -> None:
        for start, end, item in self._spans:
            if start <= event.x < end:
                if item.enabled:
                    self.app.simulate_key(item.key)
                else:
                    self.app.bell()
                return

    def on_resize(self, event: events.Resize) -> None:
        self.refresh()
