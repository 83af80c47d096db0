"""The seed tutorial on the real API server: its manifests in a fresh namespace, a Prometheus API stand-in and
the loadtester stand-in on 127.0.0.1, and ``canarylab engine`` as a subprocess.

The real API server's service proxy only forwards to pod IPs and Kubernetes refuses loopback endpoints, so
in-cluster URLs cannot reach servers on 127.0.0.1. The seed's Canary is therefore applied with two changes a
user would make out of cluster: ``spec.metricsServer`` names the Prometheus stand-in and the webhook URLs
name the loadtester stand-in. Its interval is 10 s (Flagger's minimum) and tests lower maxWeight, so a run
takes a minute, not ten.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import re
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from canarylab.controlplane import ControlPlane
from canarylab.engine.kinds import CANARY, DEPLOYMENT, HTTP_ROUTE, TRAFFIC_SPLIT, Obj
from canarylab.kube.cluster import KubeCluster
from canarylab.lab.steps import gatewayapi_canary
from canarylab.manifests import seed_lab
from tests.kube.loadtester import Loadtester, run_loadtester

# ------------------------------------------------------------------------------------- Prometheus


@dataclass
class FakePrometheus:
    """Prometheus's query API on 127.0.0.1 answering the Linkerd checks per namespace from :attr:`values`.

    A query with ``response_latency_ms_bucket`` is request-duration (ms), else request-success-rate (%).
    """

    url: str = ""
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    def set(self, namespace: str, success: float = 100.0, duration: float = 12.0) -> None:
        """What the checks of ``namespace`` see from now on."""
        self.values[namespace] = {"success": success, "duration": duration}

    def answer(self, query: str) -> float:
        self.queries.append(query)
        found = re.search(r'namespace="([^"]+)"', query)
        values = self.values.get(found.group(1) if found else "", {"success": 100.0, "duration": 12.0})
        return values["duration"] if "response_latency_ms_bucket" in query else values["success"]


@pytest.fixture(scope="session")
def prometheus() -> Iterator[FakePrometheus]:
    """The Prometheus stand-in (real HTTP, a thread), shared by the session."""
    state = FakePrometheus()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/-/healthy" or parts.path == "/-/ready":
                body = b"Prometheus Server is Healthy.\n"
            elif parts.path == "/api/v1/query":
                query = (parse_qs(parts.query).get("query") or [""])[0]
                value = state.answer(query)
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                    {"metric": {}, "value": [0, str(value)]}]}}).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            self.path = "/api/v1/query?" + "&".join(f"query={q}" for q in form.get("query", []))
            self.do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def loadtester() -> AsyncIterator[Loadtester]:
    """The loadtester stand-in (real HTTP on 127.0.0.1, in the test's event loop)."""
    async with run_loadtester() as lt:
        yield lt


# ------------------------------------------------------------------------------------- the seed lab


def seed_in(namespace: str, *, metrics_server: str, loadtester: str, router: str = "smi",
            interval: str = "10s", spec: dict[str, Any] | None = None, **analysis: Any) -> list[Obj]:
    """The seed's objects moved to ``namespace`` (no Namespace object), the Canary pointed at the stand-ins."""
    docs: list[Obj] = []
    for obj in seed_lab():
        if obj["kind"] == "Namespace":
            continue
        obj = json.loads(json.dumps(obj).replace(".test/", f".{namespace}/").replace(".test:", f".{namespace}:"))
        obj["metadata"]["namespace"] = namespace
        if obj["kind"] == "Canary":
            if router == "gatewayapi":
                obj = gatewayapi_canary(obj)
            obj["spec"]["metricsServer"] = metrics_server
            obj["spec"]["analysis"]["interval"] = interval
            obj["spec"]["analysis"].update(analysis)
            obj["spec"].update(spec or {})
            for hook in obj["spec"]["analysis"].get("webhooks") or []:
                hook["url"] = loadtester + "/"
        docs.append(obj)
    return docs


async def kubectl(plane: ControlPlane, *args: str, input: str | None = None, check: bool = True) -> str:
    """The pinned kubectl on the lab's context, off the event loop (the stand-ins serve on it)."""
    done = await asyncio.to_thread(plane.kubectl, *args, input=input, check=check)
    return done.stdout if check else done.stdout + done.stderr


async def apply(plane: ControlPlane, docs: list[Obj]) -> str:
    """``kubectl apply --server-side`` of ``docs``, as a user applies the seed's manifests."""
    return await kubectl(plane, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))


