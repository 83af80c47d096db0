"""``canarylab engine``: the engine headless on a real cluster, for CI and terminals.

Events go to stdout, as text (``<time> <type> <name>.<ns> <message>``) or with ``--json`` as one JSON object
per line, the same shape ``canarylab simulate --json`` prints. Every write the engine makes and every
connection notice goes to stderr, one line each. It runs until Ctrl-C; an unreachable API server is retried
with backoff and reported, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from canarylab import __version__
from canarylab.cli.output import alert_json, alert_text
from canarylab.engine.events import AlertPosted, EngineEvent, EngineNotice, KubeEvent
from canarylab.engine.flagger_metrics import FlaggerMetrics
from canarylab.engine.ports import ClusterError
from canarylab.errors import UserError
from canarylab.kube.lab import DEFAULT_METRICS_SERVER, KubeLab
from canarylab.metrics_endpoint import MetricsEndpoint, parse_address


def stamp(seconds: float) -> str:
    """``2026-01-02T03:04:05Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_json(event: KubeEvent, start: float) -> dict[str, Any]:
    """A Kubernetes Event the engine recorded, as ``canarylab simulate --json`` prints it (``time``: seconds
    since the engine started)."""
    return {"kind": "event", "time": round(event.time - start, 3), "type": event.type, "reason": event.reason,
            "namespace": event.namespace, "name": event.name, "message": event.message}


def event_text(event: KubeEvent) -> str:
    """``<time> <type> <name>.<ns> <message>``."""
    return f"{stamp(event.time)} {event.type} {event.key} {event.message}"


def printer(json_lines: bool, out: TextIO, start: float) -> Callable[[EngineEvent], None]:
    """An engine subscriber printing Kubernetes Events (and engine notices) as they happen."""

    def sink(event: EngineEvent) -> None:
        if isinstance(event, KubeEvent):
            line = json.dumps(event_json(event, start)) if json_lines else event_text(event)
        elif isinstance(event, AlertPosted):
            line = json.dumps(alert_json(event, round(event.time - start, 3))) if json_lines \
                else f"{stamp(event.time)} {alert_text(event)}"
        elif isinstance(event, EngineNotice):
            line = json.dumps({"kind": "notice", "time": round(event.time - start, 3), "level": event.level,
                               "namespace": event.namespace, "name": event.name, "message": event.message}) \
                if json_lines else f"{stamp(event.time)} {event.level} {event.key} {event.message}"
        else:
            return
        print(line, file=out, flush=True)

    return sink


def log_line(err: TextIO) -> Callable[[str], None]:
    """Writes and connection notices: ``<time> <line>`` on stderr."""

    def write(line: str) -> None:
        print(f"{stamp(time.time())} {line}", file=err, flush=True)

    return write


class Probes:
    """``/healthz`` and ``/readyz`` for ``--metrics-addr``: alive while the engine task runs; ready once it is
    connected and watching."""

    def __init__(self, lab: KubeLab) -> None:
        self.lab = lab
        self.started = False

    def healthz(self) -> tuple[bool, str]:
        failed = self.lab.failed_task()
        return (failed is None, "OK" if failed is None else f"the engine stopped: {failed}")

    def readyz(self) -> tuple[bool, str]:
        if not self.started:
            return False, "connecting to the API server"
        return self.healthz()


async def serve(lab: KubeLab, json_lines: bool, out: TextIO, endpoint: MetricsEndpoint | None = None,
                probes: Probes | None = None) -> None:
    """Start the lab, print events until cancelled, stop the lab."""
    await lab.connect()
    await lab.start()
    unsubscribe = lab.engine.subscribe(printer(json_lines, out, lab.clock.now()))
    if endpoint is not None:
        recorder = FlaggerMetrics(lab.engine.facts, version=__version__, mesh_provider="linkerd")
        lab.engine.subscribe(recorder.record)
        endpoint.sources.append(recorder.exposition)
    if probes is not None:
        probes.started = True
    try:
        await lab.join()  # the engine runs until cancelled (Ctrl-C)
    finally:
        unsubscribe()
        await lab.stop()


def _metrics_server(url: str) -> str:
    """``--metrics-server``: an http(s) URL, or one paragraph saying what is wrong (exit 2)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--metrics-server {url!r} is not an http(s) URL; give the Prometheus address as "
                        "Flagger's -metrics-server takes it, e.g. http://prometheus.linkerd-viz:9090 or "
                        "http://127.0.0.1:9090")
    return url.rstrip("/")


def run(args: argparse.Namespace) -> int:
    """``canarylab engine --context CTX [--namespace NS]... [--readonly] [--json] [--in-cluster]
    [--metrics-addr HOST:PORT] [--metrics-server URL]``."""
    metrics_server = _metrics_server(args.metrics_server) if args.metrics_server else DEFAULT_METRICS_SERVER
    lab = KubeLab(args.context, args.namespaces, readonly=args.readonly, in_cluster=args.in_cluster, wait=True,
                  log=log_line(sys.stderr), metrics_server=metrics_server)
    endpoint = probes = None
    if args.metrics_addr is not None:
        host, port = parse_address(args.metrics_addr, "--metrics-addr")
        probes = Probes(lab)
        endpoint = MetricsEndpoint(host, port, [], probes={"/healthz": probes.healthz, "/readyz": probes.readyz})
        endpoint.start()
        log_line(sys.stderr)(f"serving Flagger's metrics on http://{endpoint.target}/metrics "
                             "(and /healthz, /readyz)")
    try:
        asyncio.run(serve(lab, args.json, sys.stdout, endpoint, probes))
    except ClusterError as err:
        raise UserError(f"the engine stopped: {err}") from None
    finally:
        if endpoint is not None:
            endpoint.stop()
    return 0
