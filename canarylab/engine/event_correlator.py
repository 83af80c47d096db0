"""What client-go's event recorder does to Flagger's Events before they reach the API server.

Flagger records every Event with reason ``Synced`` through client-go's ``EventCorrelator``
(``k8s.io/client-go/tools/record/events_cache.go``, v0.36 in Flagger v1.44), which does three things a user sees
in ``kubectl describe canary``, and which the conformance run against the real Flagger showed:

1. **Repeats** (same object, type, reason and message) bump ``count`` on the first Event.
2. **Aggregation**: from the 10th distinct message with the same object, type and reason within 10 minutes of
   the previous one, the message becomes ``(combined from similar events): <message>`` and every such Event
   updates one Event object (its count grows, its message is the latest).
3. **Spam filter**: 25 Events per object and type, then one more every 5 minutes; the rest are dropped.

:class:`EventCorrelator` reproduces the three decisions; the cluster adapter does the writing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
COMBINED_PREFIX = "(combined from similar events): "

ObjectKey = tuple[str, ...]
"""``(namespace, kind, name, uid, apiVersion)`` of the involved object."""


@dataclass(frozen=True)
class Decision:
    """Write nothing (``skip``), create Event ``name``, or (``patch``) update it with ``count`` and ``message``."""

    skip: bool
    patch: bool
    name: str
    count: int
    first: float
    message: str


class _Lru(OrderedDict[tuple[str, ...], object]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: tuple[str, ...], value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


class EventCorrelator:
    """client-go's correlator for one recorder (one controller process); caches are LRUs of ``cache_size``."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._aggregates = _Lru(cache_size)  # key -> (set of messages, last time)
        self._log = _Lru(cache_size)  # key -> (count, first time, event name)
        self._spam = _Lru(cache_size)  # key -> (tokens, last time)

    def correlate(self, obj: ObjectKey, type: str, reason: str, message: str, now: float,
                  new_name: str) -> Decision:
        # 1. EventAggregate
        aggregate_key = (*obj, type, reason)
        found = self._aggregates.get(aggregate_key)
        fresh = isinstance(found, tuple) and now - found[1] <= AGGREGATE_INTERVAL
        messages: set[str] = found[0] if fresh else set()  # type: ignore[index]
        messages.add(message)
        self._aggregates.put(aggregate_key, (messages, now))
        if len(messages) < AGGREGATE_MAX_EVENTS:
            log_key: tuple[str, ...] = (*aggregate_key, message)
        else:
            messages.pop()  # client-go: "do not grow our local key set any larger than max" (PopAny)
            message = COMBINED_PREFIX + message
            log_key = aggregate_key
        # 2. eventObserve: a known key updates the Event already written
        last = self._log.get(log_key)
        if isinstance(last, tuple):
            count, first, name = last[0] + 1, last[1], last[2]
            patch = True
        else:
            count, first, name, patch = 1, now, new_name, False
        self._log.put(log_key, (count, first, name))
        # 3. the spam filter, after the cache was updated (as client-go does)
        spam_key = (*obj, type)
        bucket = self._spam.get(spam_key)
        tokens, since = bucket if isinstance(bucket, tuple) else (float(SPAM_BURST), now)
        tokens = min(float(SPAM_BURST), tokens + (now - since) * SPAM_QPS)
        skip = tokens < 1.0
        self._spam.put(spam_key, (tokens if skip else tokens - 1.0, now))
        return Decision(skip, patch, name, count, first, message)

    def forget(self, name: str) -> None:
        """The Event ``name`` is gone from the server (expired): the next one is created afresh."""
        for key, value in list(self._log.items()):
            if isinstance(value, tuple) and value[2] == name:
                del self._log[key]
