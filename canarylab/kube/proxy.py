"""Reaching in-cluster URLs from the user's machine through the API server's service proxy.

Flagger runs inside the cluster, so a Canary names its webhooks and metrics server by cluster DNS
(``http://flagger-loadtester.test/``, ``http://prometheus.linkerd-viz:9090``). canarylab's engine runs on the
host, where those names do not resolve; the API server forwards to any Service at
``/api/v1/namespaces/NS/services/[https:]SVC:PORT/proxy/PATH`` with the kubeconfig's credentials, so
:class:`ServiceProxy` rewrites such URLs and :func:`api_client` builds an httpx client that authenticates to
the API server (and only to it: credentials are never sent to any other host). ``--in-cluster`` skips all this.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Collection

import httpx


class ServiceProxy:
    """Rewrites in-cluster service URLs to the API server's service proxy on ``server``.

    In-cluster means ``SVC.NS.svc[.cluster.local]`` always, and ``SVC.NS`` when ``NS`` is one of
    ``namespaces`` (``None``: any two-label host, for when the namespaces cannot be listed). A plain
    ``example.com`` stays as it is as long as the cluster has no namespace ``com``.
    """

    def __init__(self, server: str, namespaces: Collection[str] | None = None) -> None:
        self.server = server.rstrip("/")
        self.namespaces = None if namespaces is None else set(namespaces)

    def target(self, url: str) -> tuple[str, str, str, int, str] | None:
        """``(scheme, service, namespace, port, path)`` when ``url`` names an in-cluster Service."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            return None
        host = parsed.host.lower()
        try:
            ipaddress.ip_address(host)
            return None  # an address is reached directly (a pod IP would need a port-forward anyway)
        except ValueError:
            pass
        labels = host.split(".")
        if labels[2:] in (["svc"], ["svc", "cluster", "local"]):
            service, namespace = labels[0], labels[1]
        elif len(labels) == 2 and (self.namespaces is None or labels[1] in self.namespaces):
            service, namespace = labels
        else:
            return None
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        path = parsed.raw_path.decode() or "/"
        return parsed.scheme, service, namespace, port, path

    def rewrite(self, url: str) -> str:
        """The URL to request from the host: the service proxy for in-cluster URLs, else ``url`` itself."""
        found = self.target(url)
        if found is None:
            return url
        scheme, service, namespace, port, path = found
        prefix = "https:" if scheme == "https" else ""
        return f"{self.server}/api/v1/namespaces/{namespace}/services/{prefix}{service}:{port}/proxy{path}"


def _token_hook(server: str, token: str | None) -> Callable[[httpx.Request], Awaitable[None]]:
    """A request hook adding the bearer token to requests for the API server only.

    A hook rather than ``httpx.Auth``: callers such as the Prometheus client pass ``auth=None`` per request,
    which switches a client's own ``auth`` off. The token replaces any ``Authorization`` the caller set (a
    MetricTemplate's bearer token): the API server must see its own credentials, and does not forward them.
    """
    origin = httpx.URL(server)

    async def add_token(request: httpx.Request) -> None:
        same = (request.url.scheme, request.url.host, request.url.port) == (origin.scheme, origin.host, origin.port)
        if token and same:
            request.headers["Authorization"] = f"Bearer {token}"

    return add_token


async def api_client(api: object, *, timeout: float = 30.0) -> httpx.AsyncClient:
    """An httpx client that reaches the API server of a kr8s ``Api`` with its credentials.

    The TLS client certificate and the token go to the API server only; every other host gets a plain client.
    """
    auth = api.auth  # type: ignore[attr-defined]
    server = auth.server.rstrip("/")
    mounts: dict[str, httpx.AsyncBaseTransport] = {}
    if server.startswith("https://"):
        origin = httpx.URL(server)
        key = f"https://{origin.host}" + (f":{origin.port}" if origin.port else "")
        mounts[key] = httpx.AsyncHTTPTransport(verify=await auth.ssl_context())
    return httpx.AsyncClient(event_hooks={"request": [_token_hook(server, auth.token)]}, mounts=mounts,
                             timeout=timeout, follow_redirects=False)
