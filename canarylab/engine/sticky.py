"""Session affinity (``analysis.sessionAffinity``): the sticky routes Flagger's Gateway API and Istio routers add in
``SetRoutes`` (``getSessionAffinityRouteRules`` in ``pkg/router/gateway_api.go`` and ``pkg/router/istio.go``).

While the canary takes traffic, its backend in the weighted route answers with ``Set-Cookie: <cookieName>=<random>;
Max-Age=<maxAge>`` and a route before it sends every request whose ``Cookie`` header carries that cookie to the
canary alone: a user who landed on the canary stays there. With ``primaryCookieName``, the primary answers with its
own cookie (``Max-Age`` = the analysis interval) and a second route keeps those users on the primary. When the
canary is back at weight 0 (promotion or rollback), the cookie moves to ``previousSessionAffinityCookie`` and a
route that matches it answers with ``Max-Age=-1``: browsers drop it. The cookies live in the Canary status, so a
restarted engine keeps them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canarylab.engine.context import TickContext
from canarylab.engine.documents import copy_json
from canarylab.engine.durations import parse_duration
from canarylab.engine.kinds import Obj
from canarylab.engine.matches import gateway_matches, istio_merge, merge_matches
from canarylab.engine.spec import SessionAffinity

COOKIE = "Cookie"
SET_COOKIE = "Set-Cookie"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_STATUS_KEYS = ("sessionAffinityCookie", "primarySessionAffinityCookie", "previousSessionAffinityCookie")


class StickyError(Exception):
    """The sticky routes cannot be written (Flagger's SetRoutes error); the message is the Warning text."""


def _rand_seq(ctx: TickContext, salt: str) -> str:
    """Ten letters, as Flagger's ``randSeq``; derived from the canary, its revision and the clock instead of a
    random source, so a run is reproducible (the value only has to be new for each run)."""
    c = ctx.canary
    seed = f"{c.namespace}/{c.name}/{ctx.status.get('lastAppliedSpec', '')}/{ctx.now():.3f}/{salt}"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_LETTERS[b % len(_LETTERS)] for b in digest[:10])


def cookie_changes(ctx: TickContext, affinity: SessionAffinity, canary_weight: int) -> dict[str, str | None]:
    """The status changes Flagger's ``getSessionAffinityRouteRules`` makes for ``canary_weight`` (a merge patch:
    ``None`` removes). Flagger keeps the primary cookie across runs; so does this."""
    status = ctx.status
    out: dict[str, str | None] = {}
    if canary_weight != 0:
        if not status.get("sessionAffinityCookie"):
            out["sessionAffinityCookie"] = f"{affinity.cookie_name}={_rand_seq(ctx, 'canary')}"
        if not status.get("primarySessionAffinityCookie"):
            out["primarySessionAffinityCookie"] = f"{affinity.primary_cookie_name}={_rand_seq(ctx, 'primary')}"
    elif status.get("sessionAffinityCookie"):
        out["previousSessionAffinityCookie"] = status["sessionAffinityCookie"]
        out["sessionAffinityCookie"] = None
    return out


def cookies_after(ctx: TickContext, changes: dict[str, str | None]) -> dict[str, str]:
    """The three cookies of the status once ``changes`` are applied (absent ones as "")."""
    return {k: str((changes[k] if k in changes else ctx.status.get(k)) or "") for k in _STATUS_KEYS}


def cookie_regex(cookie: str) -> str:
    """The ``Cookie`` header regex Flagger matches ``name=value`` with: ``.*name.*value.*``."""
    name, _, value = cookie.partition("=")
    return f".*{name}.*{value}.*"


def _primary_max_age(ctx: TickContext) -> int:
    """The primary cookie lives one analysis interval (Go's ``time.ParseDuration`` of ``analysis.interval``)."""
    text = (ctx.canary.spec.analysis.interval if ctx.canary.spec.analysis else None) or ""
    try:
        return int(parse_duration(text))
    except ValueError:
        raise StickyError(f'failed to parse canary interval: time: invalid duration "{text}"') from None


# ----------------------------------------------------------------------------------------- both routers


@dataclass(frozen=True)
class _Dialect:
    """How one router writes what the sticky routes need: the route's match and backends keys, a cookie
    match merged with the service's matches, a backend, and a ``Set-Cookie`` on a backend or a route."""

    matches: str
    backends: str
    backend_name: Callable[[Obj], str]
    cookie_matches: Callable[[str], list[Obj]]
    backend: Callable[[str, int], Obj]
    set_cookie_on_backend: Callable[[Obj, str], None]
    set_cookie_on_route: Callable[[Obj, str], None]


