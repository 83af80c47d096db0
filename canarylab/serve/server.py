"""An aiohttp server that puts the dashboard in browser tabs, through textual-serve's process bridge.

textual-serve's own ``Server`` gives every websocket a process, but it builds absolute URLs from the bind address
(useless for ``0.0.0.0``), fetches its font from a CDN, has no access control and no limit. This server keeps
its :class:`~textual_serve.app_service.AppService` (the framing between a websocket and a Textual process running
the web driver) and its static files (xterm.js, the font), and adds:

* a token (``?token=`` once, then a ``SameSite=Strict`` cookie) that every request must carry, else 401;
* a cap on concurrent tabs, with a page that says so;
* processes that end with their tab (a process that ignores the quit message is killed after a grace period);
* shared mode: one process for every tab, drawn at the smallest tab's size; only the first tab's keys reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

log = logging.getLogger("canarylab.serve")

COOKIE = "canarylab_token"
STOP_GRACE = 5.0
"""Seconds a tab's process gets to quit after its tab closed, before it is killed."""

TabCommand = Callable[[Path], Sequence[str]]
"""Given a fresh folder of its own, the argv of one tab's dashboard process."""

_MODE = re.compile(rb"\x1b\[\?([0-9;]+)([hl])")
"""A DEC private mode set or reset (alternate screen, cursor shown, mouse reporting, bracketed paste)."""

_STATIC = Path(textual_serve.__file__).parent / "static"
_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("canarylab.serve", "templates"),
                                autoescape=jinja2.select_autoescape(["html"]))


@dataclass(frozen=True)
class ServeConfig:
    """What ``canarylab serve`` serves, where, and to whom."""

    tab_command: TabCommand
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_sessions: int = 8
    shared: bool = False
    title: str = "canarylab"
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of every tab's process."""


def shell_command(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    """The shell line textual-serve runs (it uses a shell): every part quoted, ``exec`` so the shell is replaced
    by the dashboard and a kill reaches it. Where util-linux's ``setpriv`` is, the dashboard also gets SIGTERM
    when the server dies without stopping it (SIGKILL, a crash): a tab's process does not notice its closed
    stdin, and would otherwise run on with its lab for ever."""
    prefix = ["env", *(f"{k}={v}" for k, v in (env or {}).items())] if env else []
    setpriv = shutil.which("setpriv")
    guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
    return "exec " + shlex.join([*guard, *prefix, *argv])


def _page(status: int, title: str, text: str) -> web.Response:
    html = _TEMPLATES.get_template("message.html").render(title=title, text=text)
    return web.Response(status=status, text=html, content_type="text/html")


class _Tab:
    """One dashboard process and the websockets that see it (one, or every tab in shared mode)."""

    def __init__(self, command: str, folder: Path, downloads: DownloadManager) -> None:
        self.folder = folder
        self.sockets: list[web.WebSocketResponse] = []
        self.sizes: dict[int, tuple[int, int]] = {}
        self.size: tuple[int, int] | None = None
        self.modes: dict[bytes, bytes] = {}
        """The terminal modes the process set, last one wins: a tab that joins later gets them before its repaint."""
        self.service = AppService(command, write_bytes=self._broadcast_bytes, write_str=self._broadcast_str,
                                  close=self._close_all, download_manager=downloads)
        self.started = False

    async def _broadcast_bytes(self, data: bytes) -> None:
        for found in _MODE.finditer(data):
            for mode in found.group(1).split(b";"):
                self.modes[mode] = found.group(2)
        for ws in list(self.sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(data)

    async def _broadcast_str(self, data: str) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(data)

    async def _close_all(self) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close()

    def terminal_modes(self) -> bytes:
        """The escape sequences that put a fresh terminal in the modes this process set (cursor hidden, ...)."""
        return b"".join(b"\x1b[?" + mode + state for mode, state in self.modes.items())

    def actor(self, ws: web.WebSocketResponse) -> bool:
        """Whether this tab's keys reach the process: the first tab still connected."""
        return bool(self.sockets) and self.sockets[0] is ws

    async def resize(self, ws: web.WebSocketResponse, width: int, height: int) -> None:
        """Draw at the smallest size any watching tab has, so every tab sees the whole screen."""
        self.sizes[id(ws)] = (max(width, 20), max(height, 8))
        await self.fit(force=False)

    async def fit(self, force: bool) -> None:
        if not self.sizes:
            return
        size = (min(w for w, _ in self.sizes.values()), min(h for _, h in self.sizes.values()))
        if size == self.size and force:
            # Same size: a one-row wiggle makes Textual repaint the whole screen for the tab that joined.
            await self.service.set_terminal_size(size[0], size[1] - 1)
        if size != self.size or force:
            self.size = size
            await self.service.set_terminal_size(*size)

    async def stop(self) -> None:
        """Ask the process to quit; kill it when it has not after :data:`STOP_GRACE` seconds."""
        if not self.started:
            return
        self.started = False
        process = self.service._process  # textual-serve keeps it private; a stuck process must still end
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(self.service.stop(), STOP_GRACE)
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), STOP_GRACE)
        shutil.rmtree(self.folder, ignore_errors=True)


