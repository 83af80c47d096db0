"""`canarylab tools install --runtime kwok`: the Docker-free lab's release binaries from a real HTTP server on
127.0.0.1 serving fixture archives, with their checksums pinned through a versions-file override."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

from canarylab.cli import main
from canarylab.lab.tools import install_tool
from canarylab.lab.versions import KWOK_TOOLS, current_platform, load_versions

Mirror = tuple[str, dict[str, bytes]]


def script(name: str, size: int = 0) -> bytes:
    """A fake binary: a shell script naming itself, padded to ``size`` bytes (a long download)."""
    body = f"#!/bin/sh\necho {name} fixture\n".encode()
    return body + b"#" * max(0, size - len(body) - 1) + b"\n"


def etcd_tarball(version: str, plat: str, etcd: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, data in ((f"etcd-{version}-{plat}/etcd", etcd), (f"etcd-{version}-{plat}/README.md", b"etcd")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mirror_versions(base: str, files: dict[str, bytes], tmp_path: Path, *, wrong: str | None = None) -> Path:
    """A versions file whose kwok_tools point at the local mirror, with the fixtures' sums pinned (or, for the
    tool named ``wrong``, a sum that does not match)."""
    plat = current_platform()
    os_name, arch = plat.split("-")
    tools: dict[str, dict[str, object]] = {}
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        body = script(name, size=3_000_000 if name == "kube-apiserver" else 0)
        files[f"/release/v1.34.12/bin/{os_name}/{arch}/{name}"] = body
        tools[name] = {"version": "v1.34.12", "min_version": "1.34.0",
                       "url": f"{base}/release/{{version}}/bin/{{os}}/{{arch}}/{name}", "sha256": {plat: sha(body)}}
    archive = etcd_tarball("v3.6.4", plat, script("etcd"))
    files[f"/etcd/v3.6.4/etcd-v3.6.4-{plat}.tar.gz"] = archive
    tools["etcd"] = {"version": "v3.6.4", "min_version": "3.5.0",
                     "url": f"{base}/etcd/{{version}}/etcd-{{version}}-{{os}}-{{arch}}.tar.gz",
                     "archive_member": "etcd-{version}-{os}-{arch}/etcd", "sha256": {plat: sha(archive)}}
    kwok = script("kwok")
    files[f"/kwok/v0.7.0/kwok-{plat}"] = kwok
    tools["kwok"] = {"version": "v0.7.0", "min_version": "0.6.0",
                     "url": f"{base}/kwok/{{version}}/kwok-{{os}}-{{arch}}", "sha256": {plat: sha(kwok)}}
    if wrong is not None:
        tools[wrong]["sha256"] = {plat: "0123456789abcdef" * 4}
    path = tmp_path / "versions.yaml"
    path.write_text(yaml.safe_dump({"tools": {}, "kwok_tools": tools}))
    return path


def test_tools_install_kwok_fetches_verifies_and_unpacks_all_six(
        server: Mirror, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # given a mirror of the six release downloads and a versions file pinning their sums
    base, files = server
    monkeypatch.setenv("CANARYLAB_VERSIONS", str(mirror_versions(base, files, tmp_path)))
    # when the user installs the Docker-free lab's binaries
    assert main(["tools", "install", "--runtime", "kwok"]) == 0
    captured = capsys.readouterr()
    # then each one is in the kwok bin dir, executable, its checksum verified
    bin_dir = cache / "kwok" / "bin"
    assert sorted(p.name for p in bin_dir.iterdir()) == sorted(KWOK_TOOLS)
    for name in KWOK_TOOLS:
        assert os.access(bin_dir / name, os.X_OK), name
        assert (bin_dir / name).read_bytes().startswith(f"#!/bin/sh\necho {name} fixture\n".encode())
    assert captured.out.count("verified") == 6
    # and etcd came out of its release tarball, alone
    assert (bin_dir / "etcd").read_bytes() == script("etcd")
    # and the long download showed its progress (not a terminal: a line per quarter)
    assert "kube-apiserver: 3.0 MB of 3.0 MB (100%)" in captured.err
    assert re.search(r"kube-apiserver: 1\.\d MB of 3\.0 MB \(5\d%\)", captured.err), captured.err
    # and nothing but the binaries was left behind (no staging directory, no partial files)
    assert sorted(p.name for p in (cache / "kwok").iterdir()) == ["bin"]
    assert "Traceback" not in captured.err


def test_a_wrong_checksum_is_refused_and_installs_nothing_at_all(
        server: Mirror, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # given a mirror where etcd's archive does not match the pinned sum (downloaded after four good ones)
    base, files = server
    monkeypatch.setenv("CANARYLAB_VERSIONS", str(mirror_versions(base, files, tmp_path, wrong="etcd")))
    # when the user installs
    code = main(["tools", "install", "--runtime", "kwok"])
    err = capsys.readouterr().err
    # then it is refused with exit code 2 and one clear paragraph naming the tool and both sums
    assert code == 2
    assert "checksum mismatch for etcd v3.6.4" in err
    archive = files[f"/etcd/v3.6.4/etcd-v3.6.4-{current_platform()}.tar.gz"]
    assert "expected sha256 0123456789abcdef" in err and f"got {sha(archive)}" in err
    assert "nothing was installed" in err and "Traceback" not in err
    # and nothing was installed, not even the four binaries that were fine
    assert not (cache / "kwok" / "bin").exists()
    assert list((cache / "kwok").iterdir()) == []


def test_a_missing_download_is_a_clear_error_exit_2(
        server: Mirror, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    base, files = server
    path = mirror_versions(base, files, tmp_path)
    files.pop(f"/kwok/v0.7.0/kwok-{current_platform()}")
    monkeypatch.setenv("CANARYLAB_VERSIONS", str(path))
    assert main(["tools", "install", "--runtime", "kwok"]) == 2
    err = capsys.readouterr().err
    assert "downloading kwok v0.7.0" in err and "HTTP 404" in err and "nothing was installed" in err
    assert not (cache / "kwok" / "bin").exists()


def test_etcd_for_macos_comes_out_of_its_zip(server: Mirror, tmp_path: Path) -> None:
    # etcd ships .zip files for macOS: the url_overrides entry for the platform names one
    base, files = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("etcd-v3.6.4-darwin-arm64/etcd", script("etcd"))
    files["/etcd-v3.6.4-darwin-arm64.zip"] = buf.getvalue()
    text = yaml.safe_dump({"kwok_tools": {"etcd": {
        "version": "v3.6.4", "min_version": "3.5.0", "url": f"{base}/etcd-{{version}}-{{os}}-{{arch}}.tar.gz",
        "url_overrides": {"darwin-arm64": f"{base}/etcd-{{version}}-darwin-arm64.zip"},
        "archive_member": "etcd-{version}-{os}-{arch}/etcd", "sha256": {"darwin-arm64": sha(buf.getvalue())}}}})
    pin = load_versions(text).kwok_tools["etcd"]
    with httpx.Client() as client:
        path = install_tool(pin, "darwin-arm64", tmp_path / "bin", client=client)
    assert path.read_bytes() == script("etcd") and os.access(path, os.X_OK)


def test_the_shipped_pins_refuse_unpinned_binaries_before_downloading_anything(
        cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The shipped versions file pins only the sums that could be read from a public source; every other
    # binary is refused up front, with the reason and what to do instead (no network is touched).
    monkeypatch.delenv("CANARYLAB_VERSIONS", raising=False)
    monkeypatch.setattr("canarylab.cli.lab.current_platform", lambda: "darwin-arm64")
    assert main(["tools", "install", "--runtime", "kwok"]) == 2
    err = capsys.readouterr().err
    assert "no pinned SHA-256 for kube-apiserver v1.34.12 on darwin-arm64" in err
    assert "Kubernetes publishes no kube-apiserver" in err and "substrate/build" in err
    assert "Nothing was installed." in err and "Traceback" not in err
    assert not (cache / "kwok").exists()


def test_the_shipped_pins_are_well_formed() -> None:
    pins = load_versions().kwok_tools
    assert set(pins) == set(KWOK_TOOLS)
    for pin in pins.values():
        for plat, value in pin.sha256.items():
            assert len(value) == 64 and int(value, 16) >= 0, (pin.name, plat)
        for plat in ("linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"):
            # every platform has a checksum or says why not
            assert pin.sha256.get(plat) or pin.missing.get(plat), (pin.name, plat)
    assert pins["kube-apiserver"].url_for("linux-arm64") == \
        "https://dl.k8s.io/release/v1.34.12/bin/linux/arm64/kube-apiserver"
    assert pins["etcd"].url_for("darwin-amd64").endswith("/v3.6.4/etcd-v3.6.4-darwin-amd64.zip")
    assert pins["etcd"].member_for("linux-amd64") == "etcd-v3.6.4-linux-amd64/etcd"
