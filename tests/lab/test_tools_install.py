"""`canarylab tools install` against a real HTTP server on 127.0.0.1 serving fake binaries."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from canarylab.cli import main
from canarylab.lab.tools import DownloadError, install_tool
from canarylab.lab.versions import ToolPin, current_platform

FAKE_KIND = b"#!/bin/sh\necho 'kind v0.29.0 go1.24.2 linux/amd64'\n"


def helm_tarball(plat: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"#!/bin/sh\necho v3.18.6+gfake\n"
        info = tarfile.TarInfo(f"{plat}/helm")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """An HTTP server on a free 127.0.0.1 port serving ``files`` by path; 404 otherwise."""
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    finally:
        httpd.shutdown()
        httpd.server_close()


def pin(base: str, sha: str) -> ToolPin:
    return ToolPin("kind", "v0.29.0", "0.20.0", f"{base}/kind/{{version}}/kind-{{os}}-{{arch}}", {"linux-amd64": sha})


def test_a_download_matching_its_checksum_is_installed_executable(server: tuple[str, dict[str, bytes]],
                                                                  tmp_path: Path) -> None:
    base, files = server
    files["/kind/v0.29.0/kind-linux-amd64"] = FAKE_KIND
    with httpx.Client() as client:
        path = install_tool(pin(base, hashlib.sha256(FAKE_KIND).hexdigest()), "linux-amd64", tmp_path / "bin",
                            client=client)
    assert path == tmp_path / "bin" / "kind"
    assert path.read_bytes() == FAKE_KIND
    assert os.access(path, os.X_OK)


def test_a_checksum_mismatch_is_refused_and_leaves_no_file(server: tuple[str, dict[str, bytes]],
                                                           tmp_path: Path) -> None:
    base, files = server
    files["/kind/v0.29.0/kind-linux-amd64"] = FAKE_KIND + b"# tampered\n"
    with httpx.Client() as client, pytest.raises(DownloadError) as refused:
        install_tool(pin(base, hashlib.sha256(FAKE_KIND).hexdigest()), "linux-amd64", tmp_path / "bin",
                     client=client)
    assert "checksum mismatch for kind v0.29.0" in str(refused.value)
    assert "nothing was installed" in str(refused.value)
    assert not (tmp_path / "bin").exists() or list((tmp_path / "bin").iterdir()) == []


def test_a_failed_download_is_a_clear_error(server: tuple[str, dict[str, bytes]], tmp_path: Path) -> None:
    base, _ = server
    with httpx.Client() as client, pytest.raises(DownloadError) as failed:
        install_tool(pin(base, "0" * 64), "linux-amd64", tmp_path / "bin", client=client)
    assert "HTTP 404" in str(failed.value)
    assert not (tmp_path / "bin" / "kind").exists()


def test_a_platform_without_a_pinned_checksum_is_refused(tmp_path: Path) -> None:
    with httpx.Client() as client, pytest.raises(DownloadError) as refused:
        install_tool(pin("http://127.0.0.1:9", "0" * 64), "darwin-arm64", tmp_path, client=client)
    assert "no pinned SHA-256 for kind v0.29.0 on darwin-arm64" in str(refused.value)


def test_tools_install_fetches_all_four_verifies_them_and_up_finds_them_first(
        server: tuple[str, dict[str, bytes]], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # given a mirror of the four tools and a versions file pinning their checksums
    base, files = server
    plat = current_platform()
    pins: dict[str, dict[str, object]] = {}
    for tool in ("kind", "kubectl", "linkerd"):
        body = f"#!/bin/sh\necho {tool}\n".encode()
        files[f"/{tool}-{plat}"] = body
        pins[tool] = {"version": "v1.0.0", "min_version": "0.1.0", "url": f"{base}/{tool}-{{os}}-{{arch}}",
                      "sha256": {plat: hashlib.sha256(body).hexdigest()}}
    archive = helm_tarball(plat)
    files[f"/helm-{plat}.tar.gz"] = archive
    pins["helm"] = {"version": "v3.18.6", "min_version": "3.12.0", "url": f"{base}/helm-{{os}}-{{arch}}.tar.gz",
                    "archive_member": "{os}-{arch}/helm", "sha256": {plat: hashlib.sha256(archive).hexdigest()}}
    versions_file = tmp_path / "versions.yaml"
    versions_file.write_text(yaml.safe_dump({"tools": pins}))
    monkeypatch.setenv("CANARYLAB_VERSIONS", str(versions_file))
    # when the user installs the tools
    assert main(["tools", "install"]) == 0
    # then all four are in the lab's bin dir, verified, and the helm binary came out of its tarball
    out = capsys.readouterr().out
    assert out.count("verified") == 4
    assert sorted(p.name for p in (cache / "bin").iterdir()) == ["helm", "kind", "kubectl", "linkerd"]
    assert (cache / "bin" / "helm").read_bytes().startswith(b"#!/bin/sh\necho v3.18.6")
    # and the runner looks there before PATH
    from canarylab.lab.runner import find_tool
    from canarylab.lab.state import bin_dir

    assert find_tool("kubectl", [bin_dir()]) == cache / "bin" / "kubectl"


def test_tools_install_with_a_bad_checksum_fails_without_traceback(
        server: tuple[str, dict[str, bytes]], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    base, files = server
    plat = current_platform()
    files[f"/kind-{plat}"] = FAKE_KIND
    versions_file = tmp_path / "versions.yaml"
    versions_file.write_text(yaml.safe_dump({"tools": {t: {
        "version": "v1", "min_version": "0.1.0", "url": f"{base}/kind-{{os}}-{{arch}}", "sha256": {plat: "ab" * 32}}
        for t in ("kind", "kubectl", "linkerd", "helm")}}))
    monkeypatch.setenv("CANARYLAB_VERSIONS", str(versions_file))
    assert main(["tools", "install"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "Traceback" not in err
    assert not (cache / "bin" / "kind").exists()