@dataclass
class SeedLab:
    """The seed in one namespace of the real control plane: an admin client, the stand-ins, the engine."""

    plane: ControlPlane
    namespace: str
    cluster: KubeCluster
    prometheus: FakePrometheus
    loadtester: Loadtester
    tmp: Path
    engines: list[Engine] = field(default_factory=list)

    async def get(self, kind: Any, name: str) -> Obj:
        obj = await self.cluster.get(kind, self.namespace, name)
        assert obj is not None, f"{kind.kind} {self.namespace}/{name} does not exist"
        return obj

    async def phase(self) -> str:
        obj = await self.cluster.get(CANARY, self.namespace, "podinfo")
        return str(((obj or {}).get("status") or {}).get("phase", ""))

    async def weights(self) -> dict[str, int]:
        split = await self.cluster.get(TRAFFIC_SPLIT, self.namespace, "podinfo")
        if split is not None:
            return {b["service"]: int(b["weight"]) for b in split["spec"]["backends"]}
        route = await self.cluster.get(HTTP_ROUTE, self.namespace, "podinfo")
        if route is None:
            return {}
        return {b["name"]: int(b.get("weight", 1)) for b in route["spec"]["rules"][0]["backendRefs"]}

    async def image(self, name: str) -> str:
        obj = await self.get(DEPLOYMENT, name)
        return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])

    async def replicas(self, name: str) -> int:
        return int((await self.get(DEPLOYMENT, name))["spec"].get("replicas", 1))

    async def kubectl(self, *args: str, check: bool = True) -> str:
        return await kubectl(self.plane, "-n", self.namespace, *args, check=check)

    async def set_image(self, tag: str) -> None:
        """The seed tutorial's step: ``kubectl set image deployment/podinfo podinfod=...:<tag>``."""
        await self.kubectl("set", "image", "deployment/podinfo", f"podinfod=ghcr.io/stefanprodan/podinfo:{tag}")

    async def start_engine(self) -> Engine:
        engine = Engine(self.plane, self.namespace, self.tmp / f"engine-{len(self.engines)}.log")
        await engine.start()
        self.engines.append(engine)
        return engine

    async def event_messages(self) -> list[str]:
        """The messages of the Events about the Canary, oldest first (as ``kubectl describe`` lists them)."""
        events = json.loads(await self.kubectl("get", "events", "-o", "json",
                                               "--field-selector", "involvedObject.kind=Canary"))["items"]
        events.sort(key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["name"]))
        return [e["message"] for e in events]


class Engine:
    """``canarylab engine --context canarylab-kwok --namespace NS --json`` as a user runs it."""

    def __init__(self, plane: ControlPlane, namespace: str, log: Path) -> None:
        self.plane = plane
        self.namespace = namespace
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.plane.kubeconfig),
               "CANARYLAB_CACHE_DIR": str(self.log.parent / "cache")}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "canarylab.cli", "engine", "--context", self.plane.context,
            "--namespace", self.namespace, "--json", stdout=asyncio.subprocess.PIPE,
            stderr=self.log.open("ab"), env=env, start_new_session=True)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(raw))

    def messages(self) -> list[str]:
        return [line["message"] for line in self.lines if line.get("kind") == "event"]

    async def kill(self) -> None:
        """SIGKILL: the engine dies mid-whatever, as on an OOM kill or a node loss."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> int | None:
        """Ctrl-C (SIGINT), as a user stops it; the exit code."""
        return await self._end(signal.SIGINT)

    async def _end(self, sig: int) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        return proc.returncode

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def until(what: str, probe: Callable[[], Any], timeout: float = 60.0, every: float = 0.1) -> Any:
    """Await ``probe()`` until truthy; fail naming ``what`` after ``timeout`` real seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(every)


@pytest.fixture
async def seed(lab_crds: ControlPlane, kube_namespace: str, prometheus: FakePrometheus, loadtester: Loadtester,
               tmp_path: Path) -> AsyncIterator[SeedLab]:
    """A fresh namespace with the seed applied (podinfo's pods Running and Ready by KWOK), no engine yet."""
    prometheus.set(kube_namespace)
    cluster = await KubeCluster.connect(lab_crds.context, kubeconfig=str(lab_crds.kubeconfig), backoff=(0.1, 1.0))
    lab = SeedLab(lab_crds, kube_namespace, cluster, prometheus, loadtester, tmp_path)
    try:
        yield lab
    finally:
        for engine in lab.engines:
            await engine.stop()
        with contextlib.suppress(Exception):
            await cluster.api.async_close()  # type: ignore[attr-defined]
