"""``HttpWebhooks``: the Webhooks port over httpx, with Flagger's contract (flagger-spec 6.1).

``POST <url>`` with the JSON payload; success iff the status is at most 202. Like go-retryablehttp (which
Flagger uses): ``retries`` more attempts on connection errors and 5xx except 501, with an exponential backoff
from 1s capped at 30s; a 5xx that exhausts them becomes ``POST <url> giving up after N attempt(s)`` (the body
is lost), while a 4xx is not retried and its body becomes the error text (e.g. ``Forbidden``). Answers are
read up to :data:`~canarylab.engine.bounded.WEBHOOK_BODY_CAP`; a larger one fails the call and says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from canarylab.engine.bounded import WEBHOOK_BODY_CAP, BodyTooLarge, read_capped, text_of
from canarylab.engine.ports import WebhookCall, WebhookResponse

Sleep = Callable[[float], Awaitable[None]]


class HttpWebhooks:
    """Sends webhook calls over HTTP.

    ``rewrite_url`` maps in-cluster URLs (``http://flagger-loadtester.test/``) to reachable ones (a port-forward
    or the API server's service proxy); ``sleep`` waits between retries (``asyncio.sleep`` by default, so a
    virtual clock makes retries free); ``client`` lets a caller share or mock an ``httpx.AsyncClient``.
    """

    def __init__(self, client: httpx.AsyncClient | None = None, *,
                 rewrite_url: Callable[[str], str] | None = None, sleep: Sleep | None = None,
                 backoff_min: float = 1.0, backoff_max: float = 30.0, body_cap: int = WEBHOOK_BODY_CAP) -> None:
        self._client = client
        self.body_cap = body_cap
        self._insecure: httpx.AsyncClient | None = None
        self._own = client is None
        self.rewrite_url = rewrite_url
        self._sleep: Sleep = sleep or asyncio.sleep
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max

    def _pick(self, disable_tls: bool) -> httpx.AsyncClient:
        if disable_tls:
            if self._insecure is None:
                self._insecure = httpx.AsyncClient(verify=False)
            return self._insecure
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP clients this object created."""
        if self._own and self._client is not None:
            await self._client.aclose()
        if self._insecure is not None:
            await self._insecure.aclose()

    async def call(self, call: WebhookCall) -> WebhookResponse:
        """POST the payload; retry as Flagger does; never raises."""
        url = self.rewrite_url(call.url) if self.rewrite_url else call.url
        client = self._pick(call.disable_tls)
        attempts = max(0, call.retries) + 1
        last_error = ""
        last_status: int | None = None
        for attempt in range(attempts):
            if attempt:
                await self._sleep(min(self.backoff_max, self.backoff_min * 2 ** (attempt - 1)))
            try:
                async with client.stream("POST", url, json=dict(call.payload), timeout=call.timeout,
                                         headers={"Content-Type": "application/json"}) as resp:
                    text = text_of(await read_capped(resp, self.body_cap), resp)
            except BodyTooLarge as err:
                # Not retried: the same endpoint would send the same flood again.
                return WebhookResponse(ok=False, status=resp.status_code, error=f"POST {call.url}: {err}")
            except httpx.HTTPError as err:
                last_error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                last_status = None
                continue
            last_status = resp.status_code
            if resp.status_code <= 202:
                return WebhookResponse(ok=True, status=resp.status_code, body=text)
            if resp.status_code >= 500 and resp.status_code != 501:
                last_error = ""
                continue
            return WebhookResponse(ok=False, status=resp.status_code, body=text,
                                   error=text or f"status {resp.status_code}")
        message = f"POST {call.url} giving up after {attempts} attempt(s)"
        if last_error:
            message += f": {last_error}"
        return WebhookResponse(ok=False, status=last_status, error=message)