class DashboardServer:
    """Serve the dashboard to browser tabs (see the module docstring)."""

    def __init__(self, config: ServeConfig, *, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.downloads = DownloadManager()
        self.tabs: list[_Tab] = []
        self.shared: _Tab | None = None
        self.sockets: set[web.WebSocketResponse] = set()
        self.url = ""
        self._runner: web.AppRunner | None = None

    # -------------------------------------------------------------------------------------- web app

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.add_routes([
            web.get("/", self.handle_index),
            web.get("/ws", self.handle_websocket),
            web.get("/download/{key}", self.handle_download),
            web.get("/healthz", self.handle_health),
            web.static("/static", _STATIC),
        ])
        app.on_shutdown.append(self._on_shutdown)
        return app

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        token = self.config.token
        if token is not None:
            given = request.query.get("token") or request.cookies.get(COOKIE) or ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _page(401, "Token needed",
                             "This canarylab serves only with its token: open the address that "
                             "<code>canarylab serve</code> printed, the one that ends in <code>?token=…</code>.")
        if request.path == "/ws":
            origin = request.headers.get("Origin")
            if origin is not None and origin.split("://", 1)[-1] != request.host:
                return _page(403, "Forbidden", "A page from another site may not open this dashboard.")
        response = await handler(request)
        if token is not None and request.path == "/" and request.query.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    async def handle_health(self, request: web.Request) -> web.Response:
        return web.json_response({"tabs": len(self.sockets), "processes": self.process_count()})

    def process_count(self) -> int:
        return len(self.tabs) + (1 if self.shared is not None and self.shared.started else 0)

    def _full(self) -> bool:
        return len(self.sockets) >= self.config.max_sessions

    def _full_page(self) -> web.Response:
        n = self.config.max_sessions
        return _page(503, "The room is full",
                     f"All {n} tabs this canarylab serves are open (<code>--max-sessions {n}</code>). Close a tab "
                     "and reload this page, or ask the trainer to start <code>canarylab serve</code> with a higher "
                     "<code>--max-sessions</code>.")

    async def handle_index(self, request: web.Request) -> web.Response:
        if self._full():
            return self._full_page()
        scheme = "wss" if request.secure else "ws"
        try:
            font_size = int(request.query.get("fontsize", "16"))
        except ValueError:
            font_size = 16
        html = _TEMPLATES.get_template("index.html").render(
            title=self.config.title, static_url="/static/", font_size=font_size,
            app_websocket_url=f"{scheme}://{request.host}/ws", ping_url="")
        return web.Response(text=html, content_type="text/html")

    async def handle_download(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        try:
            meta = await self.downloads.get_download_metadata(key)
        except KeyError:
            raise web.HTTPNotFound(text=f"no download {key!r}") from None
        response = web.StreamResponse()
        response.headers["Content-Type"] = meta.mime_type + (f"; charset={meta.encoding}" if meta.encoding else "")
        disposition = "inline" if meta.open_method == "browser" else "attachment"
        response.headers["Content-Disposition"] = f"{disposition}; filename={meta.file_name}"
        await response.prepare(request)
        async for chunk in self.downloads.download(key):
            await response.write(chunk)
        await response.write_eof()
        return response

    # -------------------------------------------------------------------------------------- tabs

    def _new_tab(self) -> _Tab:
        folder = Path(tempfile.mkdtemp(prefix="canarylab-tab-"))
        command = shell_command(self.config.tab_command(folder), self.config.env)
        return _Tab(command, folder, self.downloads)

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        if self._full():
            return self._full_page()
        try:
            width = int(request.query.get("width", "80"))
            height = int(request.query.get("height", "24"))
        except ValueError:
            width, height = 80, 24
        ws = web.WebSocketResponse(heartbeat=15)
        await ws.prepare(request)
        self.sockets.add(ws)
        started = time.monotonic()
        if self.config.shared:
            if self.shared is None or not self.shared.started:
                self.shared = self._new_tab()
            tab = self.shared
        else:
            tab = self._new_tab()
            self.tabs.append(tab)
        tab.sockets.append(ws)
        tab.sizes[id(ws)] = (width, height)
        try:
            if not tab.started:
                tab.started = True
                tab.size = (width, height)
                await tab.service.start(width, height)
            else:
                # A tab joining a shared screen missed the start-up escapes (alternate screen, hidden cursor,
                # mouse reporting): replay them, then have the whole screen repainted.
                if modes := tab.terminal_modes():
                    await ws.send_bytes(modes)
                await tab.fit(force=True)
            log.info("tab opened (%d open, %d processes)", len(self.sockets), self.process_count())
            await self._pump(ws, tab)
        finally:
            self.sockets.discard(ws)
            with contextlib.suppress(ValueError):
                tab.sockets.remove(ws)
            tab.sizes.pop(id(ws), None)
            process = tab.service._process
            exited = process is not None and process.returncode is not None  # the dashboard quit (q)
            if not tab.sockets and (exited or not self.config.shared):
                await tab.stop()  # in shared mode the lab outlives its tabs, until it quits
                with contextlib.suppress(ValueError):
                    self.tabs.remove(tab)
            elif tab.sockets and not exited:
                await tab.fit(force=False)
            log.info("tab closed after %.0f s (%d open, %d processes)", time.monotonic() - started,
                     len(self.sockets), self.process_count())
        return ws

    async def _pump(self, ws: web.WebSocketResponse, tab: _Tab) -> None:
        """Browser → process: keys and mouse from the acting tab, sizes from every tab, pings answered."""
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope: list[Any] = message.json()
                kind = envelope[0]
            except (ValueError, IndexError, KeyError, TypeError):
                continue
            if kind == "stdin" and tab.actor(ws):
                await tab.service.send_bytes(str(envelope[1]).encode("utf-8"))
            elif kind == "resize" and isinstance(envelope[1], dict):
                try:
                    await tab.resize(ws, int(envelope[1]["width"]), int(envelope[1]["height"]))
                except (KeyError, TypeError, ValueError):
                    continue
            elif kind == "ping":
                await ws.send_json(["pong", envelope[1]])
            elif kind == "focus" and tab.actor(ws):
                await tab.service.focus()
            elif kind == "blur" and tab.actor(ws):
                await tab.service.blur()

    async def _on_shutdown(self, app: web.Application) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close()
        tabs = [*self.tabs, *([self.shared] if self.shared else [])]
        await asyncio.gather(*(tab.stop() for tab in tabs), return_exceptions=True)

    # -------------------------------------------------------------------------------------- run

    async def start(self) -> str:
        """Bind and serve; returns the address the server listens on (``http://host:port``)."""
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        self._runner = web.AppRunner(self.make_app(), handle_signals=False, shutdown_timeout=STOP_GRACE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[attr-defined]
        port = sockets[0].getsockname()[1] if sockets else self.config.port
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        self.url = f"http://{host}:{port}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
