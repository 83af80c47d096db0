"""The engine as a pod runs it, on the real control plane: the shipped RBAC, a TokenRequest token, a CA file.

:class:`EnginePod` prepares what the kubelet would mount (``token``, ``ca.crt``, ``namespace`` in a directory
named by ``CANARYLAB_SERVICEACCOUNT_DIR``) and starts ``canarylab engine`` as a subprocess whose environment has
``KUBERNETES_SERVICE_HOST``/``_PORT`` and no kubeconfig at all. Pods of the workloads are KWOK's; metrics come from
:class:`FakePrometheus`, a real HTTP server on 127.0.0.1 answering Prometheus' query API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import yaml

from canarylab.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "base"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def render(plane: ControlPlane, namespace: str, tmp: Path) -> list[dict[str, Any]]:
    """``deploy/base`` rendered by the real kubectl's kustomize for ``namespace`` (cluster-scoped names get
    ``-<namespace>``, so tests do not share a ClusterRole)."""
    overlay = tmp / "overlay"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": namespace,
        "nameSuffix": f"-{namespace}", "resources": [os.path.relpath(DEPLOY, overlay)]}))
    out = plane.kubectl("kustomize", str(overlay)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def apply(plane: ControlPlane, docs: list[dict[str, Any]], *extra: str) -> str:
    """``kubectl apply -f -`` with the real kubectl."""
    return plane.kubectl("apply", *extra, "-f", "-", input=yaml.safe_dump_all(docs)).stdout


class FakePrometheus:
    """Prometheus' instant-query API on 127.0.0.1: ``vector(1)`` is 1, latency queries ``latency_ms``, every
    other query ``success`` (the built-in checks' request success rate)."""

    def __init__(self, success: float = 100.0, latency_ms: float = 25.0) -> None:
        self.success = success
        self.latency_ms = latency_ms
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = (parse_qs(parts.query).get("query") or [""])[0]
                fake.queries.append(query)
                value = 1.0 if query.strip() == "vector(1)" else (
                    fake.latency_ms if "latency" in query else fake.success)
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                    {"metric": {}, "value": [time.time(), str(value)]}]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def workloads(namespace: str, step: int = 20) -> list[dict[str, Any]]:
    """podinfo 3.1.0 and a Canary with the shortest steps the engine takes (10 s interval, ``step`` % up to
    60 %), no webhooks."""
    labels = {"app": "podinfo"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "podinfod", "image": "stefanprodan/podinfo:3.1.0",
                                     "ports": [{"name": "http", "containerPort": 9898}]}]}}}}
    canary = {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "progressDeadlineSeconds": 60, "service": {"port": 9898},
                 "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 60, "stepWeight": step,
                              "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99},
                                           "interval": "1m"},
                                          {"name": "request-duration", "thresholdRange": {"max": 500},
                                           "interval": "1m"}]}}}
    return [deployment, canary]


class EngineProcess:
    """A running ``canarylab engine`` with its stdout (JSON events) and stderr (lines) read in threads, each
    line stamped with ``time.monotonic()`` when it arrived."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.errors: list[tuple[float, str]] = []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, events: bool) -> None:
        for line in stream:
            now = time.monotonic()
            if events:
                try:
                    self.events.append((now, json.loads(line)))
                except ValueError:
                    self.errors.append((now, f"(stdout) {line.rstrip()}"))
            else:
                self.errors.append((now, line.rstrip("\n")))

    def messages(self) -> list[str]:
        return [e.get("message", "") for _, e in self.events if e.get("kind") == "event"]

    def stderr(self) -> str:
        return "\n".join(line for _, line in self.errors)

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``check`` until truthy; fail with the engine's output after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            if self.proc.poll() is not None and not value:
                time.sleep(0.2)  # let the readers drain
                value = check()
                if value:
                    return value
                raise AssertionError(f"the engine exited ({self.proc.returncode}) before {what}:\n{self.dump()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}:\n{self.dump()}")

    def event_at(self, text: str) -> float | None:
        """When the first event whose message contains ``text`` arrived."""
        return next((t for t, e in self.events if text in e.get("message", "")), None)

    def line_at(self, text: str) -> float | None:
        """When the first stderr line containing ``text`` arrived."""
        return next((t for t, line in self.errors if text in line), None)

    def dump(self) -> str:
        out = "--- stderr ---\n" + self.stderr() + "\n--- events ---\n" + "\n".join(self.messages())
        self.log.write_text(out)
        return out[-6000:]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for reader in self._readers:
            reader.join(5)
        self.dump()
        return self.proc.returncode


class EnginePod:
    """What the kubelet gives a pod of ``deploy/base``: a service-account directory and the environment."""

    def __init__(self, plane: ControlPlane, namespace: str, tmp: Path, account: str) -> None:
        self.plane = plane
        self.namespace = namespace
        self.tmp = tmp
        self.account = account
        self.dir = tmp / "serviceaccount"
        self.dir.mkdir(exist_ok=True)
        # TokenRequest through the real kubectl, as the kubelet asks for a projected token.
        token = plane.kubectl("create", "token", account, "-n", namespace, "--duration", "1h").stdout.strip()
        (self.dir / "token").write_text(token)
        # The CA a pod sees: the kube-root-ca.crt ConfigMap kube-controller-manager publishes in every namespace.
        ca = json.loads(plane.kubectl("get", "configmap", "kube-root-ca.crt", "-n", namespace, "-o", "json").stdout)
        (self.dir / "ca.crt").write_text(ca["data"]["ca.crt"])
        (self.dir / "namespace").write_text(namespace)
        self._started: list[EngineProcess] = []

    def env(self) -> dict[str, str]:
        server = urlsplit(self.plane.server)
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "TZ")}
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        return {**keep, "HOME": str(home), "CANARYLAB_CACHE_DIR": str(self.tmp / "cache"),
                "KUBERNETES_SERVICE_HOST": str(server.hostname), "KUBERNETES_SERVICE_PORT": str(server.port),
                "CANARYLAB_SERVICEACCOUNT_DIR": str(self.dir)}

    def start(self, *args: str, name: str = "engine") -> EngineProcess:
        argv = [sys.executable, "-m", "canarylab.cli", "engine", "--json", "-n", self.namespace, *args]
        proc = EngineProcess(argv, self.env(), self.tmp / f"{name}.log")
        self._started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self._started:
            proc.stop()


@contextmanager
def fake_prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    try:
        yield fake
    finally:
        fake.stop()


def admin_get(plane: ControlPlane, path: str) -> dict[str, Any]:
    with plane.http() as http:
        answer = http.get(path)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data


def set_image(plane: ControlPlane, namespace: str, image: str) -> None:
    plane.kubectl("-n", namespace, "set", "image", "deployment/podinfo", f"podinfod={image}")


def canary_status(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    obj = admin_get(plane, f"/apis/flagger.app/v1beta1/namespaces/{namespace}/canaries/podinfo")
    return dict(obj.get("status") or {})


def readyz(url: str) -> tuple[int, str]:
    answer = httpx.get(url, timeout=5)
    return answer.status_code, answer.text
