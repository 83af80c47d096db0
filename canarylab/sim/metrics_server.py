"""``--metrics-port``: the simulated Linkerd metrics over real HTTP on 127.0.0.1, for a real Prometheus.

The server runs in a thread of its own: a listening socket inside the virtual-time event loop would make
that loop wait in real time (see :mod:`canarylab.engine.clock`), and the lab must not slow down because
something may scrape it.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from canarylab.errors import UserError
from canarylab.sim.metrics import LinkerdMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsServer:
    """Serves ``GET /metrics`` (Prometheus text format) from a :class:`LinkerdMetrics` on ``127.0.0.1:port``."""

    def __init__(self, store: LinkerdMetrics, port: int) -> None:
        self.store = store
        handler = _handler_for(store)
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as err:
            raise UserError(
                f"--metrics-port {port}: cannot listen on 127.0.0.1:{port} ({err.strerror or err}); "
                "choose a free port, or 0 for any free one."
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-metrics", daemon=True)

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``0``)."""
        return int(self._server.server_address[1])

    @property
    def target(self) -> str:
        """``127.0.0.1:port``: what a Prometheus scrape config names."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler_for(store: LinkerdMetrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self._send(404, "text/plain; charset=utf-8", b"404 page not found: try /metrics\n")
                return
            self._send(200, CONTENT_TYPE, store.exposition().encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every second would flood the terminal

    return Handler
