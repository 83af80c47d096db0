"""The Metrics port over Prometheus's HTTP API, as Flagger's Prometheus provider speaks it (flagger-spec 5.3).

Every query is an instant query ``GET <address>/api/v1/query?query=...`` with each whitespace run collapsed to
one space, a 5 s timeout, optional headers, a bearer token or basic auth. The answer becomes a float, or
:class:`NoValuesFound` (no series, NaN), or :class:`MetricsError` whose message reads well after the engine's
``Prometheus query failed: `` prefix.
"""

from __future__ import annotations

import json
import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from canarylab.engine.bounded import PROMETHEUS_BODY_CAP, BodyTooLarge, read_capped, text_of
from canarylab.engine.ports import MetricQuery, MetricsError, NoValuesFound

QUERY_TIMEOUT = 5.0
"""Seconds before a query gives up, as Flagger's provider (flagger-spec 10)."""

_BODY_LIMIT = 500  # characters of an error body kept in the message: enough for Prometheus's JSON error

# Go's regexp ``\s`` is ASCII whitespace only; Python's would also eat Unicode spaces inside label values.
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")


def collapse_whitespace(query: str) -> str:
    """The query text Flagger puts on the wire: every whitespace run becomes one space (ends included)."""
    return _WHITESPACE.sub(" ", query)


def _api_url(address: str) -> str:
    """``<address>/api/v1/query`` keeping the address's own path (e.g. a service-proxy prefix)."""
    return address.rstrip("/") + "/api/v1/query"


class PrometheusClient:
    """Answers metric queries from a Prometheus server; implements the engine's ``Metrics`` port.

    ``address`` is the default server (``MetricQuery.address`` overrides it per query, as a MetricTemplate's
    ``provider.address`` does). ``client`` is an httpx client to use instead of our own (e.g. one that
    authenticates to the Kubernetes API server); it is not closed by :meth:`aclose`. ``rewrite_url`` maps the
    full request URL (``<address>/api/v1/query``, no query string) to the one to request, so in-cluster
    addresses can go through the API server's service proxy. ``timeout`` is per query, Flagger's 5 s by default.
    ``ignore_query_address=True`` sends every query to ``address`` whatever the Canary or MetricTemplate names
    (``--prometheus`` with the simulated lab: one Prometheus answers every check).
    """

    def __init__(
        self,
        address: str,
        *,
        client: httpx.AsyncClient | None = None,
        rewrite_url: Callable[[str], str] | None = None,
        timeout: float = QUERY_TIMEOUT,
        ignore_query_address: bool = False,
        body_cap: int = PROMETHEUS_BODY_CAP,
    ) -> None:
        self.address = address
        self.body_cap = body_cap
        self.timeout = timeout
        self.ignore_query_address = ignore_query_address
        self._given_client = client
        self._rewrite_url = rewrite_url
        self._own_clients: dict[bool, httpx.AsyncClient] = {}  # keyed by "verify TLS"
        self.last_error: str | None = None
        """Why the last :meth:`is_online` check said ``False`` (``None`` when it said ``True``)."""

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP clients this object created (never the one it was given)."""
        clients, self._own_clients = list(self._own_clients.values()), {}
        for client in clients:
            await client.aclose()

    def _client(self, verify: bool) -> httpx.AsyncClient:
        if self._given_client is not None:
            return self._given_client
        if verify not in self._own_clients:
            self._own_clients[verify] = httpx.AsyncClient(verify=verify, timeout=self.timeout)
        return self._own_clients[verify]

    async def query(self, q: MetricQuery) -> float:
        """The value of ``q.query`` now; raises :class:`NoValuesFound` or :class:`MetricsError`."""
        auth: httpx.Auth | None = None
        headers = dict(q.headers)
        if q.bearer_token:
            headers["Authorization"] = f"Bearer {q.bearer_token}"
        elif q.basic_auth is not None:
            auth = httpx.BasicAuth(*q.basic_auth)
        return await self.run_query(
            q.query, address=q.address, headers=headers, auth=auth, verify=not q.insecure_skip_verify
        )

    async def is_online(self, address: str | None) -> bool:
        """Flagger's check: ``vector(1)`` must return 1. Never raises; see :attr:`last_error` for why not."""
        try:
            value = await self.run_query("vector(1)", address=address)
        except (MetricsError, NoValuesFound) as err:
            self.last_error = str(err)
            return False
        if value != 1:
            self.last_error = f"vector(1) returned {value}, not 1"
            return False
        self.last_error = None
        return True

    async def run_query(
        self,
        query: str,
        *,
        address: str | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        verify: bool = True,
    ) -> float:
        """One instant query (whitespace collapsed) against ``address`` or the default; parsed as Flagger does."""
        base = self.address if self.ignore_query_address or not address else address
        url = _api_url(base)
        if self._rewrite_url is not None:
            url = self._rewrite_url(url)
        text = collapse_whitespace(query)
        try:
            async with self._client(verify).stream(
                "GET", url, params={"query": text}, headers=headers, auth=auth, timeout=self.timeout
            ) as response:
                body = text_of(await read_capped(response, self.body_cap), response)
        except BodyTooLarge as err:
            raise MetricsError(f"Prometheus at {base} answered too much for one check: {err}. A canary check "
                               "returns one value: aggregate the query (sum, rate) to a single series") from None
        except httpx.TimeoutException:
            raise MetricsError(f"Prometheus at {base} did not answer within {self.timeout:g}s") from None
        except httpx.HTTPError as err:
            raise MetricsError(f"cannot reach Prometheus at {base}: {_reason(err)}") from None
        except (httpx.InvalidURL, ValueError) as err:  # e.g. a MetricTemplate address httpx cannot parse
            raise MetricsError(f"bad Prometheus address {base!r}: {err}") from None
        if response.status_code >= 400:
            body = body.strip()
            if len(body) > _BODY_LIMIT:
                body = body[:_BODY_LIMIT] + "…"
            raise MetricsError(f"error response: Status {response.status_code} {response.reason_phrase}: {body}")
        return parse_result(body)


