"""``canarylab tools install``: download the pinned kind, kubectl, linkerd and helm into the lab's ``bin`` directory.

Every download is checked against the SHA-256 pinned in ``bootstrap/versions.yaml`` before it is moved into
place, so a failed download or a checksum mismatch never leaves a half-written tool behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from canarylab.errors import UserError
from canarylab.lab.versions import ToolPin

Progress = Callable[[str], None]


class DownloadError(UserError):
    """A tool could not be downloaded or did not match its pinned checksum."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _fetch(url: str, client: httpx.Client) -> bytes:
    try:
        with client.stream("GET", url, follow_redirects=True) as response:
            if response.status_code != 200:
                raise DownloadError(f"downloading {url} failed: HTTP {response.status_code}. Check the URL in "
                                    "bootstrap/versions.yaml and your internet connection; nothing was installed.")
            return b"".join(response.iter_bytes())
    except httpx.HTTPError as err:
        raise DownloadError(f"downloading {url} failed: {err}. Check your internet connection; nothing was "
                            "installed.") from None


def _extract(archive: bytes, member: str, url: str) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            extracted = tar.extractfile(member)
            if extracted is None:
                raise KeyError(member)
            return extracted.read()
    except (KeyError, tarfile.TarError) as err:
        raise DownloadError(f"{url} does not contain {member} ({err}); the archive_member in "
                            "bootstrap/versions.yaml may be wrong. Nothing was installed.") from None


def install_tool(pin: ToolPin, plat: str, dest_dir: Path, *, client: httpx.Client,
                 progress: Progress = lambda s: None) -> Path:
    """Download ``pin`` for ``plat``, verify its SHA-256, and place it at ``dest_dir/<name>`` (mode 0755)."""
    expected = pin.sha256.get(plat)
    if not expected:
        known = ", ".join(sorted(pin.sha256)) or "none"
        raise DownloadError(f"no pinned SHA-256 for {pin.name} {pin.version} on {plat} (pinned for: {known}); "
                            f"canarylab does not install unverified binaries. Install {pin.name} yourself (it must be "
                            f"at least {pin.min_version}) or add the checksum to bootstrap/versions.yaml.")
    url = pin.url_for(plat)
    progress(f"downloading {pin.name} {pin.version} from {url}")
    payload = _fetch(url, client)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected.lower():
        raise DownloadError(f"checksum mismatch for {pin.name} {pin.version} ({url}): expected sha256 {expected}, "
                            f"got {actual}. The file was discarded; nothing was installed.")
    member = pin.member_for(plat)
    binary = _extract(payload, member, url) if member else payload
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / pin.name
    # Write next to the target and rename: the tool appears whole or not at all.
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{pin.name}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(binary)
        os.chmod(tmp, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    progress(f"installed {target} (sha256 {actual[:12]}… verified)")
    return target


def install_all(pins: list[ToolPin], plat: str, dest_dir: Path, *, client: httpx.Client | None = None,
                progress: Progress = lambda s: None) -> list[Path]:
    """Install every tool; the first failure stops with a clear error (tools already installed stay)."""
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(30.0, read=300.0))
    try:
        return [install_tool(pin, plat, dest_dir, client=http, progress=progress) for pin in pins]
    finally:
        if own:
            http.close()
