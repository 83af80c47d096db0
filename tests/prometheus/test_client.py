"""PrometheusClient against recorded Prometheus answers served by a real HTTP server on 127.0.0.1.

Given an answer Prometheus could give, when the engine asks for a metric, then it gets Flagger's reading of
it (flagger-spec 5.3): a value, "no values found", or an error whose message reads well in an event.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from canarylab.engine.ports import MetricQuery, Metrics, MetricsError, NoValuesFound
from canarylab.prometheus import QUERY_TIMEOUT, PrometheusClient, free_port
from tests.prometheus.servers import (
    ANSWERS,
    Answer,
    RecordingServer,
    recording_server,
    self_signed_cert,
    vector,
)


def metric_query(query: str = "sum(up)", **kwargs: object) -> MetricQuery:
    """A MetricQuery as the engine builds it for an inline query."""
    fields: dict[str, object] = dict(metric="custom", query=query, namespace="test", target="podinfo",
                                     interval="1m", interval_seconds=60.0)
    fields.update(kwargs)
    return MetricQuery(**fields)  # type: ignore[arg-type]


async def test_the_client_is_a_metrics_provider() -> None:
    async with PrometheusClient("http://127.0.0.1:9090") as client:
        assert isinstance(client, Metrics)
        assert client.timeout == QUERY_TIMEOUT == 5.0  # Flagger's query timeout


# ------------------------------------------------------------------------------------------ result rules
# Answers recorded from Prometheus 2.42 (tests/prometheus/record_answers.py), served as they came.


def recorded(case: str) -> Answer:
    """A recorded answer from ``answers/<case>.json``."""
    record = json.loads((ANSWERS / f"{case}.json").read_text())
    return Answer(record["status"], record["body"])


async def ask(api: RecordingServer, case: str) -> float:
    """Serve the recorded ``case`` and ask the client for the value, as the engine does."""
    api.answer = recorded(case)
    async with PrometheusClient(api.url) as client:
        return await client.query(metric_query())


async def test_a_vector_sample_is_the_value(api: RecordingServer) -> None:
    assert await ask(api, "vector") == 99.5


async def test_with_several_samples_the_last_one_wins(api: RecordingServer) -> None:
    assert await ask(api, "several") == 2.0


@pytest.mark.parametrize("case", ["empty", "nan"], ids=["no series", "NaN"])
async def test_no_series_or_nan_is_no_values_found(api: RecordingServer, case: str) -> None:
    with pytest.raises(NoValuesFound, match=r"^no values found$"):
        await ask(api, case)


async def test_a_matrix_result_is_an_error(api: RecordingServer) -> None:
    with pytest.raises(MetricsError, match=r"^query returned multiple values$"):
        await ask(api, "matrix")


async def test_a_scalar_result_is_read_too(api: RecordingServer) -> None:
    api.answer_json({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "42"]}})
    async with PrometheusClient(api.url) as client:
        assert await client.query(metric_query("scalar(up)")) == 42.0


async def test_an_infinite_value_is_a_value(api: RecordingServer) -> None:
    # histogram_quantile gives +Inf when the quantile lies in the +Inf bucket: a (failing) measurement
    api.answer_json(vector("+Inf"))
    async with PrometheusClient(api.url) as client:
        assert await client.query(metric_query()) == float("inf")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad_data_400", 'error response: Status 400 Bad Request: {"status":"error","errorType":"bad_data",'
                         '"error":"invalid parameter \\"query\\": 1:5: parse error: unclosed left parenthesis"}'),
        ("execution_422", 'error response: Status 422 Unprocessable Entity: {"status":"error","errorType":'
                          '"execution","error":"found duplicate series for the match group {} on the right '
                          'hand-side of the operation: [{b=\\"2\\"}, {b=\\"1\\"}];many-to-many matching not '
                          'allowed: matching labels must be unique on one side"}'),
        ("proxy_no_endpoints_503", 'error response: Status 503 Service Unavailable: {"kind":"Status","apiVersion":'
                                   '"v1","metadata":{},"status":"Failure","message":"no endpoints available for '
                                   'service \\"prometheus\\"","reason":"ServiceUnavailable","code":503}'),
    ],
    ids=["4xx bad query", "4xx execution", "5xx"],
)
async def test_http_errors_keep_status_and_body(api: RecordingServer, case: str, expected: str) -> None:
    with pytest.raises(MetricsError) as err:
        await ask(api, case)
    assert str(err.value) == expected


async def test_a_body_that_is_not_a_prometheus_answer_is_an_error(api: RecordingServer) -> None:
    api.answer = Answer(200, "<html>login</html>")
    async with PrometheusClient(api.url) as client:
        with pytest.raises(MetricsError, match="not a Prometheus answer"):
            await client.query(metric_query())


async def test_a_slow_prometheus_times_out_with_a_clear_reason(api: RecordingServer) -> None:
    # The default is Flagger's 5 s (checked above); a shorter one keeps this test fast.
    api.answer = Answer(200, "{}", delay=2.0)
    async with PrometheusClient(api.url, timeout=0.3) as client:
        with pytest.raises(MetricsError) as err:
            await client.query(metric_query())
    assert str(err.value) == f"Prometheus at {api.url} did not answer within 0.3s"


async def test_an_unreachable_prometheus_names_the_address_and_the_reason() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    async with PrometheusClient(address) as client:
        with pytest.raises(MetricsError) as err:
            await client.query(metric_query())
        assert str(err.value) == f"cannot reach Prometheus at {address}: Connection refused"
        assert await client.is_online(None) is False
        assert client.last_error == str(err.value)


@pytest.mark.parametrize(("address", "reason"), [
    ("prometheus:9090", "Request URL is missing an 'http://' or 'https://' protocol."),
    ("ftp://prometheus:9090", "Request URL has an unsupported protocol 'ftp://'."),
])
async def test_an_address_that_is_not_a_url_is_a_failed_query_not_a_crash(address: str, reason: str) -> None:
    # A MetricTemplate's provider.address is whatever the user wrote
    async with PrometheusClient("http://127.0.0.1:9090") as client:
        with pytest.raises(MetricsError) as err:
            await client.query(metric_query(address=address))
    assert str(err.value) == f"cannot reach Prometheus at {address}: {reason}"


async def test_is_online_asks_for_vector_1(api: RecordingServer) -> None:
    async with PrometheusClient(api.url) as client:
        api.answer_json(vector("1"))
        assert await client.is_online(None) is True
        assert api.last.query["query"] == ["vector(1)"]
        api.answer_json(vector("0"))
        assert await client.is_online(None) is False
        assert client.last_error == "vector(1) returned 0.0, not 1"


# -------------------------------------------------------------------------------------- what goes on the wire


async def test_whitespace_runs_are_collapsed_on_the_wire(api: RecordingServer) -> None:
    api.answer_json(vector("1"))
    async with PrometheusClient(api.url) as client:
        await client.query(metric_query('\n  sum(\n\trate(x{a="b  c"}[1m])\n  )  \n'))
    assert api.last.path == "/api/v1/query"
    # Flagger collapses inside label values too: the wire text is exactly its regexp replacement
    assert api.last.query == {"query": [' sum( rate(x{a="b c"}[1m]) ) ']}


async def test_the_address_path_is_kept_and_the_query_address_wins(api: RecordingServer) -> None:
    api.answer_json(vector("1"))
    async with PrometheusClient("http://127.0.0.1:1/not-used") as client:
        await client.query(metric_query(address=f"{api.url}/prometheus/"))
    assert api.last.path == "/prometheus/api/v1/query"


async def test_a_pinned_client_sends_every_query_to_its_own_address(api: RecordingServer) -> None:
    # --prometheus with the simulated lab: Canaries and templates name in-cluster addresses, one Prometheus answers
    api.answer_json(vector("1"))
    async with PrometheusClient(api.url, ignore_query_address=True) as client:
        assert await client.query(metric_query(address="http://prometheus.linkerd-viz:9090")) == 1.0
        assert await client.is_online("http://prometheus.linkerd-viz:9090")
    assert len(api.requests) == 2


async def test_headers_and_bearer_token_are_sent(api: RecordingServer) -> None:
    api.answer_json(vector("1"))
    async with PrometheusClient(api.url) as client:
        await client.query(metric_query(headers={"X-Scope-OrgID": "lab"}, bearer_token="s3cret"))
    assert api.last.headers["X-Scope-OrgID"] == "lab"
    assert api.last.headers["Authorization"] == "Bearer s3cret"


async def test_basic_auth_is_sent(api: RecordingServer) -> None:
    api.answer_json(vector("1"))
    async with PrometheusClient(api.url) as client:
        await client.query(metric_query(basic_auth=("flagger", "pa:ss")))
    assert api.last.headers["Authorization"] == "Basic " + base64.b64encode(b"flagger:pa:ss").decode()


async def test_rewrite_url_routes_in_cluster_addresses_through_a_proxy(api: RecordingServer) -> None:
    # Given the kube adapter's rewrite to the API server's service proxy, and its (authenticated) client
    def via_proxy(url: str) -> str:
        return url.replace("http://prometheus.linkerd-viz:9090",
                           f"{api.url}/api/v1/namespaces/linkerd-viz/services/prometheus:9090/proxy")

    api.answer_json(vector("7"))
    async with httpx.AsyncClient(headers={"Authorization": "Bearer kube-token"}) as kube_client:
        client = PrometheusClient("http://prometheus.linkerd-viz:9090", client=kube_client, rewrite_url=via_proxy)
        assert await client.query(metric_query()) == 7.0
        await client.aclose()
        assert not kube_client.is_closed  # the caller's client stays theirs
    assert api.last.path == "/api/v1/namespaces/linkerd-viz/services/prometheus:9090/proxy/api/v1/query"
    assert api.last.headers["Authorization"] == "Bearer kube-token"


async def test_insecure_skip_verify_accepts_a_self_signed_certificate(tmp_path: Path) -> None:
    with recording_server(tls=self_signed_cert(tmp_path)) as api:
        api.answer_json(vector("1"))
        async with PrometheusClient(api.url) as client:
            with pytest.raises(MetricsError, match=f"cannot reach Prometheus at {api.url}: .*CERTIFICATE"):
                await client.query(metric_query())
            assert await client.query(metric_query(insecure_skip_verify=True)) == 1.0
