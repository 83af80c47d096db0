"""Key bindings as data, with ids users can remap (as posting does).

Remap in a YAML file (``$CANARYLAB_KEYMAP``, default ``~/.config/canarylab/keymap.yaml``) mapping a
binding id to keys, e.g. ``bump: ctrl+b`` or ``quit: q,ctrl+q``, or per key with an env variable
``CANARYLAB_KEY_BUMP=ctrl+b``. Ids are the names below (``bump``, ``fault``, ...).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding

from canarylab.errors import UserError
from canarylab.loader import LoadError, load_yaml


@dataclass(frozen=True)
class Key:
    """One remappable action: id, default keys, what the footer says, whether it changes anything."""

    id: str
    keys: str
    action: str
    description: str
    mutating: bool
    show: bool = True
    help: str = ""


KEYS: tuple[Key, ...] = (
    Key("bump", "b", "bump", "Ship", True, help="Bump the target's image (a modal proposes the next tag)"),
    Key("fault", "f", "fault", "Fault", True, help="Inject errors or latency in the canary (presets), or clear"),
    Key("rollback", "r", "rollback", "Roll back", True, help="Roll back now (asks first)"),
    Key("promote", "p", "promote", "Promote", True, help="Promote now, skipping the remaining steps (asks first)"),
    Key("pause", "space", "pause", "Pause/resume", True, help="Pause or resume the analysis of this canary"),
    Key("gate", "g", "gate", "Open gate", True, help="Approve the gate the canary waits at"),
    Key("filter", "slash", "filter", "Filter", False, help="Filter the overview by namespace, name or phase"),
    Key("overview", "o", "overview", "Overview", False, help="Show every canary (Escape from the detail)"),
    Key("export", "ctrl+s", "export", "Export", False, help="Save a Markdown report and an SVG screenshot"),
    Key("help", "question_mark", "help", "Help", False, help="Show the keys"),
    Key("quit", "q", "quit", "Quit", False, help="Quit (stops the lab)"),
)
BY_ID = {k.id: k for k in KEYS}
PREFIX = "canarylab."


def bindings() -> list[Binding]:
    """Textual bindings with ids ``canarylab.<id>``, so :meth:`App.set_keymap` can remap them."""
    return [Binding(k.keys, k.action, k.description, show=k.show, id=PREFIX + k.id) for k in KEYS]


def _check(source: str, mapping: object, validate: str = "strict", warnings: list[str] | None = None) -> dict[str, str]:
    if not isinstance(mapping, Mapping):
        raise UserError(f"{source}: expected a mapping of binding id to keys, e.g. 'bump: ctrl+b'.")
    out: dict[str, str] = {}
    for key, value in mapping.items():
        if key not in BY_ID:
            close = difflib.get_close_matches(str(key), list(BY_ID), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            message = f"{source}: unknown binding id {key!r}{hint} (known ids: {', '.join(BY_ID)})"
            if validate == "strict":
                raise UserError(message + ".")
            if validate == "warn" and warnings is not None:
                warnings.append(message + "; ignored (--validate=warn).")
            continue
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{source}: binding {key!r} needs keys as text, e.g. '{key}: ctrl+x' (got {value!r}).")
        out[PREFIX + key] = value.strip()
    return out


def load_keymap(env: Mapping[str, str] | None = None, *, validate: str = "strict",
                warnings: list[str] | None = None) -> dict[str, str]:
    """The user's remapping (binding id -> keys) from the keymap file and ``CANARYLAB_KEY_*`` variables.

    An unknown binding id is an error; with ``validate="warn"`` a warning appended to ``warnings`` (``"ignore"``:
    skipped silently), as ``--validate`` does for manifests.
    """
    env = os.environ if env is None else env
    explicit = env.get("CANARYLAB_KEYMAP")
    path = Path(explicit) if explicit else Path.home() / ".config" / "canarylab" / "keymap.yaml"
    keymap: dict[str, str] = {}
    if path.is_file():
        try:
            data = load_yaml(path) or {}
        except LoadError as err:
            raise UserError(f"keymap {err} Fix or remove the file.") from None
        keymap.update(_check(f"keymap {path}", data, validate, warnings))
    elif explicit:
        raise UserError(f"CANARYLAB_KEYMAP={explicit}: no such file; point it at a YAML keymap or unset it.")
    for name, value in env.items():
        if name.startswith("CANARYLAB_KEY_"):
            keymap.update(_check(name, {name.removeprefix("CANARYLAB_KEY_").lower(): value}, validate, warnings))
    return keymap
