"""Test doubles for the engine's ports: scripted metric and webhook answers, a hand-moved clock.

The in-memory Cluster is not a double: it is the reference implementation in
``canarylab.engine.memory_cluster``, which the simulated lab builds on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canarylab.engine.ports import (
    MetricQuery,
    MetricsError,
    NoValuesFound,
    WebhookCall,
    WebhookResponse,
)

__all__ = ["FakeMetrics", "FakeWebhooks", "ManualClock"]


MetricAnswer = float | BaseException | type[BaseException] | Callable[[MetricQuery], float] | Sequence[Any]
"""A fake answer: a value, an exception (instance or class) to raise, a callable, or a sequence of those
consumed one per query (the last one repeats)."""


class FakeMetrics:
    """The Metrics port answering from a table keyed by metric name (or by Linkerd builtin name).

    ``FakeMetrics({"request-success-rate": 99.5, "request-duration": NoValuesFound})``. Unknown metrics
    use ``default`` (a :class:`MetricsError` saying nothing was configured, unless given). ``queries``
    records every query in order; ``online`` is what :meth:`is_online` says.
    """

    def __init__(self, answers: Mapping[str, MetricAnswer] | None = None, *,
                 default: MetricAnswer | None = None, online: bool = True) -> None:
        self.answers: dict[str, MetricAnswer] = dict(answers or {})
        self.default = default
        self.online = online
        self.queries: list[MetricQuery] = []
        self._positions: dict[str, int] = {}

    @classmethod
    def healthy(cls) -> FakeMetrics:
        """Linkerd's builtin checks passing: 100% success, P99 of 100 ms (Linkerd's histogram is in ms)."""
        return cls({"request-success-rate": 100.0, "request-duration": 100.0})

    def set(self, metric: str, answer: MetricAnswer) -> None:
        """Change the answer for ``metric`` from the next query on."""
        self.answers[metric] = answer
        self._positions.pop(metric, None)

    def queried(self, metric: str) -> list[MetricQuery]:
        """The queries made for one metric."""
        return [q for q in self.queries if q.metric == metric]

    async def query(self, q: MetricQuery) -> float:
        """The configured answer for ``q.metric`` (or ``q.builtin``)."""
        self.queries.append(q)
        if q.metric in self.answers:
            key: str | None = q.metric
        elif q.builtin is not None and q.builtin in self.answers:
            key = q.builtin
        else:
            key = None
        answer = self.answers[key] if key is not None else self.default
        if answer is None:
            raise MetricsError(f"FakeMetrics has no answer for metric {q.metric!r}")
        if isinstance(answer, Sequence) and not isinstance(answer, str):
            assert key is not None
            pos = self._positions.get(key, 0)
            self._positions[key] = pos + 1
            answer = answer[min(pos, len(answer) - 1)]
        return _resolve(answer, q)

    async def is_online(self, address: str | None) -> bool:
        """``online`` as set by the test."""
        return self.online


def _resolve(answer: Any, q: MetricQuery) -> float:
    if isinstance(answer, BaseException):
        raise answer
    if isinstance(answer, type) and issubclass(answer, BaseException):
        if answer is NoValuesFound:
            raise NoValuesFound(f"no values found for query {q.query}")
        raise answer(f"{answer.__name__} for metric {q.metric}")
    if callable(answer):
        return float(answer(q))
    return float(answer)


# ------------------------------------------------------------------------------------------- webhooks

WebhookAnswer = int | WebhookResponse | Callable[[WebhookCall], WebhookResponse | int] | Sequence[Any]
"""A fake answer: a status code, a full response, a callable, or a sequence consumed one per call."""


@dataclass
class FakeWebhooks:
    """The Webhooks port answering from a table keyed by hook name or URL; default ``200``.

    A status code becomes Flagger's outcome (success iff ``<= 202``, else the body is the error text).
    ``calls`` records every call in order.
    """

    answers: dict[str, WebhookAnswer] = field(default_factory=dict)
    default: WebhookAnswer = 200
    calls: list[WebhookCall] = field(default_factory=list)
    _positions: dict[str, int] = field(default_factory=dict)

    def set(self, hook: str, answer: WebhookAnswer) -> None:
        """Answer calls to hook name or URL ``hook`` with ``answer`` from now on."""
        self.answers[hook] = answer
        self._positions.pop(hook, None)

    def called(self, hook: str) -> list[WebhookCall]:
        """Calls made to one hook (by name or URL)."""
        return [c for c in self.calls if hook in (c.name, c.url)]

    def payloads(self, hook: str) -> list[Mapping[str, Any]]:
        """The JSON payloads sent to one hook."""
        return [c.payload for c in self.called(hook)]

    async def call(self, call: WebhookCall) -> WebhookResponse:
        """The configured answer for this hook."""
        self.calls.append(call)
        key = call.name if call.name in self.answers else call.url if call.url in self.answers else None
        answer: Any = self.answers[key] if key is not None else self.default
        if isinstance(answer, Sequence) and not isinstance(answer, str):
            slot = key or "\0default"
            pos = self._positions.get(slot, 0)
            self._positions[slot] = pos + 1
            answer = answer[min(pos, len(answer) - 1)]
        if callable(answer) and not isinstance(answer, WebhookResponse):
            answer = answer(call)
        if isinstance(answer, WebhookResponse):
            return answer
        status = int(answer)
        if status <= 202:
            return WebhookResponse(ok=True, status=status, body="OK")
        body = "Forbidden" if status == 403 else f"status {status}"
        return WebhookResponse(ok=False, status=status, body=body, error=body)


# ---------------------------------------------------------------------------------------------- clock


class ManualClock:
    """A clock that moves only when told (``advance``) or when something sleeps on it; for tick-level tests."""

    def __init__(self, epoch: float = 1_700_000_000.0) -> None:
        self.epoch = epoch
        self.t = epoch

    def now(self) -> float:
        return self.t

    def elapsed(self) -> float:
        """Seconds since the clock's epoch."""
        return self.t - self.epoch

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.t += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` and yield once to the loop."""
        self.advance(seconds)
        await asyncio.sleep(0)
