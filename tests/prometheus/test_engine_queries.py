"""The engine's checks through PrometheusClient: the exact text and credentials that reach Prometheus.

Given a Canary (and MetricTemplates) as users write them, when the engine runs its metric checks against a
recorded Prometheus API on 127.0.0.1, then the wire carries Flagger's queries, collapsed as Flagger does.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canarylab.engine.checks import run_metric_checks
from canarylab.engine.context import RunNotes, TickContext
from canarylab.engine.events import CheckEvaluated, EngineEvent, KubeEvent
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.spec import parse_canary
from canarylab.prometheus import PrometheusClient
from tests.doubles import FakeWebhooks, ManualClock
from tests.prometheus.servers import RecordingServer, vector

# flagger-spec 5.2 (Flagger's pkg/metrics/observers/linkerd_test.go): the text sent for default/podinfo/1m
FLAGGER_SUCCESS_RATE = (
    ' sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure", '
    'direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default", deployment=~"podinfo", '
    'direction="inbound" }[1m] ) ) * 100'
)
FLAGGER_DURATION = (
    ' histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", '
    'deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )'
)


def canary(metrics: list[dict[str, Any]], namespace: str = "default") -> dict[str, Any]:
    """A Canary for Deployment ``podinfo`` with these ``analysis.metrics``."""
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "service": {"port": 9898},
                 "analysis": {"interval": "30s", "threshold": 5, "maxWeight": 50, "stepWeight": 5,
                              "metrics": metrics}},
    }  # fmt: skip


class Checks:
    """Runs the engine's metric checks of one Canary against a Prometheus client; keeps the events."""

    def __init__(self, cluster: MemoryCluster, client: PrometheusClient) -> None:
        self.cluster = cluster
        self.client = client
        self.events: list[EngineEvent] = []

    async def run(self, obj: dict[str, Any]) -> bool:
        ctx = TickContext(cluster=self.cluster, metrics=self.client, webhooks=FakeWebhooks(), clock=ManualClock(),
                          emit=self.events.append, canary=parse_canary(obj), obj=obj, notes=RunNotes(),
                          metrics_server="http://prometheus.linkerd-viz:9090")
        return await run_metric_checks(ctx)

    def checks(self) -> list[CheckEvaluated]:
        return [e for e in self.events if isinstance(e, CheckEvaluated)]

    def warnings(self) -> list[str]:
        return [e.message for e in self.events if isinstance(e, KubeEvent) and e.type == "Warning"]


@pytest.fixture
async def checks(api: RecordingServer) -> AsyncIterator[Checks]:
    # The Canary names the in-cluster Prometheus; the kube adapter reaches it through a proxy (rewrite_url).
    def to_recorder(url: str) -> str:
        return url.replace("http://prometheus.linkerd-viz:9090", api.url)

    async with PrometheusClient("http://prometheus.linkerd-viz:9090", rewrite_url=to_recorder) as client:
        yield Checks(MemoryCluster(), client)


async def wire_text_of_builtin_checks(api: RecordingServer, checks: Checks) -> list[str]:
    """The query texts the engine's two built-in checks put on the wire for default/podinfo/1m."""
    api.answer_json(vector("12.5"))
    ok = await checks.run(canary([
        {"name": "request-success-rate", "thresholdRange": {"min": 1}, "interval": "1m"},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
    ]))
    assert ok
    assert [(c.metric, c.value) for c in checks.checks()] == [("request-success-rate", 12.5),
                                                               ("request-duration", 12.0)]
    return [text for r in api.requests for text in r.query["query"]]


async def test_builtin_linkerd_queries_are_flaggers_on_the_wire(api: RecordingServer, checks: Checks) -> None:
    sent = await wire_text_of_builtin_checks(api, checks)
    assert [text.lstrip(" ") for text in sent] == [FLAGGER_SUCCESS_RATE[1:], FLAGGER_DURATION[1:]]


async def test_builtin_linkerd_queries_are_byte_for_byte_flaggers(api: RecordingServer, checks: Checks) -> None:
    assert await wire_text_of_builtin_checks(api, checks) == [FLAGGER_SUCCESS_RATE, FLAGGER_DURATION]


async def test_a_metric_template_sends_its_rendered_query_with_the_secrets_token(
    api: RecordingServer, checks: Checks
) -> None:
    # Given a MetricTemplate with a variable, a header and a bearer token in a Secret (Flagger's provider fields)
    await checks.cluster.create({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-auth", "namespace": "default"},
        "data": {"token": base64.b64encode(b"t0ken").decode()},
    })  # fmt: skip
    await checks.cluster.create({
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "error-rate", "namespace": "default"},
        "spec": {"provider": {"type": "prometheus", "address": "http://prometheus.linkerd-viz:9090",
                              "headers": {"X-Scope-OrgID": "lab"}, "secretRef": {"name": "prom-auth"}},
                 "query": '100 - sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",\n'
                          '    classification!="failure", direction="{{ variables.direction }}"}[{{ interval }}]))'},
    })  # fmt: skip
    api.answer_json(vector("0.5"))
    # When the Canary uses it with templateVariables
    ok = await checks.run(canary([{"name": "errors", "templateRef": {"name": "error-rate"}, "interval": "2m",
                                   "templateVariables": {"direction": "inbound"}, "thresholdRange": {"max": 1}}]))
    # Then the rendered, collapsed query and the credentials reach Prometheus, and the check passes
    assert ok
    assert api.last.query["query"] == [
        '100 - sum(rate(response_total{namespace="default", deployment=~"podinfo", classification!="failure", '
        'direction="inbound"}[2m]))'
    ]
    assert api.last.headers["Authorization"] == "Bearer t0ken"
    assert api.last.headers["X-Scope-OrgID"] == "lab"


async def test_a_prometheus_error_is_a_failed_check_with_the_reason(api: RecordingServer, checks: Checks) -> None:
    api.answer_json({"status": "error", "errorType": "bad_data", "error": "unclosed left parenthesis"}, status=400)
    ok = await checks.run(canary([{"name": "request-success-rate", "thresholdRange": {"min": 99}}]))
    assert not ok
    [check] = checks.checks()
    assert (check.ok, check.value) == (False, None)
    assert check.error.startswith("error response: Status 400 Bad Request: ")
    # Flagger's Linkerd observer wraps the provider's error: "running query failed: <error>"
    assert checks.warnings() == [f"Prometheus query failed: running query failed: {check.error}"]
