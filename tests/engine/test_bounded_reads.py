"""Bounded reads (issue 14): a Prometheus or a webhook answering 50 MB is read up to a cap, the check fails
with a clear reason, and memory stays bounded. A real HTTP server on 127.0.0.1 sends the 50 MB."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canarylab.engine.bounded import PROMETHEUS_BODY_CAP, WEBHOOK_BODY_CAP
from canarylab.engine.ports import MetricsError, WebhookCall
from canarylab.engine.webhooks import HttpWebhooks
from canarylab.prometheus.client import PrometheusClient

FIFTY_MB = 50 * 1024 * 1024
CHUNK = b"x" * 65536


class _Flood(BaseHTTPRequestHandler):
    """Answers every request with 50 MB; ``/chunked`` without a Content-Length (so only streaming stops it)."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        chunked = self.path.startswith("/chunked")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(FIFTY_MB))
        self.end_headers()
        try:
            for _ in range(FIFTY_MB // len(CHUNK)):
                if chunked:
                    self.wfile.write(f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n")
                else:
                    self.wfile.write(CHUNK)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at its cap: that is the point

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flood() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flood)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def _peak(coro: object) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = await coro  # type: ignore[misc]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("path", ["", "/chunked"])
async def test_a_50_mb_prometheus_answer_fails_the_check_with_a_reason_and_bounded_memory(
        flood: str, path: str) -> None:
    async with PrometheusClient(flood + path, timeout=30) as prometheus:
        async def query() -> str:
            with pytest.raises(MetricsError) as failed:
                await prometheus.run_query("sum(rate(response_total[1m]))")
            return str(failed.value)

        message, peak = await _peak(query())
    assert "answered too much for one check" in str(message)
    assert "8 MB" in str(message) and "aggregate the query" in str(message)
    assert peak < PROMETHEUS_BODY_CAP * 2 + 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("path", ["/hook", "/chunked/hook"])
async def test_a_50_mb_webhook_answer_fails_the_webhook_once_with_a_reason_and_bounded_memory(
        flood: str, path: str) -> None:
    hooks = HttpWebhooks()
    try:
        call = WebhookCall(name="load-test", type="rollout", url=flood + path, payload={"name": "podinfo"},
                           retries=2)
        response, peak = await _peak(hooks.call(call))
    finally:
        await hooks.aclose()
    assert not response.ok  # type: ignore[attr-defined]
    assert "over the 1 MB canarylab reads" in response.error  # type: ignore[attr-defined]
    assert peak < WEBHOOK_BODY_CAP * 2 + 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


async def test_under_a_raised_cap_the_whole_answer_is_read(flood: str) -> None:
    """The cap is a parameter, not a fixed truncation: with a larger one the 50 MB arrive whole."""
    hooks = HttpWebhooks(body_cap=FIFTY_MB + 1)
    try:
        response = await hooks.call(WebhookCall(name="t", type="rollout", url=flood + "/hook", payload={}))
    finally:
        await hooks.aclose()
    assert response.ok and len(response.body or "") == FIFTY_MB