def _reason(err: httpx.HTTPError) -> str:
    """The innermost OS reason (``Connection refused``, ``Name or service not known``), else httpx's text."""
    reason = str(err).strip() or type(err).__name__
    cause: BaseException | None = err
    for _ in range(10):  # bounded: exception chains are short, but never trust a cycle
        cause = cause.__cause__ or cause.__context__ if cause is not None else None
        if cause is None:
            break
        if isinstance(cause, ssl.SSLError):  # its errno is OpenSSL's, not the OS's: keep its own words
            return str(cause)
        if isinstance(cause, OSError) and cause.errno is not None:
            reason = os.strerror(cause.errno) if cause.errno > 0 else str(cause.strerror or cause)
    return reason


def parse_result(body: str) -> float:
    """A ``/api/v1/query`` answer as Flagger reads it (flagger-spec 5.3).

    Vector: the last sample wins; no sample or NaN is :class:`NoValuesFound`. A matrix is an error (``query
    returned multiple values``). A scalar (e.g. ``scalar(...)``) is accepted, which Flagger does not.
    """
    try:
        doc: Any = json.loads(body)
        data = doc["data"] if doc.get("status") != "error" else None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MetricsError(f"error unmarshaling result: not a Prometheus answer: {body[:_BODY_LIMIT]!r}") from None
    if data is None:
        raise MetricsError(f"{doc.get('errorType', 'error')}: {doc.get('error', 'unknown error')}")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind == "matrix":
        raise MetricsError("query returned multiple values")
    if kind == "scalar":
        return _finite(_sample(result))
    if kind != "vector" or not isinstance(result, list):
        raise MetricsError(f"unsupported result type {kind!r}: use a query that returns an instant vector")
    value: float | None = None
    for series in result:
        if isinstance(series, dict) and "values" in series:
            raise MetricsError("query returned multiple values")
        value = _sample(series.get("value") if isinstance(series, dict) else None)
    if value is None:
        raise NoValuesFound("no values found")
    return _finite(value)


def _sample(pair: object) -> float:
    """``[timestamp, "value"]`` -> the value (Prometheus sends numbers as strings: "NaN", "+Inf", "0.95")."""
    if not isinstance(pair, list) or len(pair) != 2:
        raise MetricsError(f"error unmarshaling result: bad sample {pair!r}")
    try:
        return float(pair[1])
    except (TypeError, ValueError):
        raise MetricsError(f"error unmarshaling result: bad sample value {pair[1]!r}") from None


def _finite(value: float) -> float:
    if math.isnan(value):  # 0/0 when nothing was served: Flagger treats it as no data
        raise NoValuesFound("no values found")
    return value

