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


# ----------------------------------------------------------------------------------------- Gateway API


def _set_cookie_filter(value: str) -> Obj:
    return {"type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": SET_COOKIE, "value": value}]}}  # fmt: skip


def _cookie_match(cookie: str) -> Obj:
    return {"headers": [{"type": "RegularExpression", "name": COOKIE, "value": cookie_regex(cookie)}]}


def gateway_rules(ctx: TickContext, canary_weight: int, weighted: Obj, cookies: dict[str, str],
                  backend: Any) -> list[Obj]:
    """The HTTPRoute rules with session affinity: ``[sticky canary, (sticky primary), weighted]``.

    ``weighted`` is the weighted rule (changed in place: its backends get the ``Set-Cookie`` filters);
    ``backend(name, weight)`` writes a backendRef.
    """
    c = ctx.canary
    affinity = c.session_affinity
    assert affinity is not None
    svc = c.service_name
    svc_matches = gateway_matches(c.spec.service.match)  # without the default "/" prefix, as Flagger merges
    sticky_canary = copy_json(weighted)
    if canary_weight != 0:
        refs = {b["name"]: b for b in weighted["backendRefs"]}
        refs[f"{svc}-canary"].setdefault("filters", []).append(_set_cookie_filter(
            affinity.build_cookie(cookies["sessionAffinityCookie"], affinity.max_age_seconds)))
        if affinity.primary_cookie_name:
            refs[f"{svc}-primary"].setdefault("filters", []).append(_set_cookie_filter(
                affinity.build_cookie(cookies["primarySessionAffinityCookie"], _primary_max_age(ctx))))
        sticky_canary["matches"] = merge_matches([_cookie_match(cookies["sessionAffinityCookie"])], svc_matches)
        sticky_canary["backendRefs"] = [backend(f"{svc}-primary", 0), backend(f"{svc}-canary", 100)]
        if not affinity.primary_cookie_name:
            return [sticky_canary, weighted]
        sticky_primary = copy_json(sticky_canary)
        sticky_primary["matches"] = merge_matches([_cookie_match(cookies["primarySessionAffinityCookie"])],
                                                  svc_matches)
        sticky_primary["backendRefs"] = [backend(f"{svc}-primary", 100), backend(f"{svc}-canary", 0)]
        return [sticky_canary, sticky_primary, weighted]
    previous = cookies["previousSessionAffinityCookie"]
    if previous:
        # users who still carry the last run's cookie are matched once more, to be told to drop it
        sticky_canary["matches"] = merge_matches([_cookie_match(previous)], svc_matches)
        sticky_canary.setdefault("filters", []).append(_set_cookie_filter(f"{previous}; Max-Age=-1"))
    return [sticky_canary, weighted]


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


def _istio_cookie_match(cookie: str) -> Obj:
    return {"headers": {COOKIE: {"regex": cookie_regex(cookie)}}}


def istio_routes(ctx: TickContext, canary_weight: int, weighted: Obj, cookies: dict[str, str],
                 destination: Any) -> list[Obj]:
    """The VirtualService HTTP routes with session affinity: ``[sticky canary, (sticky primary), weighted]``.

    ``weighted`` is the weighted route (changed in place: its destinations get the ``Set-Cookie`` headers);
    ``destination(host, weight)`` writes a route destination.
    """
    c = ctx.canary
    affinity = c.session_affinity
    assert affinity is not None
    svc = c.service_name
    service_match = c.spec.service.match or []
    sticky_canary = copy_json(weighted)
    if canary_weight != 0:
        hosts = {(d.get("destination") or {}).get("host"): d for d in weighted["route"]}
        hosts[f"{svc}-canary"]["headers"] = {"response": {"add": {SET_COOKIE: affinity.build_cookie(
            cookies["sessionAffinityCookie"], affinity.max_age_seconds)}}}
        if affinity.primary_cookie_name:
            hosts[f"{svc}-primary"]["headers"] = {"response": {"add": {SET_COOKIE: affinity.build_cookie(
                cookies["primarySessionAffinityCookie"], _primary_max_age(ctx))}}}
        sticky_canary["match"] = istio_merge([_istio_cookie_match(cookies["sessionAffinityCookie"])], service_match)
        sticky_canary["route"] = [destination(f"{svc}-primary", 0), destination(f"{svc}-canary", 100)]
        if not affinity.primary_cookie_name:
            return [sticky_canary, weighted]
        sticky_primary = copy_json(sticky_canary)
        sticky_primary["match"] = istio_merge([_istio_cookie_match(cookies["primarySessionAffinityCookie"])],
                                              service_match)
        sticky_primary["route"] = [destination(f"{svc}-primary", 100), destination(f"{svc}-canary", 0)]
        return [sticky_canary, sticky_primary, weighted]
    previous = cookies["previousSessionAffinityCookie"]
    if previous:
        sticky_canary["match"] = istio_merge([_istio_cookie_match(previous)], service_match)
        headers = sticky_canary.setdefault("headers", {})
        headers.setdefault("response", {}).setdefault("add", {})[SET_COOKIE] = f"{previous}; Max-Age=-1"
        if c.spec.service.headers is not None:
            # Flagger's copy of the route shares the service's headers object, so the weighted route gets the
            # expiring Set-Cookie too (pkg/router/istio.go); kept, the shapes are Flagger's
            weighted["headers"] = copy_json(headers)
    return [sticky_canary, weighted]


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
