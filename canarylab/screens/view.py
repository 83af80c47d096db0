"""What the App hands its screens on every coalesced refresh (pure data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from canarylab.screens.history import History
from canarylab.screens.workloads import Workloads

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState


@dataclass
class LabView:
    """A snapshot of the lab for the screens: states, the event history, pods, and lab time."""

    title: str
    engine: str
    readonly: bool
    supports_faults: bool
    now: float | None
    states: list[CanaryState] = field(default_factory=list)
    history: History = field(default_factory=History)
    workloads: dict[tuple[str, str], Workloads] = field(default_factory=dict)

    def state(self, key: tuple[str, str]) -> CanaryState | None:
        """The state of one Canary, or ``None`` when the engine does not (yet) serve it."""
        for s in self.states:
            if (s.namespace, s.name) == key:
                return s
        return None
