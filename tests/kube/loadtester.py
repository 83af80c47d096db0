"""A small stand-in for Flagger's loadtester on 127.0.0.1 (flagger-spec 6.2): real HTTP, gates in memory.

``/`` answers 202 (a task accepted), ``/gate/check`` 200 ``Approved`` when the gate is open else 403
``Forbidden``, ``/gate/open`` and ``/gate/close`` set it, ``/healthz`` 200. Every call is recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Loadtester:
    """What the stand-in saw and its gates; ``url`` once started."""

    url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    open_gates: set[str] = field(default_factory=set)
    headers: list[dict[str, str]] = field(default_factory=list)

    def paths(self) -> list[str]:
        """The paths called, in order."""
        return [path for path, _ in self.calls]


def _app(state: Loadtester) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = {}
        state.calls.append((request.path, payload))
        state.headers.append(dict(request.headers))
        key = f"{payload.get('name')}.{payload.get('namespace')}"
        if request.path == "/healthz":
            return web.Response(text="OK")
        if request.path == "/gate/check":
            if key in state.open_gates:
                return web.Response(text="Approved")
            return web.Response(status=403, text="Forbidden")
        if request.path == "/gate/open":
            state.open_gates.add(key)
            return web.Response(status=202, text="gate opened")
        if request.path == "/gate/close":
            state.open_gates.discard(key)
            return web.Response(status=202, text="gate closed")
        if request.method != "POST" or not payload.get("metadata"):
            return web.Response(status=400, text="metadata not found in payload")
        return web.Response(status=202, text="")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@contextlib.asynccontextmanager
async def run_loadtester() -> AsyncIterator[Loadtester]:
    """Serve the stand-in on a free 127.0.0.1 port."""
    state = Loadtester()
    runner = web.AppRunner(_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()
