"""Users with cookie jars: the background traffic of an apex Service whose route keeps sessions (session affinity).

Flows elsewhere in the lab are counted, not simulated per request. A route that answers with ``Set-Cookie``
(Flagger's sticky canary routes) makes where a request goes depend on what that user was answered before, so
the background load on such a Service is a fixed set of users. Each slice, the users who visit (at random,
their share of the background rate) send their requests with the cookies they hold: a route matching them (the
sticky canary, the sticky primary, or the one that expires the last run's cookie) decides, else the weighted
split picks a backend for that visit, and the answer's ``Set-Cookie`` lands in the user's jar. A user who got
the canary stays on it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

USERS = 100
"""Background users per apex Service with session affinity; their requests add up to the background rate (3
requests a second: each user visits about every half minute)."""


@dataclass
class CookieJar:
    """A browser's cookies for one site: name -> (value, expiry in lab seconds; ``inf`` for a session cookie)."""

    cookies: dict[str, tuple[str, float]] = field(default_factory=dict)

    def header(self, now: float) -> str:
        """The ``Cookie`` header this user sends now ("" with no live cookie)."""
        for name in [n for n, (_, expires) in self.cookies.items() if expires <= now]:
            del self.cookies[name]
        return "; ".join(f"{name}={value}" for name, (value, _) in self.cookies.items())

    def store(self, set_cookie: str, now: float) -> None:
        """Keep (or, with ``Max-Age`` 0 or less, drop) the cookie of a ``Set-Cookie`` answer."""
        first, *attributes = [part.strip() for part in set_cookie.split(";")]
        name, sep, value = first.partition("=")
        if not sep or not name:
            return
        expires = float("inf")
        for attribute in attributes:
            key, _, text = attribute.partition("=")
            if key.strip().lower() != "max-age":
                continue
            try:
                seconds = int(text.strip())
            except ValueError:
                continue
            if seconds <= 0:  # the server asks to forget it
                self.cookies.pop(name, None)
                return
            expires = now + seconds
        self.cookies[name] = (value, expires)


@dataclass
class User:
    """One background user: its cookies and the backend Service that answered it last."""

    jar: CookieJar = field(default_factory=CookieJar)
    last_backend: str = ""


def pick_backend(backends: list[tuple[str, int]], rng: random.Random) -> str | None:
    """One backend Service by weight (``None`` when all weights are 0)."""
    total = sum(max(0, w) for _, w in backends)
    if total <= 0:
        return None
    point = rng.random() * total
    for name, weight in backends:
        point -= max(0, weight)
        if point < 0 and weight > 0:
            return name
    return next(name for name, weight in reversed(backends) if weight > 0)


class Users:
    """The background users of each apex Service with session affinity, created when first needed."""

    def __init__(self, count: int = USERS) -> None:
        self.count = count
        self.by_service: dict[tuple[str, str], list[User]] = {}

    def of(self, namespace: str, service: str) -> list[User]:
        key = (namespace, service)
        if key not in self.by_service:
            self.by_service[key] = [User() for _ in range(self.count)]
        return self.by_service[key]
