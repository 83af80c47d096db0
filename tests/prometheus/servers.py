"""Small real HTTP servers on 127.0.0.1 for the Prometheus tests (threads, so they serve any event loop)."""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ANSWERS = Path(__file__).resolve().parent / "answers"
"""Prometheus answers recorded by ``record_answers.py`` (and one API-server proxy error)."""


@dataclass
class Answer:
    """What the fake Prometheus API answers: a status, a body, after a delay."""

    status: int = 200
    body: str = ""
    delay: float = 0.0


@dataclass
class Request:
    """One request as it arrived on the wire."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class RecordingServer:
    """An HTTP server that answers every GET with :attr:`answer` and records the requests."""

    url: str
    answer: Answer = field(default_factory=Answer)
    requests: list[Request] = field(default_factory=list)

    def answer_json(self, doc: object, status: int = 200) -> None:
        """Answer with this JSON document from now on."""
        self.answer = Answer(status, json.dumps(doc))

    @property
    def last(self) -> Request:
        """The most recent request."""
        assert self.requests, "the server received no request"
        return self.requests[-1]


def vector(*values: str, metric: dict[str, str] | None = None) -> dict[str, object]:
    """A Prometheus instant-vector answer with one sample per value (values as Prometheus writes them)."""
    result = [{"metric": metric or {}, "value": [1_700_000_000.123, v]} for v in values]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@contextmanager
def recording_server(tls: tuple[Path, Path] | None = None) -> Iterator[RecordingServer]:
    """Start a :class:`RecordingServer` on a free 127.0.0.1 port (HTTPS with ``tls=(cert, key)``)."""
    state = RecordingServer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.requests.append(Request(parts.path, parse_qs(parts.query), dict(self.headers.items())))
            answer = state.answer
            if answer.delay:
                time.sleep(answer.delay)
            body = answer.body.encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )
    return cert, key


class LinkerdExposition:
    """Linkerd-proxy metrics in Prometheus text format whose rates give known answers.

    Every counter is a fixed share of one total that grows with wall time, so any ``rate()`` ratio is exact:
    the canary ``podinfo`` in namespace ``expo`` answers 95 % of requests successfully and its P99 is 150 ms
    (98 % of requests under 100 ms, all under 200 ms: interpolation puts the 99th percentile half-way).
    ``podinfo-primary`` answers 50 % successfully, so a query that forgets to anchor the regex shows it.
    """

    namespace = "expo"
    success_rate = 95.0
    p99_ms = 150.0

    def __init__(self) -> None:
        self.started = time.monotonic()

    def render(self) -> str:
        """The exposition text at this instant."""
        k = (time.monotonic() - self.started) * 10.0 + 1.0
        lines = ["# TYPE response_total counter", "# TYPE response_latency_ms histogram"]
        shares = {"podinfo": (95, 5), "podinfo-primary": (50, 50)}
        for deployment, (ok, failed) in shares.items():
            base = f'namespace="{self.namespace}",deployment="{deployment}",direction="inbound"'
            lines.append(f'response_total{{{base},classification="success"}} {ok * k}')
            lines.append(f'response_total{{{base},classification="failure"}} {failed * k}')
            # an outbound series of the same deployment must not count (direction="inbound" in the query)
            lines.append(f'response_total{{namespace="{self.namespace}",deployment="{deployment}",'
                         f'direction="outbound",classification="failure"}} {1000 * k}')
            for le, share in (("10", 50), ("50", 90), ("100", 98), ("200", 100), ("+Inf", 100)):
                lines.append(f'response_latency_ms_bucket{{{base},le="{le}"}} {share * k}')
        return "\n".join(lines) + "\n"


@contextmanager
def exposition_server(exposition: LinkerdExposition) -> Iterator[str]:
    """Serve ``exposition`` on ``/metrics``; yields ``host:port`` for a scrape config."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition.render().encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
