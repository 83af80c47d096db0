"""In-cluster URLs from the host: the API server's service proxy, with credentials only for the API server."""

from __future__ import annotations

import pytest

from canarylab.engine.ports import WebhookCall
from canarylab.engine.webhooks import HttpWebhooks
from canarylab.kube.cluster import KubeCluster
from canarylab.kube.proxy import ServiceProxy, api_client
from tests.kube.apiserver import ApiServer
from tests.kube.loadtester import run_loadtester

pytestmark = pytest.mark.timeout(30)

API = "https://127.0.0.1:6443"


@pytest.mark.parametrize(("url", "expected"), [
    ("http://flagger-loadtester.test/", f"{API}/api/v1/namespaces/test/services/flagger-loadtester:80/proxy/"),
    ("http://prometheus.linkerd-viz:9090", f"{API}/api/v1/namespaces/linkerd-viz/services/prometheus:9090/proxy/"),
    ("http://prometheus.linkerd-viz:9090/api/v1/query",
     f"{API}/api/v1/namespaces/linkerd-viz/services/prometheus:9090/proxy/api/v1/query"),
    ("http://podinfo-canary.test.svc.cluster.local:9898/token?x=1",
     f"{API}/api/v1/namespaces/test/services/podinfo-canary:9898/proxy/token?x=1"),
    ("https://hooks.other.svc/notify", f"{API}/api/v1/namespaces/other/services/https:hooks:443/proxy/notify"),
    ("https://hooks.slack.com/services/T0", "https://hooks.slack.com/services/T0"),  # not in-cluster
    ("http://example.com/", "http://example.com/"),  # no namespace "com"
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ("http://flagger-loadtester/", "http://flagger-loadtester/"),  # relative to Flagger's own namespace: unknown
])
def test_in_cluster_urls_go_through_the_service_proxy(url: str, expected: str) -> None:
    proxy = ServiceProxy(API + "/", namespaces={"test", "linkerd-viz"})
    assert proxy.rewrite(url) == expected


def test_without_a_namespace_list_every_two_label_host_is_a_service() -> None:
    assert ServiceProxy(API).rewrite("http://svc.ns/") == f"{API}/api/v1/namespaces/ns/services/svc:80/proxy/"


async def test_a_webhook_reaches_the_loadtester_through_the_api_server(apiserver: ApiServer,
                                                                       kube: KubeCluster) -> None:
    # Given the loadtester stand-in behind the Service flagger-loadtester.test:80
    async with run_loadtester() as loadtester:
        apiserver.proxy_service("test", "flagger-loadtester", 80, loadtester.url)
        client = await api_client(kube.api)
        hooks = HttpWebhooks(client, rewrite_url=ServiceProxy(kube.server, {"test"}).rewrite)
        payload = {"name": "podinfo", "namespace": "test", "phase": "Progressing", "metadata": {"cmd": "hey"}}
        # when the engine calls the in-cluster URL the Canary names
        answer = await hooks.call(WebhookCall("load-test", "rollout", "http://flagger-loadtester.test/", payload))
        gate = await hooks.call(WebhookCall("gate", "confirm-promotion", "http://flagger-loadtester.test/gate/check",
                                            payload))
        loadtester.open_gates.add("podinfo.test")
        opened = await hooks.call(WebhookCall("gate", "confirm-promotion",
                                              "http://flagger-loadtester.test/gate/check", payload))
        await client.aclose()
    # then it went through the API server's service proxy, with the kubeconfig's token
    assert (answer.ok, answer.status) == (True, 202)
    assert (gate.ok, gate.status) == (False, 403)
    assert gate.error == "Forbidden"
    assert (opened.ok, opened.status, opened.body) == (True, 200, "Approved")
    assert loadtester.paths() == ["/", "/gate/check", "/gate/check"]
    assert loadtester.calls[0][1] == payload
    proxied = [r for r in apiserver.requests if r.subresource and r.subresource.startswith("proxy")]
    assert len(proxied) == 3
    assert all(r.headers.get("Authorization") == "Bearer kmock-token" for r in proxied)


async def test_credentials_never_leave_for_other_hosts(kube: KubeCluster) -> None:
    # Given the API client, when it calls a host that is not the API server (an external webhook)
    async with run_loadtester() as elsewhere:
        client = await api_client(kube.api)
        await client.post(elsewhere.url + "/", json={"metadata": {"cmd": "x"}})
        await client.aclose()
    # then the request arrives without the kubeconfig's token
    assert len(elsewhere.headers) == 1
    assert "Authorization" not in elsewhere.headers[0]
