"""The Webhooks port of the simulated lab.

URLs whose host is a simulated Service (``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local``, port
optional) reach the app behind it: the Flagger loadtester (gates, rollback, tasks) or podinfo.
``127.0.0.1``/``localhost`` URLs go to a real HTTP server through the engine's ``HttpWebhooks``. Anything
else fails with a message that says why. Retries and timeouts follow Flagger's client (flagger-spec 6.1):
5xx (except 501) and connection errors are retried with exponential backoff from 1 s, and exhausted
retries on a 5xx lose the body (``POST <url> giving up after N attempt(s)``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from canarylab.engine.ports import Clock, WebhookCall, WebhookResponse, Webhooks
from canarylab.sim.loadtester import Loadtester
from canarylab.sim.traffic import Traffic
from canarylab.sim.workloads import APP_LOADTESTER, APP_PODINFO, HttpAnswer, app_of_image, podinfo_answer

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class _BoundNetwork:
    """The lab's network as seen from one namespace (short Service names resolve there)."""

    def __init__(self, traffic: Traffic, namespace: str) -> None:
        self.traffic = traffic
        self.namespace = namespace

    def request(self, method: str, url: str, body: str) -> HttpAnswer | str:
        return self.traffic.request(method, url, body, self.namespace)

    def start_load(self, key: str, url: str, rps: float, duration: float,
                   headers: tuple[tuple[str, str], ...] = ()) -> str | None:
        return self.traffic.start_load(key, url, rps, duration, headers, self.namespace)

    def now(self) -> float:
        return self.traffic.now()


class SimWebhooks:
    """Delivers Flagger's webhook calls inside the simulated lab (and to real local servers)."""

    def __init__(self, traffic: Traffic, clock: Clock, real: Webhooks | None = None) -> None:
        self.traffic = traffic
        self.clock = clock
        self._real = real
        self.loadtesters: dict[tuple[str, str], Loadtester] = {}

    def loadtester(self, namespace: str, deployment: str) -> Loadtester:
        """The state of the loadtester run by one Deployment (created on first use)."""
        key = (namespace, deployment)
        if key not in self.loadtesters:
            self.loadtesters[key] = Loadtester(_BoundNetwork(self.traffic, namespace), self.clock.sleep)
        return self.loadtesters[key]

    def set_gate(self, name: str, namespace: str, open: bool) -> None:
        """Open or close the gate of one canary on every loadtester of the lab (``/gate/open``, ``/gate/close``)."""
        for namespace_, deployment in self._loadtester_deployments():
            self.loadtester(namespace_, deployment).set_gate(name, namespace, open)

    def _loadtester_deployments(self) -> list[tuple[str, str]]:
        found = set(self.loadtesters)
        for key, pods in self.traffic.cluster.pods.items():
            if any(p.images and app_of_image(p.images[0]) == APP_LOADTESTER for p in pods.values()):
                found.add(key)
        return sorted(found)

    async def call(self, call: WebhookCall) -> WebhookResponse:
        """One webhook call, with Flagger's retries and timeout."""
        host = (urlsplit(call.url).hostname or "").lower()
        if host in LOCAL_HOSTS:
            return await self._real_webhooks().call(call)
        attempts = max(0, call.retries) + 1
        answer: HttpAnswer | str = ""
        for attempt in range(1, attempts + 1):
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that lands in the
                # same loop iteration as the answer, and the engine's loop then never ends.
                async with asyncio.timeout(self._loop_seconds(call.timeout)):
                    answer = await self._once(call)
            except TimeoutError:
                answer = (f'Post "{call.url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
                          "headers)")
            retry = isinstance(answer, str) or (answer.status >= 500 and answer.status != 501)
            if not retry:
                break
            if attempt < attempts:
                await self.clock.sleep(min(30.0, 2.0 ** (attempt - 1)))
        else:
            if isinstance(answer, str):
                return WebhookResponse(ok=False, status=None, error=f"POST {call.url} giving up after "
                                                                    f"{attempts} attempt(s): {answer}")
            return WebhookResponse(ok=False, status=answer.status, body=answer.body,
                                   error=f"POST {call.url} giving up after {attempts} attempt(s)")
        assert isinstance(answer, HttpAnswer)
        if answer.status <= 202:
            return WebhookResponse(ok=True, status=answer.status, body=answer.body)
        return WebhookResponse(ok=False, status=answer.status, body=answer.body, error=answer.body.strip())

    async def _once(self, call: WebhookCall) -> HttpAnswer | str:
        target = self.traffic.resolve(call.url)
        if isinstance(target, str):
            host = urlsplit(call.url).hostname or call.url
            if target.startswith("Could not resolve"):
                return (f'Post "{call.url}": dial tcp: lookup {host}: no such host (the simulated lab resolves '
                        "Services as svc.ns, svc.ns.svc or svc.ns.svc.cluster.local, and sends 127.0.0.1/"
                        "localhost URLs to real servers)")
            return f'Post "{call.url}": dial tcp: {target}'
        pod = self.traffic.pick(target)
        if pod is None:
            return (f'Post "{call.url}": dial tcp {target.service}.{target.namespace}:{target.port}: connect: '
                    "connection refused (no ready pods behind the Service)")
        body = json.dumps(dict(call.payload), default=_json_default)
        image = pod.images[0] if pod.images else ""
        app = app_of_image(image)
        if app == APP_LOADTESTER:
            return await self.loadtester(pod.namespace, pod.deployment).handle("POST", target.path, body)
        if app == APP_PODINFO:
            return podinfo_answer("POST", target.path, body, pod=pod.name, image=image, failed=False)
        return HttpAnswer(200, "OK")

    def _loop_seconds(self, lab_seconds: float) -> float:
        speed = float(getattr(self.clock, "speed", 1.0) or 1.0)
        return max(0.001, lab_seconds) / speed

    def _real_webhooks(self) -> Webhooks:
        if self._real is None:
            from canarylab.engine.webhooks import HttpWebhooks

            self._real = HttpWebhooks(sleep=self.clock.sleep)
        return self._real

    async def aclose(self) -> None:
        """Close the HTTP client used for real local webhooks, if one was made."""
        close = getattr(self._real, "aclose", None)
        if close is not None:
            await close()


def _json_default(value: Any) -> Any:
    return str(value)
