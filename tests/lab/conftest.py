"""Shared fixtures for the lab installer tests: an isolated cache dir, a scripted runner, fake binaries on PATH."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from canarylab.lab.runner import RecordingRunner
from canarylab.lab.versions import Versions, load_versions

DOCKER_INFO = json.dumps({"NCPU": 8, "MemTotal": 16 * 1024**3, "ServerVersion": "27.0.3"})
KUBECTL_JSON = json.dumps({"clientVersion": {"major": "1", "minor": "33", "gitVersion": "v1.33.13"}})

# What healthy tools answer, by the text of the command line (first match wins).
HEALTHY = [
    ("docker info", 0, DOCKER_INFO),
    ("kind version", 0, "kind v0.29.0 go1.24.2 linux/amd64"),
    ("kubectl version --client -o json", 0, KUBECTL_JSON),
    ("linkerd version --client --short", 0, "edge-25.5.2"),
    ("helm version --short", 0, "v3.18.6+gb76a950"),
]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ~/.cache/canarylab (state, logs, bin)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(root))
    return root


@pytest.fixture
def versions() -> Versions:
    """The pinned versions shipped in bootstrap/."""
    return load_versions()


def fresh_lab_runner() -> RecordingRunner:
    """A machine with Docker and every tool, and no cluster yet: every check says 'not there'."""
    runner = RecordingRunner()
    for needle, code, out in HEALTHY:
        runner.when(needle, exit_code=code, stdout=out)
    runner.when("kind get clusters", stdout="")
    for check in ("get crd", "get deployment", "helm --kube-context kind-canarylab status"):
        runner.when(check, exit_code=1)
    return runner


def existing_lab_runner(name: str = "canarylab") -> RecordingRunner:
    """A machine where the lab's cluster exists and everything is installed."""
    runner = RecordingRunner()
    for needle, code, out in HEALTHY:
        runner.when(needle, exit_code=code, stdout=out)
    runner.when("kind get clusters", stdout=f"{name}\n")
    return runner


FAKE_TOOL = """#!/bin/sh
# A fake {tool}: records its arguments, answers like the real one, fails when told to.
printf '%s\\n' "{tool} $*" >> "$FAKE_LOG"
case " $* " in
  *"$FAKE_FAIL"*) if [ -n "$FAKE_FAIL" ]; then echo "{tool}: simulated failure of: $*" >&2; exit 3; fi ;;
esac
{body}
exit 0
"""

FAKE_BODIES = {
    "docker": f"""case "$1" in info) echo '{DOCKER_INFO}';; esac""",
    "kind": """case "$1" in
  version) echo "kind v0.29.0 go1.24.2 linux/amd64";;
  get) cat "$FAKE_STATE/clusters" 2>/dev/null;;
  create) echo "$4" >> "$FAKE_STATE/clusters"; echo "Creating cluster \\"$4\\" ...";;
  delete) : > "$FAKE_STATE/clusters";;
esac""",
    "kubectl": f"""case "$*" in
  *"version --client -o json"*) echo '{KUBECTL_JSON}';;
  *" get "*) exit 1;;
  *" apply -f -"*) cat > /dev/null; echo "applied from stdin";;
  *) echo "ok";;
esac""",
    "linkerd": """case "$*" in
  *"version --client --short"*) echo "edge-25.5.2";;
  *install*) echo "apiVersion: v1"; echo "kind: Namespace";;
  *) echo "√ all good";;
esac""",
    "helm": """case "$*" in
  *"version --short"*) echo "v3.18.6+gb76a950";;
  *" status "*) exit 1;;
  *) echo "deployed";;
esac""",
}


def write_fake_tools(bin_dir: Path, tools: tuple[str, ...] = ("docker", "kind", "kubectl", "linkerd", "helm")) -> None:
    """Write small shell scripts standing in for the real tools."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        path = bin_dir / tool
        path.write_text(FAKE_TOOL.format(tool=tool, body=FAKE_BODIES[tool]))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fake docker/kind/kubectl/linkerd/helm first on PATH (then only /bin and /usr/bin for sh itself);
    ``$FAKE_LOG`` collects every call."""
    bin_dir = tmp_path / "fakebin"
    write_fake_tools(bin_dir)
    state = tmp_path / "fakestate"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/bin")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setenv("FAKE_FAIL", "")
    yield bin_dir


def calls(tmp_path: Path) -> list[str]:
    """The commands the fake tools received, in order."""
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


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
