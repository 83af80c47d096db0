"""How a Canary's phase looks: an icon, a role the widgets map to theme colours, and attention (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState

# phase -> (icon, role); roles are component-class suffixes styled with theme variables.
_LOOK: dict[str, tuple[str, str]] = {
    "Initializing": ("◌", "busy"),
    "Initialized": ("●", "idle"),
    "Waiting": ("⏸", "attention"),
    "Progressing": ("▶", "busy"),
    "WaitingPromotion": ("⏸", "attention"),
    "Promoting": ("⇡", "busy"),
    "Finalising": ("⇡", "busy"),
    "Succeeded": ("✔", "good"),
    "Failed": ("✘", "bad"),
    "Terminating": ("◌", "busy"),
    "Terminated": ("○", "idle"),
}


def look(phase: str) -> tuple[str, str]:
    """``(icon, role)`` for a phase; unknown or empty phases read as idle."""
    return _LOOK.get(phase, ("○", "idle"))


def needs_attention(state: CanaryState) -> bool:
    """Failed runs, gates waiting for a human and invalid specs want someone to look."""
    return state.phase == "Failed" or state.waiting_gate is not None or state.problem is not None


def phase_text(state: CanaryState) -> str:
    """The phase as shown, with what the canary waits for or why it does not run."""
    if state.problem:
        return "Invalid"
    text = state.phase or "Pending"
    if state.paused:
        text += " (paused)"
    if state.suspended:
        text += " (suspended)"
    return text
