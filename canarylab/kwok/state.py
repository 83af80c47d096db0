"""Where the Docker-free lab keeps its files, and the record that says whether it is up.

Layout (under ``CANARYLAB_CACHE_DIR``, default ``~/.cache/canarylab``)::

    kwok/bin/                  binaries from `canarylab tools install --runtime kwok`
    kwok/lab/lab.json          the running lab: pid, status, kubeconfig, ports (removed by `down`)
    kwok/lab/progress.log      what `up` shows while the lab starts
    kwok/lab/controlplane/     certificates, etcd data, the admin kubeconfig (context canarylab-kwok)
    kwok/logs/                 the lab's log and each component's log (kept after `down`)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from canarylab.lab.state import cache_root

CONTEXT = "canarylab-kwok"
"""The kube context (and cluster name) of the Docker-free lab."""


def root() -> Path:
    """``~/.cache/canarylab/kwok``."""
    return cache_root() / "kwok"


def lab_dir() -> Path:
    """The running lab's directory (removed by ``down``)."""
    return root() / "lab"


def logs_dir() -> Path:
    """Logs of the last run (kept after ``down`` for post-mortems)."""
    return root() / "logs"


def record_path() -> Path:
    """``lab.json``."""
    return lab_dir() / "lab.json"


@dataclass
class LabRecord:
    """What ``lab.json`` holds: the daemon and how to reach the lab."""

    status: str = "starting"
    """``starting``, ``ready`` or ``failed``."""
    pid: int = 0
    context: str = CONTEXT
    kubeconfig: str = ""
    server: str = ""
    gateway: str = ""
    """``http://127.0.0.1:PORT``: the lab's Services by service-proxy path (the simulated data plane)."""
    prometheus: str = ""
    metrics: str = ""
    kubectl: str = ""
    """The pinned kubectl the lab uses (``canarylab env`` puts its directory on PATH)."""
    error: str = ""
    started: float = 0.0
    ready_after: float = 0.0
    pids: dict[str, int] = field(default_factory=dict)
    """Every process the lab started, by component, so ``down`` can make sure none is left."""

    def save(self) -> None:
        """Write atomically."""
        directory = lab_dir()
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".lab-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2)
        os.replace(tmp, record_path())

    @classmethod
    def load(cls) -> LabRecord | None:
        """The record, or ``None`` when there is none (or it is unreadable)."""
        try:
            raw: dict[str, Any] = json.loads(record_path().read_text())
        except (OSError, ValueError):
            return None
        known = {f for f in cls.__dataclass_fields__}
        with contextlib.suppress(TypeError):
            return cls(**{k: v for k, v in raw.items() if k in known})
        return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (and is not a zombie we could reap)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def running() -> LabRecord | None:
    """The record of a lab whose daemon is alive, else ``None``."""
    record = LabRecord.load()
    return record if record is not None and alive(record.pid) else None


def ready() -> LabRecord | None:
    """The record of a lab that is up and ready, else ``None``."""
    record = running()
    return record if record is not None and record.status == "ready" else None