def _sticky_routes(ctx: TickContext, canary_weight: int, weighted: Obj, cookies: dict[str, str],
                   how: _Dialect) -> list[Obj]:
    """Flagger's ``getSessionAffinityRouteRules``, for either router."""
    c = ctx.canary
    affinity = c.session_affinity
    if affinity is None:
        return [weighted]
    svc = c.service_name
    sticky_canary = copy_json(weighted)
    if canary_weight == 0:
        previous = cookies["previousSessionAffinityCookie"]
        if previous:
            # users who still carry the last run's cookie are matched once more, to be told to drop it
            sticky_canary[how.matches] = how.cookie_matches(previous)
            how.set_cookie_on_route(sticky_canary, f"{previous}; Max-Age=-1")
        return [sticky_canary, weighted]
    backends = {how.backend_name(b): b for b in weighted[how.backends]}
    how.set_cookie_on_backend(backends[f"{svc}-canary"], affinity.build_cookie(cookies["sessionAffinityCookie"],
                                                                               affinity.max_age_seconds))
    if affinity.primary_cookie_name:
        how.set_cookie_on_backend(backends[f"{svc}-primary"], affinity.build_cookie(
            cookies["primarySessionAffinityCookie"], _primary_max_age(ctx)))
    sticky_canary[how.matches] = how.cookie_matches(cookies["sessionAffinityCookie"])
    sticky_canary[how.backends] = [how.backend(f"{svc}-primary", 0), how.backend(f"{svc}-canary", 100)]
    if not affinity.primary_cookie_name:
        return [sticky_canary, weighted]
    sticky_primary = copy_json(sticky_canary)
    sticky_primary[how.matches] = how.cookie_matches(cookies["primarySessionAffinityCookie"])
    sticky_primary[how.backends] = [how.backend(f"{svc}-primary", 100), how.backend(f"{svc}-canary", 0)]
    return [sticky_canary, sticky_primary, weighted]


# ----------------------------------------------------------------------------------------- Gateway API


def _set_cookie_filter(value: str) -> Obj:
    return {"type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": SET_COOKIE, "value": value}]}}  # fmt: skip


def gateway_rules(ctx: TickContext, canary_weight: int, weighted: Obj, cookies: dict[str, str],
                  backend: Callable[[str, int], Obj]) -> list[Obj]:
    """The HTTPRoute rules with session affinity: ``[sticky canary, (sticky primary), weighted]``.

    ``weighted`` is the weighted rule (changed in place: its backends get the ``Set-Cookie`` filters);
    ``backend(name, weight)`` writes a backendRef.
    """
    service = gateway_matches(ctx.canary.spec.service.match)  # without the default "/" prefix, as Flagger merges

    def cookie_matches(cookie: str) -> list[Obj]:
        match = {"headers": [{"type": "RegularExpression", "name": COOKIE, "value": cookie_regex(cookie)}]}
        return merge_matches([match], service)

    return _sticky_routes(ctx, canary_weight, weighted, cookies, _Dialect(
        "matches", "backendRefs", lambda b: str(b.get("name")), cookie_matches, backend,
        lambda b, value: b.setdefault("filters", []).append(_set_cookie_filter(value)),
        lambda r, value: r.setdefault("filters", []).append(_set_cookie_filter(value))))


def is_gateway_sticky_rule(rule: Any, affinity: SessionAffinity) -> bool:
    """The rules Flagger's Reconcile leaves alone: a ``Cookie`` regex match naming either cookie."""
    for match in (rule.get("matches") if isinstance(rule, dict) else None) or []:
        for header in (match.get("headers") if isinstance(match, dict) else None) or []:
            if isinstance(header, dict) and header.get("type") == "RegularExpression" \
                    and header.get("name") == COOKIE and any(name in str(header.get("value", ""))
                                                             for name in (affinity.cookie_name,
                                                                          affinity.primary_cookie_name)):
                return True
    return False


# ----------------------------------------------------------------------------------------- Istio


def istio_routes(ctx: TickContext, canary_weight: int, weighted: Obj, cookies: dict[str, str],
                 destination: Callable[[str, int], Obj]) -> list[Obj]:
    """The VirtualService HTTP routes with session affinity: ``[sticky canary, (sticky primary), weighted]``.

    ``weighted`` is the weighted route (changed in place: its destinations get the ``Set-Cookie`` headers);
    ``destination(host, weight)`` writes a route destination.
    """
    service = ctx.canary.spec.service

    def cookie_matches(cookie: str) -> list[Obj]:
        return istio_merge([{"headers": {COOKIE: {"regex": cookie_regex(cookie)}}}], service.match or [])

    def on_backend(d: Obj, value: str) -> None:
        d["headers"] = {"response": {"add": {SET_COOKIE: value}}}

    def on_route(r: Obj, value: str) -> None:
        r.setdefault("headers", {}).setdefault("response", {}).setdefault("add", {})[SET_COOKIE] = value
        if service.headers is not None:
            # Flagger's copy of the route shares the service's headers object, so the weighted route gets the
            # expiring Set-Cookie too (pkg/router/istio.go); kept, the shapes are Flagger's
            weighted["headers"] = copy_json(r["headers"])

    return _sticky_routes(ctx, canary_weight, weighted, cookies, _Dialect(
        "match", "route", lambda d: str((d.get("destination") or {}).get("host")), cookie_matches, destination,
        on_backend, on_route))


def is_istio_sticky_route(route: Any, affinity: SessionAffinity) -> bool:
    """The routes Flagger's Reconcile leaves alone: ``strings.Contains(match.Headers["Cookie"].Regex, name)``
    for either cookie name. (Without ``primaryCookieName`` that holds for every route with a match, as in
    Flagger: ``Contains(x, "")`` is true.)"""
    for match in (route.get("match") if isinstance(route, dict) else None) or []:
        headers = match.get("headers") if isinstance(match, dict) else None
        regex = str(((headers or {}).get(COOKIE) or {}).get("regex") or "") if isinstance(headers, dict) else ""
        if any(name in regex for name in (affinity.cookie_name, affinity.primary_cookie_name)):
            return True
    return False
