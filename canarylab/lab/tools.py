"""``canarylab tools install``: download pinned release binaries into one of the lab's ``bin`` directories.

Two sets (``bootstrap/versions.yaml``): the kind lab's kind, kubectl, linkerd and helm (``tools:``), and the
Docker-free lab's kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and kwok
(``kwok_tools:``). Every download is streamed to a staging file while its SHA-256 is computed, and compared with
the pinned value before anything is unpacked. Only when *every* tool of the run has been downloaded, verified
and unpacked are they moved into place, so a failed download or a checksum mismatch installs nothing at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from canarylab.errors import UserError
from canarylab.lab.versions import ToolPin

Progress = Callable[[str], None]
Bytes = Callable[[str, int, int | None], None]
"""Download progress: ``(tool, bytes so far, total or None)``, called as chunks arrive."""

CHUNK = 1 << 16


class DownloadError(UserError):
    """A tool could not be downloaded, or did not match its pinned checksum; nothing was installed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


@dataclass(frozen=True)
class Staged:
    """A verified binary waiting in the staging directory for its final rename."""

    pin: ToolPin
    path: Path
    sha256: str


def _no_bytes(name: str, done: int, total: int | None) -> None:
    pass


def _download(pin: ToolPin, url: str, client: httpx.Client, into: Path, on_bytes: Bytes) -> tuple[Path, str]:
    """Stream ``url`` to a file in ``into``; returns the file and the SHA-256 of what arrived."""
    digest = hashlib.sha256()
    target = into / f"{pin.name}.download"
    try:
        with client.stream("GET", url, follow_redirects=True) as response:
            if response.status_code != 200:
                raise DownloadError(f"downloading {pin.name} {pin.version} from {url} failed: HTTP "
                                    f"{response.status_code}. Check the URL in bootstrap/versions.yaml and your "
                                    "internet connection; nothing was installed.")
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            with target.open("wb") as f:
                for chunk in response.iter_bytes(CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    on_bytes(pin.name, done, total)
    except httpx.HTTPError as err:
        raise DownloadError(f"downloading {pin.name} {pin.version} from {url} failed: {err}. Check your internet "
                            "connection; nothing was installed.") from None
    return target, digest.hexdigest()


def _unpack(archive: Path, member: str, url: str, out: Path) -> None:
    """Copy ``member`` of a ``.tar.gz`` or ``.zip`` to ``out``."""
    try:
        if url.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            return
        with tarfile.open(archive, mode="r:*") as tar:
            extracted = tar.extractfile(member)
            if extracted is None:
                raise KeyError(member)
            with extracted, out.open("wb") as dst:
                shutil.copyfileobj(extracted, dst)
    except (KeyError, tarfile.TarError, zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"{url} does not contain {member} ({err}); the archive_member in "
                            "bootstrap/versions.yaml may be wrong. Nothing was installed.") from None


def refusal(pin: ToolPin, plat: str) -> str | None:
    """Why ``pin`` cannot be installed on ``plat`` (no pinned checksum), or ``None`` when it can."""
    if pin.sha256.get(plat):
        return None
    reason = pin.missing.get(plat)
    known = ", ".join(sorted(pin.sha256)) or "none"
    why = f": {reason}" if reason else (f" (pinned for: {known}); canarylab does not install unverified binaries. "
                                        f"Install {pin.name} yourself (at least {pin.min_version}) or add the "
                                        "checksum to bootstrap/versions.yaml")
    return f"no pinned SHA-256 for {pin.name} {pin.version} on {plat}{why}."


def stage_tool(pin: ToolPin, plat: str, staging: Path, *, client: httpx.Client, progress: Progress = lambda s: None,
               on_bytes: Bytes = _no_bytes) -> Staged:
    """Download ``pin`` for ``plat`` into ``staging``, verify its SHA-256 and unpack it (not installed yet)."""
    refused = refusal(pin, plat)
    if refused:
        raise DownloadError(refused)
    expected = pin.sha256[plat].lower()
    url = pin.url_for(plat)
    progress(f"downloading {pin.name} {pin.version} from {url}")
    payload, actual = _download(pin, url, client, staging, on_bytes)
    if actual != expected:
        payload.unlink(missing_ok=True)
        raise DownloadError(f"checksum mismatch for {pin.name} {pin.version} ({url}): expected sha256 {expected}, "
                            f"got {actual}. The file was discarded; nothing was installed.")
    member = pin.member_for(plat)
    binary = staging / f"{pin.name}.bin"
    if member:
        _unpack(payload, member, url, binary)
        payload.unlink(missing_ok=True)
    else:
        payload.rename(binary)
    os.chmod(binary, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return Staged(pin, binary, actual)


def install_tool(pin: ToolPin, plat: str, dest_dir: Path, *, client: httpx.Client,
                 progress: Progress = lambda s: None, on_bytes: Bytes = _no_bytes) -> Path:
    """Download, verify and place one tool at ``dest_dir/<name>`` (mode 0755)."""
    return install_all([pin], plat, dest_dir, client=client, progress=progress, on_bytes=on_bytes)[0]


def install_all(pins: list[ToolPin], plat: str, dest_dir: Path, *, client: httpx.Client | None = None,
                progress: Progress = lambda s: None, on_bytes: Bytes = _no_bytes) -> list[Path]:
    """Install every tool, or none: all are downloaded and verified before the first one is moved into place.

    Platforms without a pinned checksum are refused up front, before anything is downloaded.
    """
    refused = [r for r in (refusal(p, plat) for p in pins) if r]
    if refused:
        raise DownloadError(" ".join(refused) + " Nothing was installed.")
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(30.0, read=300.0))
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    # The staging directory sits next to the destination, so the final renames stay on one filesystem.
    staging = Path(tempfile.mkdtemp(dir=dest_dir.parent, prefix=f".{dest_dir.name}-staging-"))
    try:
        staged = [stage_tool(p, plat, staging, client=http, progress=progress, on_bytes=on_bytes) for p in pins]
        dest_dir.mkdir(parents=True, exist_ok=True)
        placed = []
        for item in staged:
            target = dest_dir / item.pin.name
            os.replace(item.path, target)
            placed.append(target)
            progress(f"installed {target} ({item.pin.version}, sha256 {item.sha256[:12]}… verified)")
        return placed
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if own:
            http.close()


class ByteMeter:
    """Shows download progress: on a terminal one line redrawn in place, otherwise a line per 25 %.

    Long downloads (kube-apiserver is about 90 MB) must visibly move; logs must not fill with redraws.
    """

    def __init__(self, write: Callable[[str], None], *, tty: bool, interval: float = 0.2) -> None:
        self.write = write
        self.tty = tty
        self.interval = interval
        self._last = 0.0
        self._step: dict[str, int] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        """One chunk arrived."""
        size = f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB ({done * 100 // total}%)" if total else "")
        finished = total is not None and done >= total
        if self.tty:
            now = time.monotonic()
            if finished or now - self._last >= self.interval:
                self._last = now
                self.write(f"\r  {name}: {size}\033[K" + ("\n" if finished else ""))
            return
        step = done * 4 // total if total else done // 20_000_000  # quarters, or every 20 MB
        if step > self._step.get(name, 0):
            self._step[name] = step
            self.write(f"  {name}: {size}\n")


__all__ = ["ByteMeter", "DownloadError", "Staged", "install_all", "install_tool", "refusal", "stage_tool"]
