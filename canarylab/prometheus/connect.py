"""``--prometheus URL|local``: the Metrics provider a simulated lab uses instead of its built-in evaluator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from canarylab.engine.ports import Metrics
from canarylab.errors import UserError
from canarylab.prometheus.client import PrometheusClient
from canarylab.prometheus.local import LocalPrometheus

LOCAL = "local"
"""The ``--prometheus`` value that starts the ``prometheus`` binary on PATH."""


def check_url(spec: str) -> str:
    """A Prometheus base URL ``http(s)://host[:port][/path]``; a UserError naming the value otherwise."""
    hint = f"--prometheus: expected 'local' or a URL like http://127.0.0.1:9090, got {spec!r}"
    try:
        parts = urlsplit(spec)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        raise UserError(hint) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(hint)
    if parts.query or parts.fragment:
        raise UserError(f"{hint}: give the server's base URL, without '?' or '#' (the API path is added)")
    return spec.rstrip("/")


@asynccontextmanager
async def connect(spec: str, scrape_target: str | None) -> AsyncIterator[Metrics]:
    """The Metrics provider for ``--prometheus spec``.

    ``spec == "local"`` starts :class:`LocalPrometheus` scraping ``scrape_target`` (``host:port`` of the
    simulated lab's metrics endpoint) and stops it on exit; any other value must be a Prometheus URL. Every
    query goes to that Prometheus, whatever address the Canary or a MetricTemplate names (in the simulated lab
    they name in-cluster addresses such as ``http://prometheus.linkerd-viz:9090``).
    """
    if spec == LOCAL:
        if not scrape_target:
            raise UserError("--prometheus local needs the simulated lab's metrics endpoint (--metrics-port) to scrape")
        async with (
            LocalPrometheus([scrape_target]) as prom,
            PrometheusClient(prom.url, ignore_query_address=True) as client,
        ):
            yield client
    else:
        async with PrometheusClient(check_url(spec), ignore_query_address=True) as client:
            yield client
