"""The lab's in-cluster network, reachable from the host: a small HTTP server on 127.0.0.1.

canarylab's engine runs on the host and reaches in-cluster URLs (``http://flagger-loadtester.test/``,
``http://prometheus.linkerd-viz:9090``) through the API server's service proxy
(``/api/v1/namespaces/NS/services/SVC:PORT/proxy/PATH``, see :mod:`canarylab.kube.proxy`). In the Docker-free lab
the pods behind those Services run nowhere (KWOK only marks them Ready), so the real API server cannot proxy
to them. :class:`Gateway` answers the same paths instead, on its own loopback port: a request for a Service
lands on one of its ready pods as the simulated network picks it (the loadtester's API and tasks, podinfo's
answers, recorded in the Linkerd metrics), and a Service listed in ``forwards`` (the lab's Prometheus) is
forwarded to the real server behind it. The engine is pointed at the gateway instead of the API server for
these URLs; its Kubernetes calls still go to the API server.

It runs in the data plane's event loop, so the traffic model and the loadtester are never shared across threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

import httpx

from canarylab.sim.traffic import Traffic
from canarylab.sim.webhooks import SimWebhooks
from canarylab.sim.workloads import APP_LOADTESTER, HttpAnswer, app_of_image

MAX_BODY = 1 << 20
"""Largest request body accepted (webhook payloads are a few hundred bytes)."""
READ_TIMEOUT = 10.0

_PROXY_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<svc>[^/]+)/proxy(?P<rest>/.*)?$")


@dataclass(frozen=True)
class Request:
    """One HTTP request as the gateway read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class Gateway:
    """Serves the service-proxy paths of the lab's Services on ``127.0.0.1:port`` (``0``: a free one).

    ``forwards`` maps ``(namespace, service, port)`` to the base URL of a real server (the lab's Prometheus).
    """

    def __init__(self, traffic: Traffic, webhooks: SimWebhooks, *, port: int = 0,
                 forwards: Mapping[tuple[str, str, int], str] | None = None) -> None:
        self.traffic = traffic
        self.webhooks = webhooks
        self.port = port
        self.forwards = dict(forwards or {})
        self._server: asyncio.Server | None = None
        self._client = httpx.AsyncClient(timeout=30.0)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what the engine uses in place of the API server for in-cluster URLs."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1 (an ``OSError`` names a port in use)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close the forwarding client; never raises."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
        with contextlib.suppress(Exception):
            await self._client.aclose()

    # ------------------------------------------------------------------------------ HTTP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read(reader), READ_TIMEOUT)
            if request is None:
                return
            status, content_type, body = await self.answer(request)
            head = (f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def answer(self, request: Request) -> tuple[int, str, bytes]:
        """``(status, content type, body)`` for one request."""
        path, _, query = request.target.partition("?")
        if path in ("/healthz", "/readyz"):
            return 200, "text/plain", b"ok"
        match = _PROXY_PATH.match(path)
        if match is None:
            return 404, "text/plain", (f"{path}: not a service proxy path; use "
                                       "/api/v1/namespaces/NS/services/SVC:PORT/proxy/PATH\n").encode()
        namespace, name, rest = match["ns"], match["svc"], match["rest"] or "/"
        scheme, service, port = _service_ref(name)
        if port is None:
            info = self.traffic.cluster.services.get((namespace, service))
            ports = [int(p.get("port", 0)) for p in (info.ports if info else [])]
            port = ports[0] if ports else 80
        forward = self.forwards.get((namespace, service, port))
        if forward is not None:
            return await self._forward(forward, rest, query, request)
        url = f"{scheme}://{service}.{namespace}:{port}{rest}" + (f"?{query}" if query else "")
        target = self.traffic.resolve(url)
        if isinstance(target, str):
            if target.startswith("Could not resolve"):
                return 404, "text/plain", f'services "{service}" not found in namespace "{namespace}"\n'.encode()
            return 503, "text/plain", f"{target}\n".encode()
        pod = self.traffic.pick(target)
        if pod is None:
            return 503, "text/plain", f'no endpoints available for service "{service}"\n'.encode()
        text = request.body.decode("utf-8", "replace")
        answer: HttpAnswer | str
        if pod.images and app_of_image(pod.images[0]) == APP_LOADTESTER:
            answer = await self.webhooks.loadtester(pod.namespace, pod.deployment).handle(request.method,
                                                                                         target.path, text)
        else:
            answer = self.traffic.request(request.method, url, text)
        if isinstance(answer, str):
            return 503, "text/plain", f"{answer}\n".encode()
        return answer.status, "text/plain; charset=utf-8", answer.body.encode()

    async def _forward(self, base: str, rest: str, query: str, request: Request) -> tuple[int, str, bytes]:
        url = base.rstrip("/") + rest + (f"?{query}" if query else "")
        headers = {k: v for k, v in request.headers.items() if k in ("content-type", "accept")}
        try:
            response = await self._client.request(request.method, url, content=request.body, headers=headers)
        except httpx.HTTPError as err:
            return 503, "text/plain", f"error trying to reach service: {err}\n".encode()
        return response.status_code, response.headers.get("content-type", "text/plain"), response.content


def _service_ref(name: str) -> tuple[str, str, int | None]:
    """``[https:]svc[:port]`` → ``(scheme, svc, port)``."""
    scheme = "http"
    if name.startswith(("https:", "http:")):
        scheme, _, name = name.partition(":")
    service, _, port = name.partition(":")
    return scheme, service, int(port) if port.isdigit() else None


async def _read(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("bad request line")
    method, target, _ = parts
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        key, _, value = raw.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    return Request(method.upper(), target, headers, body)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
