"""Metric checks: Flagger's Linkerd queries rendered exactly, MetricTemplates with variables and secrets."""

from __future__ import annotations

import base64
import re
from typing import Any

from canarylab.engine.checks import RenderError, render
from canarylab.engine.kinds import METRIC_TEMPLATE, SECRET
from canarylab.engine.ports import NoValuesFound
from tests.engine.conftest import Lab, canary

SR_COLLAPSED = (' sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure",'
                ' direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default",'
                ' deployment=~"podinfo", direction="inbound" }[1m] ) ) * 100')
DUR_COLLAPSED = (' histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default",'
                 ' deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )')


def collapse(query: str) -> str:
    """What Flagger's Prometheus client sends: every whitespace run becomes one space."""
    return re.sub(r"\s+", " ", query)


async def _analysis_queries(lab: Lab) -> list[str]:
    await lab.progressing()
    await lab.tick(2)
    return [q.query for q in lab.metrics.queries]


async def test_builtin_linkerd_queries_match_flagger_after_whitespace_collapsing() -> None:
    lab = Lab(canary(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}},
                              {"name": "request-duration", "thresholdRange": {"max": 500}}]))
    queries = await _analysis_queries(lab)
    expected = [SR_COLLAPSED.replace('"default"', '"test"'), DUR_COLLAPSED.replace('"default"', '"test"')]
    assert [collapse(q) for q in queries[:2]] == expected
    assert "\n" in queries[0]  # sent as written: the Prometheus client collapses
    q = lab.metrics.queries[0]
    assert (q.builtin, q.interval, q.address) == ("request-success-rate", "1m", "http://prometheus.linkerd-viz:9090")


def test_template_rendering_and_missing_variables() -> None:
    values = {"name": "podinfo", "namespace": "test", "target": "podinfo", "service": "podinfo", "interval": "1m"}
    text = 'rate(x{ns="{{ namespace }}",d=~"{{ target }}",dir="{{ variables.direction }}"}[{{ interval }}])'
    assert render(text, values, {"direction": "inbound"}) == 'rate(x{ns="test",d=~"podinfo",dir="inbound"}[1m])'
    try:
        render(text, values, {})
    except RenderError as err:
        assert 'no entry for key "direction"' in str(err)
    else:
        raise AssertionError("a missing variable must be a render error")


def _template(query: str, secret: bool = False) -> dict:
    provider: dict[str, Any] = {"type": "prometheus", "address": "http://prom.linkerd-viz:9090"}
    if secret:
        provider["secretRef"] = {"name": "prom-auth"}
    return METRIC_TEMPLATE.new("test", "latency", spec={"provider": provider, "query": query})


async def test_metric_template_queries_its_provider_with_credentials_and_checks_the_range() -> None:
    secret = SECRET.new("test", "prom-auth", data={"token": base64.b64encode(b"s3cret").decode()})
    metric = {"name": "latency", "templateRef": {"name": "latency"}, "thresholdRange": {"max": 300},
              "interval": "1m", "templateVariables": {"direction": "inbound"}}
    lab = Lab(canary(metrics=[metric]), extra=[secret, _template(
        'p99{d="{{ target }}",dir="{{ variables.direction }}"}[{{ interval }}]', secret=True)])
    lab.metrics.set("latency", 412.0)
    await lab.progressing()
    await lab.tick(2)
    q = lab.metrics.queries[0]
    assert q.query == 'p99{d="podinfo",dir="inbound"}[1m]'
    assert (q.address, q.bearer_token, q.provider) == ("http://prom.linkerd-viz:9090", "s3cret", "prometheus")
    assert lab.warnings()[-1] == "Halt podinfo.test advancement latency 412.00 > 300"


async def test_template_problems_fail_the_check_with_flaggers_wording() -> None:
    metric = {"name": "latency", "templateRef": {"name": "latency"}, "thresholdRange": {"max": 300}}
    lab = Lab(canary(metrics=[metric]), extra=[_template("x{y=\"{{ variables.missing }}\"}")])
    await lab.progressing()
    await lab.tick(2)
    assert lab.warnings()[-1].startswith("Metric template latency.test query render error: ")
    assert lab.status["failedChecks"] == 1
    lab.cluster.delete_now(METRIC_TEMPLATE, "test", "latency")
    await lab.tick()
    assert lab.warnings()[-1] == 'Metric template latency.test error: metrictemplate.flagger.app "latency" not found'


async def test_no_values_for_a_custom_metric() -> None:
    metric = {"name": "latency", "templateRef": {"name": "latency"}, "thresholdRange": {"max": 300}}
    lab = Lab(canary(metrics=[metric]), extra=[_template("x")])
    lab.metrics.set("latency", NoValuesFound("no values found"))
    await lab.progressing()
    await lab.tick(2)
    assert lab.warnings()[-1] == "Halt advancement no values found for custom metric: latency: no values found"


async def test_offline_provider_is_reported_at_initialization_but_does_not_block_it() -> None:
    lab = Lab()
    lab.metrics.online = False
    await lab.tick()
    assert lab.phase == "Initialized"
    assert lab.warnings() == ["Error checking metric providers: prometheus not available at "
                              "http://prometheus.linkerd-viz:9090"]
