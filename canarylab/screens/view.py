"""What the App hands its screens on every coalesced refresh (pure data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from canarylab.screens.history import History
from canarylab.screens.workloads import Workloads

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState
    from canarylab.session import FaultInfo


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
    faults: dict[tuple[str, str], FaultInfo] = field(default_factory=dict)
    """The fault on each Canary's target (active, or left behind by a new revision); none: no entry."""
    queued: dict[tuple[str, str], str] = field(default_factory=dict)
    """Images the user shipped that wait for the Canary to be able to analyse them."""

    def active_faults(self) -> list[FaultInfo]:
        """Faults that still hit a Canary's current revision."""
        return [f for f in self.faults.values() if f.active]

    def state(self, key: tuple[str, str]) -> CanaryState | None:
        """The state of one Canary, or ``None`` when the engine does not (yet) serve it."""
        for s in self.states:
            if (s.namespace, s.name) == key:
                return s
        return None
