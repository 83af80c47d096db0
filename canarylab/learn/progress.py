"""Where each learner is: the lesson and step reached on each lab, saved after every step.

The file is ``$XDG_STATE_HOME/canarylab/learn.json`` (default ``~/.local/state/canarylab/learn.json``), or the
one named by ``CANARYLAB_LEARN_PROGRESS``. ``canarylab learn --reset`` removes it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def default_path(env: dict[str, str] | None = None) -> Path:
    """The progress file for this user."""
    env = dict(os.environ) if env is None else env
    if env.get("CANARYLAB_LEARN_PROGRESS"):
        return Path(env["CANARYLAB_LEARN_PROGRESS"])
    state = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return state / "canarylab" / "learn.json"


@dataclass
class Progress:
    """Saved progress per lab (``simulated lab`` or a kube context): current lesson, step per lesson, completions."""

    path: Path
    labs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Progress:
        """The saved progress, or a fresh one when the file is missing or unreadable (it is only a convenience)."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path)
        labs = data.get("labs") if isinstance(data, dict) else None
        return cls(path, labs if isinstance(labs, dict) else {})

    def _lab(self, lab: str) -> dict[str, Any]:
        return self.labs.setdefault(lab, {"current": None, "lessons": {}})

    def current(self, lab: str) -> str | None:
        """The lesson the learner was in on this lab."""
        value = self._lab(lab).get("current")
        return value if isinstance(value, str) else None

    def step(self, lab: str, lesson: str) -> int:
        """The step reached in a lesson (0 when not started)."""
        entry = self._lab(lab)["lessons"].get(lesson) or {}
        step = entry.get("step", 0)
        return step if isinstance(step, int) and step >= 0 else 0

    def completed(self, lab: str, lesson: str) -> bool:
        """Whether the learner finished the lesson on this lab."""
        return bool((self._lab(lab)["lessons"].get(lesson) or {}).get("completed"))

    def record(self, lab: str, lesson: str, step: int, *, completed: bool = False) -> None:
        """Save the step reached (and completion) and make this the current lesson."""
        entry = self._lab(lab)
        entry["current"] = lesson
        saved = entry["lessons"].setdefault(lesson, {})
        saved["step"] = step
        if completed:
            saved["completed"] = True
            saved["completedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.save()

    def restart(self, lab: str, lesson: str) -> None:
        """Start a lesson over (its completion is kept)."""
        self.record(lab, lesson, 0)

    def save(self) -> None:
        """Write the file (atomically)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "labs": self.labs}, indent=2) + "\n")
        tmp.replace(self.path)

    def reset(self) -> bool:
        """Forget everything; returns whether there was anything to forget."""
        self.labs = {}
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
