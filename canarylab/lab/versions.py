"""The pinned versions in ``bootstrap/versions.yaml`` and the parsing of each tool's ``version`` output."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canarylab.errors import UserError
from canarylab.loader import LoadError, parse_documents, read_text
from canarylab.manifests import bootstrap_file

TOOLS = ("kind", "kubectl", "linkerd", "helm")
"""The kind lab's tools (``tools:`` in the versions file)."""
KWOK_TOOLS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kwok")
"""The Docker-free lab's binaries (``kwok_tools:``), installed into their own directory."""


@dataclass(frozen=True)
class ToolPin:
    """One downloadable tool: version, URL template, per-platform SHA-256 and the oldest version we accept."""

    name: str
    version: str
    min_version: str
    url: str
    sha256: dict[str, str] = field(default_factory=dict)
    archive_member: str | None = None
    url_overrides: dict[str, str] = field(default_factory=dict)
    """Per-platform URL templates (etcd ships ``.zip`` files for macOS)."""
    missing: dict[str, str] = field(default_factory=dict)
    """Per platform without a checksum: why, and what to do instead (shown when the install is refused)."""

    def url_for(self, plat: str) -> str:
        """The download URL for ``plat`` (``linux-amd64``)."""
        os_name, arch = plat.split("-", 1)
        return self.url_overrides.get(plat, self.url).format(version=self.version, os=os_name, arch=arch)

    def member_for(self, plat: str) -> str | None:
        """The path of the binary inside the archive, if the download is an archive."""
        if self.archive_member is None:
            return None
        os_name, arch = plat.split("-", 1)
        return self.archive_member.format(version=self.version, os=os_name, arch=arch)


@dataclass(frozen=True)
class Versions:
    """Everything pinned in ``bootstrap/versions.yaml``."""

    tools: dict[str, ToolPin]
    raw: dict[str, Any]
    kwok_tools: dict[str, ToolPin] = field(default_factory=dict)
    """The Docker-free lab's binaries (``kwok_tools:``)."""

    def section(self, key: str) -> dict[str, Any]:
        """A top-level section (``cluster``, ``gateway_api``, ``preflight``...), empty when absent."""
        value = self.raw.get(key) or {}
        return value if isinstance(value, dict) else {}


def load_versions(text: str | None = None) -> Versions:
    """Parse ``bootstrap/versions.yaml``, or the file named by ``CANARYLAB_VERSIONS``, or ``text``."""
    override = os.environ.get("CANARYLAB_VERSIONS")
    path = Path(override) if override else bootstrap_file("versions.yaml")
    source = str(path) if override else "bootstrap/versions.yaml"
    try:
        if text is None:
            text = read_text(path)
        docs = [d for d in parse_documents(text, source) if d is not None]
    except LoadError as err:
        raise UserError(f"{err} Set CANARYLAB_VERSIONS to a readable versions file, or unset it.") from None
    if len(docs) > 1:
        raise UserError(f"{source}: holds {len(docs)} YAML documents; a versions file is one mapping.")
    loaded = docs[0] if docs else {}
    raw: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    tools = _pins(raw, "tools", source)
    kwok_tools = _pins(raw, "kwok_tools", source)
    return Versions(tools, raw, kwok_tools)


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()} if isinstance(value, dict) else {}


def _pins(raw: dict[str, Any], section: str, source: str) -> dict[str, ToolPin]:
    pins: dict[str, ToolPin] = {}
    for name, spec in (raw.get(section) or {}).items():
        try:
            pins[name] = ToolPin(name=name, version=str(spec["version"]), min_version=str(spec["min_version"]),
                                 url=str(spec["url"]), sha256=_strings(spec.get("sha256")),
                                 archive_member=spec.get("archive_member"),
                                 url_overrides=_strings(spec.get("url_overrides")),
                                 missing=_strings(spec.get("missing")))
        except (KeyError, TypeError, AttributeError) as err:
            raise UserError(f"{source}: {section}.{name} needs version, min_version and url ({err}).") from None
    return pins


def current_platform() -> str:
    """``linux-amd64``, ``darwin-arm64``... in the vendors' spelling."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower())
    return f"{platform.system().lower()}-{arch}"


# ---------------------------------------------------------------------------------------------------------------
# Version output of each tool, and comparison.

_SEMVER = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
_LINKERD = re.compile(r"(edge|stable)-(\d+)\.(\d+)\.(\d+)")


def parse_version(tool: str, output: str) -> str | None:
    """The version in a tool's ``version`` output, or None when it cannot be read.

    - ``kind version`` → ``kind v0.29.0 go1.24.2 linux/amd64``
    - ``kubectl version --client -o json`` → ``{"clientVersion": {"gitVersion": "v1.33.13", ...}}``
    - ``linkerd version --client --short`` → ``edge-25.5.2``
    - ``helm version --short`` → ``v3.18.6+gb76a950``
    """
    text = output.strip()
    if tool == "kubectl":
        # Older kubectl or plain text: fall through to the regex.
        with contextlib.suppress(ValueError, KeyError, TypeError):
            text = str(json.loads(text)["clientVersion"]["gitVersion"])
    if tool == "linkerd":
        m = _LINKERD.search(text)
        return m.group(0) if m else None
    m = _SEMVER.search(text)
    if not m:
        return None
    return f"v{m.group(1)}.{m.group(2)}.{m.group(3) or 0}"


def version_key(version: str) -> tuple[int, ...]:
    """A sortable key; Linkerd's ``edge-25.5.2`` and ``stable-2.14.10`` keep their own channel order."""
    m = _LINKERD.search(version)
    if m:
        # Edge releases are numbered by date (YY.M.N); stable ones by semver. stable-2.18 ≈ edge-25.4.
        channel = 1 if m.group(1) == "edge" else 0
        return (channel, int(m.group(2)), int(m.group(3)), int(m.group(4)))
    m2 = _SEMVER.search(version)
    if not m2:
        return (0,)
    return (int(m2.group(1)), int(m2.group(2)), int(m2.group(3) or 0))


_STABLE_FOR_EDGE_MIN = (0, 2, 18, 0)  # Linkerd stable 2.18 is the first stable with externally owned Gateway API


def supported(tool: str, version: str, minimum: str) -> bool:
    """Whether ``version`` of ``tool`` is at least ``minimum``."""
    have = version_key(version)
    want = version_key(minimum)
    if tool == "linkerd" and have[0] != want[0]:
        # Comparing a stable build against an edge minimum: use the stable release that matches it.
        return have >= _STABLE_FOR_EDGE_MIN if have[0] == 0 else True
    return have >= want
