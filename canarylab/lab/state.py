"""Where the lab keeps its files, and what it remembers between runs.

Layout (``CANARYLAB_CACHE_DIR`` overrides the root, else ``$XDG_CACHE_HOME/canarylab`` or ``~/.cache/canarylab``)::

    ~/.cache/canarylab/bin/               tools from `canarylab tools install` (searched before PATH)
    ~/.cache/canarylab/kwok/bin/          binaries from `canarylab tools install --runtime kwok`
    ~/.cache/canarylab/<name>/state.json  the finished steps, the router, whether canarylab created the cluster
    ~/.cache/canarylab/<name>/up.log      every command `canarylab up` ran, with its output

:func:`created_contexts` is the contract with the kube engineer: the engine never touches a context canarylab
did not create unless the user names it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from canarylab.errors import UserError

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def cache_root() -> Path:
    """The root of everything the lab writes in the user's cache."""
    override = os.environ.get("CANARYLAB_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "canarylab"


def bin_dir() -> Path:
    """Where ``canarylab tools install`` puts kind, kubectl, linkerd and helm."""
    return cache_root() / "bin"


def kwok_bin_dir() -> Path:
    """Where ``canarylab tools install --runtime kwok`` puts the Docker-free lab's binaries (kube-apiserver,
    kube-controller-manager, kube-scheduler, kubectl v1.34, etcd, kwok): a directory of its own, because its
    kubectl is not the kind lab's."""
    return cache_root() / "kwok" / "bin"


def check_name(name: str) -> str:
    """A kind cluster name canarylab accepts (it becomes a directory and a DNS-ish label)."""
    if not _NAME.match(name) or len(name) > 40:
        raise UserError(f"--name {name!r} is not a valid lab name: use lowercase letters, digits and '-', "
                        "starting and ending with a letter or digit, at most 40 characters (e.g. --name canarylab).")
    return name


def lab_dir(name: str) -> Path:
    """The per-lab directory (state and log)."""
    return cache_root() / check_name(name)


def context_of(name: str) -> str:
    """The kube context kind creates for cluster ``name``."""
    return f"kind-{name}"


@dataclass
class LabState:
    """What ``state.json`` holds for one lab."""

    name: str
    router: str = ""
    created: bool = False
    """canarylab ran ``kind create cluster`` for this lab (so ``down`` may delete it)."""
    done: list[str] = field(default_factory=list)
    updated: str = ""

    @property
    def context(self) -> str:
        """``kind-<name>``."""
        return context_of(self.name)

    @classmethod
    def load(cls, name: str) -> LabState:
        """The saved state, or a fresh one when there is none (or it is unreadable)."""
        path = lab_dir(name) / "state.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(name)
        except (OSError, ValueError):
            # A truncated or hand-edited file must not block `up`; start over, the steps are idempotent.
            return cls(name)
        return cls(name=name, router=str(raw.get("router", "")), created=bool(raw.get("created", False)),
                   done=[str(s) for s in raw.get("done", [])], updated=str(raw.get("updated", "")))

    def save(self) -> None:
        """Write atomically (a crash never leaves half a file)."""
        directory = lab_dir(self.name)
        directory.mkdir(parents=True, exist_ok=True)
        self.updated = datetime.now(UTC).isoformat(timespec="seconds")
        data = {**asdict(self), "context": self.context}
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, directory / "state.json")

    def mark_done(self, step: str) -> None:
        """Record a finished step and save."""
        if step not in self.done:
            self.done.append(step)
        self.save()

    def forget(self) -> None:
        """Remove the state file (after ``down``); the log stays for post-mortems."""
        (lab_dir(self.name) / "state.json").unlink(missing_ok=True)


def created_contexts() -> set[str]:
    """Kube contexts of the kind clusters canarylab created (``kind-<name>``) and has not deleted."""
    root = cache_root()
    found: set[str] = set()
    if not root.is_dir():
        return found
    for path in root.glob("*/state.json"):
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if raw.get("created") and isinstance(raw.get("name"), str):
            found.add(context_of(raw["name"]))
    return found
