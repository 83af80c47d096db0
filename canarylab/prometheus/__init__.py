"""Metrics from a real Prometheus: the engine's Metrics port over httpx, and a local ``prometheus`` binary.

Loads without Textual, Rich, kr8s or sh, so the simulated lab can use it.
"""

from canarylab.prometheus.client import QUERY_TIMEOUT, PrometheusClient, collapse_whitespace, parse_result
from canarylab.prometheus.connect import LOCAL, check_url, connect
from canarylab.prometheus.local import LocalPrometheus, free_port, prometheus_available

__all__ = [
    "LOCAL",
    "QUERY_TIMEOUT",
    "LocalPrometheus",
    "PrometheusClient",
    "check_url",
    "collapse_whitespace",
    "connect",
    "free_port",
    "parse_result",
    "prometheus_available",
]
