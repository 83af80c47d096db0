"""The lab as data: manifests under ``bootstrap/`` at the top of the source tree."""

from __future__ import annotations

import contextlib
import sys
import sysconfig
from pathlib import Path
from typing import Any

from canarylab.errors import UserError
from canarylab.loader import parse_documents


def _find_data(name: str = "bootstrap", marker: str = "workloads") -> Path:
    """``<name>/`` next to the package (a checkout or an editable install), else where the wheel put it:
    ``<prefix>/share/canarylab/<name>`` (pyproject ``[tool.setuptools.data-files]``), for a venv, the system
    or a ``pip install --user``. ``marker`` is a subdirectory that must be there."""
    source = Path(__file__).resolve().parent.parent / name
    shared = Path("share", "canarylab", name)
    candidates = [source, Path(sysconfig.get_path("data")) / shared, Path(sys.prefix) / shared]
    with contextlib.suppress(KeyError):  # no user scheme on this platform
        candidates.append(Path(sysconfig.get_path("data", sysconfig.get_preferred_scheme("user"))) / shared)
    for candidate in candidates:
        if (candidate / marker).is_dir():
            return candidate
    return source


def _find_bootstrap() -> Path:
    return _find_data("bootstrap", "workloads")


BOOTSTRAP = _find_bootstrap()

DEPLOY = _find_data("deploy", "base")
"""``deploy/``: the engine's kustomize base (``deploy/base``) and its Containerfile, shipped in the wheel too."""


def bootstrap_file(*parts: str) -> Path:
    """A file under ``bootstrap/``, e.g. ``bootstrap_file("workloads", "podinfo.yaml")``."""
    return BOOTSTRAP.joinpath(*parts)


def load_documents(text: str, source: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document in ``text``, read by the safe loader; a clear error naming ``source`` when it
    is not YAML or a document is not a Kubernetes object."""
    docs = [d for d in parse_documents(text, source) if d is not None]
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, dict) or "kind" not in doc:
            raise UserError(f"{source}: document {i} is not a Kubernetes object (it needs apiVersion, kind, metadata).")
    return docs


def bootstrap_documents(*parts: str) -> list[dict[str, Any]]:
    """The objects in one ``bootstrap/`` file."""
    return load_documents(bootstrap_file(*parts).read_text(), "bootstrap/" + "/".join(parts))


def seed_lab() -> list[dict[str, Any]]:
    """The seed tutorial's lab: namespace ``test``, podinfo + HPA, the loadtester, and the Canary."""
    return [
        *bootstrap_documents("workloads", "namespace.yaml"),
        *bootstrap_documents("workloads", "loadtester.yaml"),
        *bootstrap_documents("workloads", "podinfo.yaml"),
        *bootstrap_documents("workloads", "podinfo-canary.yaml"),
    ]
