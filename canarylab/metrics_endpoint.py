"""A small HTTP endpoint for Prometheus scrapes and probes: ``/metrics``, ``/healthz``, ``/readyz``.

It serves from a thread of its own: a listening socket inside the virtual-time event loop would make that
loop wait in real time (see :mod:`canarylab.engine.clock`), and an engine must not slow down because
something scrapes it. ``sources`` are callables returning Prometheus text; their outputs are concatenated.
``probes`` maps a path to a callable returning ``(ok, text)``: 200 when ok, else 503, as Kubernetes
probes expect.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from canarylab.errors import UserError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Source = Callable[[], str]
Probe = Callable[[], tuple[bool, str]]


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``:PORT`` (host 127.0.0.1) to a pair; a bad value is a :class:`UserError` naming ``flag``."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise UserError(f"{flag} {text!r}: expected HOST:PORT or :PORT with a port from 0 to 65535, "
                        f"for example {flag} 127.0.0.1:8080")
    return host, port


class MetricsEndpoint:
    """Serves ``GET /metrics`` and the probes on ``host:port`` until :meth:`stop`."""

    def __init__(self, host: str, port: int, sources: Sequence[Source], *,
                 probes: Mapping[str, Probe] | None = None, flag: str = "--metrics-addr") -> None:
        self.sources = list(sources)
        self.probes = dict(probes or {})
        try:
            self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError as err:
            raise UserError(
                f"{flag}: cannot listen on {host}:{port} ({err.strerror or err}); "
                "choose a free port, or 0 for any free one."
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-endpoint", daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``0``)."""
        return int(self._server.server_address[1])

    @property
    def target(self) -> str:
        """``host:port``: what a Prometheus scrape config names."""
        return f"{self.host}:{self.port}"

    def exposition(self) -> str:
        return "".join(source() for source in self.sources)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler_for(endpoint: MetricsEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/metrics", "/"):
                self._send(200, CONTENT_TYPE, endpoint.exposition().encode())
            elif path in endpoint.probes:
                ok, text = endpoint.probes[path]()
                self._send(200 if ok else 503, "text/plain; charset=utf-8", (text.rstrip("\n") + "\n").encode())
            else:
                known = ", ".join(["/metrics", *endpoint.probes])
                self._send(404, "text/plain; charset=utf-8", f"404 page not found: try {known}\n".encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every second would flood the terminal

    return Handler
