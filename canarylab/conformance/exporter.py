"""A scripted Linkerd data plane: ``response_total`` and ``response_latency_ms_bucket`` per namespace.

Each namespace gets a :class:`MetricScript` (requests per second, error ratio, latency) for the canary and the
primary Deployment. Counters grow with wall time from the moment the namespace is registered, so a real
Prometheus scraping ``/metrics`` computes the same ``rate()`` for the Flagger run and the engine run. Both
controllers query that Prometheus with the same Linkerd queries, so they see the same values.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from canarylab.sim.metrics import LINKERD_BUCKETS_MS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class MetricScript:
    """What the canary's proxies report. ``present=False``: no series at all (a query returns no data)."""

    error_ratio: float = 0.0
    latency_ms: float = 80.0
    rps: float = 20.0
    present: bool = True


HEALTHY = MetricScript()


class ScriptedExporter:
    """``GET /metrics`` on ``127.0.0.1:<port>`` (port 0: any free one), served from a thread."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, tuple[float, tuple[str, ...], MetricScript]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="conformance-metrics", daemon=True)

    @property
    def target(self) -> str:
        """``127.0.0.1:port`` for a Prometheus scrape config."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def script(self, namespace: str, canary: MetricScript, *, targets: tuple[str, ...] = ("podinfo",)) -> None:
        """From now on, the Deployments ``targets`` in ``namespace`` report ``canary``; their primaries are healthy."""
        with self._lock:
            self._scripts[namespace] = (time.monotonic(), targets, canary)

    def forget(self, namespace: str) -> None:
        with self._lock:
            self._scripts.pop(namespace, None)

    def exposition(self) -> str:
        now = time.monotonic()
        with self._lock:
            scripts = list(self._scripts.items())
        lines = ["# TYPE response_total counter", "# TYPE response_latency_ms histogram"]
        for namespace, (since, targets, canary) in scripts:
            elapsed = now - since
            for target in targets:
                for deployment, script in ((target, canary), (f"{target}-primary", HEALTHY)):
                    if script.present:
                        lines += _series(namespace, deployment, script, elapsed)
        return "\n".join(lines) + "\n"


def _series(namespace: str, deployment: str, s: MetricScript, elapsed: float) -> list[str]:
    # Float counters, exactly linear in time: any two scrapes give the same rates, so both controllers see the
    # same success rate to the last digit (integer steps would make it wobble around the script's value).
    total = s.rps * elapsed
    failed = s.rps * s.error_ratio * elapsed
    base = f'namespace="{namespace}",deployment="{deployment}",direction="inbound",tls="true"'
    out = [
        f'response_total{{{base},classification="success",status_code="200"}} {total - failed:.6f}',
        f'response_total{{{base},classification="failure",status_code="500"}} {failed:.6f}',
    ]
    for bound in LINKERD_BUCKETS_MS:
        count = total if s.latency_ms <= bound else 0
        out.append(f'response_latency_ms_bucket{{{base},le="{bound:g}"}} {count:.6f}')
    out.append(f'response_latency_ms_bucket{{{base},le="+Inf"}} {total:.6f}')
    out.append(f"response_latency_ms_count{{{base}}} {total:.6f}")
    out.append(f"response_latency_ms_sum{{{base}}} {total * s.latency_ms:.6f}")
    return out


def _handler(exporter: ScriptedExporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exporter.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
