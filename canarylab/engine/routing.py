"""The routing object: SMI ``TrafficSplit`` (v1alpha2, int weights), Gateway API ``HTTPRoute`` or Istio
``VirtualService`` (with a ``DestinationRule`` per generated Service), written as Flagger's routers write them.

Weights are always read back from the object (flagger-spec 4.2, 4.3), never from the Canary status.
"""

from __future__ import annotations

from typing import Any

from canarylab.engine import sticky
from canarylab.engine.context import TickContext
from canarylab.engine.documents import copy_json
from canarylab.engine.durations import parse_duration
from canarylab.engine.events import WeightChanged
from canarylab.engine.kinds import DESTINATION_RULE, HTTP_ROUTE, INGRESS, TRAFFIC_SPLIT, VIRTUAL_SERVICE, Kind, Obj
from canarylab.engine.matches import gateway_matches, istio_merge, merge_matches
from canarylab.engine.spec import Canary
from canarylab.engine.status import set_session_cookies
from canarylab.engine.targets import owner_ref


class RoutingError(Exception):
    """The routing object is missing or unusable; the message is the Warning event text."""


def router_kind(ctx: TickContext) -> Kind:
    return {"HTTPRoute": HTTP_ROUTE, "VirtualService": VIRTUAL_SERVICE, "Ingress": INGRESS}.get(ctx.canary.router,
                                                                                               TRAFFIC_SPLIT)


NGINX = "nginx.ingress.kubernetes.io"
"""The NGINX ingress controller's annotation prefix (Flagger's default ``-ingress-annotations-prefix``)."""
_NGINX_CANARY_KEYS = tuple(f"{NGINX}/{k}" for k in (
    "canary", "canary-weight", "canary-by-cookie", "canary-by-header", "canary-by-header-value",
    "canary-by-header-pattern"))


def route_name(ctx: TickContext) -> str:
    """The routing object's name: the apex Service's, or ``<ingressRef>-canary`` for NGINX."""
    return canary_route_name(ctx.canary)


def canary_route_name(c: Canary) -> str:
    """:func:`route_name` of a Canary."""
    return f"{c.spec.ingress_ref.name}-canary" if c.router == "Ingress" and c.spec.ingress_ref else c.service_name


def _nginx_annotations(annotations: dict[str, str], weight: int) -> dict[str, str]:
    """``makeAnnotations``: the ingress's own annotations without canary ones, then canary on at ``weight``."""
    out = {k: v for k, v in annotations.items() if k not in _NGINX_CANARY_KEYS
           and "kubectl.kubernetes.io/last-applied-configuration" not in k and "toolkit.fluxcd.io" not in k}
    out[f"{NGINX}/canary"] = "true"
    out[f"{NGINX}/canary-weight"] = str(weight)
    return out


def _nginx_header_annotations(ctx: TickContext, annotations: dict[str, str]) -> dict[str, str]:
    """``makeHeaderAnnotations``: A/B by cookie or header (exact or regex), from ``analysis.match``."""
    cookie = header = value = pattern = ""
    for m in ctx.canary.analysis.match or []:
        for name, test in ((m or {}).get("headers") or {}).items():
            test = test or {}
            if name == "cookie":
                cookie = str(test.get("exact") or "")
            else:
                header, value, pattern = name, str(test.get("exact") or ""), str(test.get("regex") or "")
    out = {k: v for k, v in annotations.items() if k not in _NGINX_CANARY_KEYS}
    out[f"{NGINX}/canary"] = "true"
    for key, text in (("canary-by-cookie", cookie), ("canary-by-header", header),
                      ("canary-by-header-value", value), ("canary-by-header-pattern", pattern)):
        if text:
            out[f"{NGINX}/{key}"] = text
    return out


def _virtual_service(ctx: TickContext, primary: int, canary: int, mirrored: bool,
                     cookies: dict[str, str] | None = None) -> Obj:
    """Flagger's Istio router: hosts (the apex always), gateways (``mesh`` by default), one weighted HTTP route
    carrying the service's match, rewrite, timeout, retries, headers and corsPolicy; with ``cookies`` (SetRoutes
    under session affinity) the sticky routes before it."""
    c = ctx.canary
    svc, s = c.service_name, c.spec.service
    hosts = list(s.hosts)
    if svc not in hosts and "*" not in hosts:
        hosts.append(svc)
    gateways = list(s.gateways) or ["mesh"]
    if s.delegation:
        hosts, gateways = [], []

    def destination(host: str, weight: int) -> Obj:
        dest: Obj = {"host": host}
        if s.port_discovery and ((s.gateways and s.gateways[0] != "mesh") or s.delegation):
            dest["port"] = {"number": s.port}
        return {"destination": dest, "weight": weight}

    def route(match: list[Any] | None, destinations: list[Obj]) -> Obj:
        out: Obj = {}
        if match:
            out["match"] = copy_json(match)
        for key, value in (("rewrite", s.rewrite), ("timeout", s.timeout), ("retries", s.retries),
                           ("corsPolicy", s.cors_policy), ("headers", s.headers)):
            if value:
                out[key] = copy_json(value)
        out["route"] = destinations
        return out

    weighted = route(s.match, [destination(f"{svc}-primary", primary), destination(f"{svc}-canary", canary)])
    http = [weighted]
    if cookies is not None:
        http = sticky.istio_routes(ctx, canary, weighted, cookies, destination)
    if mirrored:
        # on the first route, as Flagger sets Http[0].Mirror (the sticky canary route under session affinity)
        http[0]["mirror"] = {"host": f"{svc}-canary"}
        if c.analysis.mirror_weight > 0:
            http[0]["mirrorPercentage"] = {"value": float(c.analysis.mirror_weight)}
    if c.analysis.match:
        # A/B testing replaces the routes (Flagger drops the mirror and the sticky routes here too)
        first = route(istio_merge(c.analysis.match, s.match or []),
                      [destination(f"{svc}-primary", primary), destination(f"{svc}-canary", canary)])
        http = [first, route(s.match, [destination(f"{svc}-primary", 100)])]
    return {"hosts": hosts, "gateways": gateways, "http": http}


def _destination_rule(ctx: TickContext, host: str) -> Obj:
    spec: Obj = {"host": host}
    if ctx.canary.spec.service.traffic_policy:
        spec["trafficPolicy"] = copy_json(ctx.canary.spec.service.traffic_policy)
    return spec


def _gateway_header_filter(operations: Any) -> Obj:
    """An ``HTTPHeaderFilter`` from Istio-style ``{add, set, remove}``: add and set sorted by name, then value."""
    ops = operations if isinstance(operations, dict) else {}
    out: Obj = {}
    for key in ("add", "set"):
        pairs = sorted((str(n), str(v)) for n, v in (ops.get(key) or {}).items())
        if pairs:
            out[key] = [{"name": n, "value": v} for n, v in pairs]
    if ops.get("remove"):
        out["remove"] = [str(n) for n in ops["remove"]]
    return out


def _gateway_filters(ctx: TickContext) -> list[Obj]:
    """Flagger's ``makeFilters``: ``spec.service.headers`` (request, then response), ``rewrite``, ``mirror`` and
    ``corsPolicy`` as the HTTPRoute rule's filters, in that order."""
    s = ctx.canary.spec.service
    out: list[Obj] = []
    headers = s.headers or {}
    if headers.get("request") is not None:
        out.append({"type": "RequestHeaderModifier", "requestHeaderModifier": _gateway_header_filter(
            headers["request"])})
    if headers.get("response") is not None:
        out.append({"type": "ResponseHeaderModifier", "responseHeaderModifier": _gateway_header_filter(
            headers["response"])})
    if s.rewrite is not None:
        rewrite: Obj = {}
        if s.rewrite.get("authority"):
            rewrite["hostname"] = str(s.rewrite["authority"])
        if s.rewrite.get("uri"):
            kind = "ReplacePrefixMatch" if s.rewrite.get("type") == "ReplacePrefixMatch" else "ReplaceFullPath"
            key = "replacePrefixMatch" if kind == "ReplacePrefixMatch" else "replaceFullPath"
            rewrite["path"] = {"type": kind, key: str(s.rewrite["uri"])}
        out.append({"type": "URLRewrite", "urlRewrite": rewrite})
    v1 = ctx.canary.provider != "gatewayapi:v1beta1"  # Flagger's v1beta1 router has no CORS and copies mirrors
    for mirror in s.mirror:
        ref = (mirror or {}).get("backendRef") or {}
        request_mirror = {"backendRef": {k: ref[k] for k in ("group", "kind", "namespace", "name", "port") if k in ref}}
        out.append({"type": "RequestMirror", "requestMirror": request_mirror if v1 else copy_json(mirror)})
    if s.cors_policy is not None and v1:
        out.append({"type": "CORS", "cors": _gateway_cors(s.cors_policy)})
    return out


def _gateway_cors(policy: dict[str, Any]) -> Obj:
    """``toV1CORSFilter``: allowOrigin (not the pattern list allowOrigins), methods, headers, credentials and
    maxAge (a Go duration, in whole seconds; dropped when Go could not parse it)."""
    out: Obj = {}
    for source, target in (("allowOrigin", "allowOrigins"), ("allowMethods", "allowMethods"),
                           ("allowHeaders", "allowHeaders"), ("exposeHeaders", "exposeHeaders")):
        if policy.get(source):
            out[target] = [str(v) for v in policy[source]]
    if policy.get("allowCredentials"):
        out["allowCredentials"] = True
    if policy.get("maxAge"):
        try:
            seconds = int(parse_duration(str(policy["maxAge"])))
        except ValueError:
            seconds = 0
        if seconds:
            out["maxAge"] = seconds
    return out


def _gateway_timeouts(ctx: TickContext) -> Obj | None:
    """``makeHTTPRouteTimeouts``: ``spec.service.timeout`` and ``backendTimeout`` as the rule's timeouts (the
    ``gatewayapi:v1`` router only; Flagger's v1beta1 router writes none)."""
    s = ctx.canary.spec.service
    if ctx.canary.provider == "gatewayapi:v1beta1":
        return None
    out: Obj = {}
    if s.timeout:
        out["request"] = s.timeout
    if s.backend_timeout:
        out["backendRequest"] = s.backend_timeout
    return out or None


def _http_route(ctx: TickContext, primary: int, canary: int, mirrored: bool,
                cookies: dict[str, str] | None = None) -> Obj:
    """Flagger's Gateway API router: one weighted rule (the service's matches or ``/``, its filters and
    timeouts); B/G mirroring; with ``cookies`` (SetRoutes under session affinity) the sticky rules before it;
    A/B testing's matched rule and primary-only rule."""
    c = ctx.canary
    svc, port = c.service_name, c.spec.service.port
    refs = [{k: v for k, v in ref.items()} for ref in c.spec.service.gateway_refs]
    matches = gateway_matches(c.spec.service.match) or [{"path": {"type": "PathPrefix", "value": "/"}}]
    timeouts = _gateway_timeouts(ctx)
    filters = _gateway_filters(ctx)

    def backend(name: str, weight: int) -> Obj:
        return {"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}

    def rule(backends: list[Obj]) -> Obj:
        out: Obj = {"matches": copy_json(matches)}
        if filters:
            out["filters"] = copy_json(filters)  # each rule its own: the weighted one gets a mirror appended
        out["backendRefs"] = backends
        if timeouts:
            out["timeouts"] = dict(timeouts)
        return out

    weighted = rule([backend(f"{svc}-primary", primary), backend(f"{svc}-canary", canary)])
    if mirrored and c.analysis.iterations > 0:
        # Blue/Green mirroring: every request also goes to the canary, whose answers are dropped
        weighted.setdefault("filters", []).append({"type": "RequestMirror", "requestMirror": {"backendRef": {
            "group": "", "kind": "Service", "name": f"{svc}-canary", "port": port}}})
    rules = [weighted]
    if cookies is not None:
        rules = sticky.gateway_rules(ctx, canary, weighted, cookies, backend)
    if c.analysis.match:
        # A/B testing: the weighted rule takes the matched requests; everyone else stays on the primary
        rules[0]["matches"] = merge_matches(gateway_matches(c.analysis.match), matches)
        rules.append(rule([backend(f"{svc}-primary", 100)]))
    spec: Obj = {"parentRefs": refs, "rules": rules}
    if c.spec.service.hosts:  # Flagger's Go omits an empty list
        spec["hostnames"] = list(c.spec.service.hosts)
    return spec


def _spec_patch(kind: Kind, spec: Obj) -> Obj:
    """A merge patch that makes the object's spec ``spec``: the HTTPRoute's hostnames go when there are none
    (Flagger updates the whole object; a merge patch would keep the old list)."""
    if kind is HTTP_ROUTE and "hostnames" not in spec:
        return {"spec": {**spec, "hostnames": None}}
    return {"spec": spec}


def _spec(ctx: TickContext, primary: int, canary: int, mirrored: bool = False,
          cookies: dict[str, str] | None = None) -> Obj:
    c = ctx.canary
    svc = c.service_name
    if c.router == "VirtualService":
        return _virtual_service(ctx, primary, canary, mirrored, cookies)
    if c.router == "HTTPRoute":
        return _http_route(ctx, primary, canary, mirrored, cookies)
    return {
        "service": c.spec.service.hosts[0] if c.spec.service.hosts else svc,
        "backends": [{"service": f"{svc}-canary", "weight": canary},
                     {"service": f"{svc}-primary", "weight": primary}],
    }  # fmt: skip


_IN_PROGRESS = ("Waiting", "Progressing", "WaitingPromotion")


def _shape(ctx: TickContext, spec: Obj) -> Any:
    """The spec as Flagger's Reconcile compares it: without weights (it rewrites the object when the rest
    drifts, not the weights); under session affinity without the sticky routes and the per-backend cookies."""
    affinity = ctx.canary.session_affinity
    if "backends" in spec:
        return (spec.get("service"), [b.get("service") for b in spec.get("backends") or []])
    if "http" in spec:  # a VirtualService: everything but the weights and the mirror
        routes = [r for r in spec.get("http") or [] if isinstance(r, dict)
                  and not (affinity is not None and sticky.is_istio_sticky_route(r, affinity))]
        return (spec.get("hosts"), spec.get("gateways"), [
            ({k: v for k, v in r.items() if k not in ("route", "mirror", "mirrorPercentage")},
             [(d.get("destination") or {}).get("host") for d in r.get("route") or []]) for r in routes])
    # B/G mirroring in progress: the rule's mirror filter is the run's, not drift (Flagger ignores the filters)
    filters = not (ctx.canary.analysis.mirror and ctx.phase in _IN_PROGRESS)
    rules = [r for r in spec.get("rules") or [{}] if isinstance(r, dict)
             and not (affinity is not None and sticky.is_gateway_sticky_rule(r, affinity))]
    return (spec.get("parentRefs"), spec.get("hostnames") or [],
            [(_comparable(r.get("matches")), [b.get("name") for b in r.get("backendRefs") or []],
              _comparable_filters(r.get("filters")) if filters else None, r.get("timeouts")) for r in rules])


def _comparable_filters(filters: Any) -> Any:
    """Rule filters without the API server's defaults (a mirror's backendRef ``group: ""``, ``kind: Service``)."""
    out = []
    for f in filters or []:
        if isinstance(f, dict) and isinstance((f.get("requestMirror") or {}).get("backendRef"), dict):
            ref = f["requestMirror"]["backendRef"]
            f = {**f, "requestMirror": {**f["requestMirror"], "backendRef": {"group": "", "kind": "Service", **ref}}}
        out.append(f)
    return out


def _comparable(matches: Any) -> Any:
    """Matches without the API server's defaults (a header match's ``type: Exact``) for comparison."""
    out = []
    for m in matches or []:
        if not isinstance(m, dict):
            continue
        m = dict(m)
        for field in ("headers", "queryParams"):
            if m.get(field):
                m[field] = [{**h, "type": h.get("type") or "Exact"} for h in m[field] if isinstance(h, dict)]
        out.append(m)
    return out


def weights_of(obj: Obj) -> tuple[int, int] | None:
    """``(primary, canary)`` from a TrafficSplit, HTTPRoute or VirtualService (``None`` without such backends)."""
    spec = obj.get("spec") or {}
    primary = canary = None
    if obj.get("kind") == "VirtualService":
        # GetRoutes: the last HTTP route with a canary destination carries the split; under session affinity
        # the destinations that set the cookie do (the weighted route, after the sticky ones)
        routes = [r for r in spec.get("http") or [] if isinstance(r, dict)]
        for route in routes:
            hosts = {str((d.get("destination") or {}).get("host", "")): int(d.get("weight", 0) or 0)
                     for d in route.get("route") or [] if isinstance(d, dict)}
            if any(h.endswith("-canary") for h in hosts):
                primary = next((w for h, w in hosts.items() if h.endswith("-primary")), 0)
                canary = next(w for h, w in hosts.items() if h.endswith("-canary"))
        for route in routes:
            for d in route.get("route") or []:
                host = str((d.get("destination") or {}).get("host", "")) if isinstance(d, dict) else ""
                if isinstance(d, dict) and d.get("headers") and host.endswith(("-primary", "-canary")):
                    weight = int(d.get("weight", 0) or 0)
                    primary, canary = (weight, canary) if host.endswith("-primary") else (primary, weight)
    elif obj.get("kind") == "Ingress":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if any(f"{NGINX}/{k}" in annotations for k in ("canary-by-cookie", "canary-by-header")):
            return 0, 100  # A/B: the matched requests all go to the canary
        try:
            canary = int(annotations.get(f"{NGINX}/canary-weight", "0"))
        except ValueError:
            return None
        primary = 100 - canary
    elif obj.get("kind") == "TrafficSplit":
        for b in spec.get("backends") or []:
            name, weight = str(b.get("service", "")), int(float(b.get("weight", 0) or 0))
            if name.endswith("-primary"):
                primary = weight
            elif name.endswith("-canary"):
                canary = weight
    else:
        rules = [r for r in spec.get("rules") or [] if isinstance(r, dict)]
        # session affinity: the rule whose backends set the cookies is the weighted one (GetRoutes)
        cookie_rules = [r for r in rules if any(isinstance(b, dict) and b.get("filters")
                                                for b in r.get("backendRefs") or [])]
        for rule in rules + cookie_rules[-1:]:
            if len(rule.get("backendRefs") or []) != 2:
                continue  # A/B testing: the primary-only rule for unmatched requests carries no split
            for b in rule.get("backendRefs") or []:
                name, weight = str(b.get("name", "")), int(b.get("weight", 1) or 0)
                if name.endswith("-primary"):
                    primary = weight
                elif name.endswith("-canary"):
                    canary = weight
    if primary is None or canary is None:
        return None
    return primary, canary


async def _reconcile_ingress(ctx: TickContext) -> None:
    """Flagger's NGINX router: ``<ingress>-canary``, a clone of the user's Ingress whose backend is the canary
    Service, with the canary annotations at weight 0."""
    c = ctx.canary
    ref = c.spec.ingress_ref
    if ref is None or not ref.name:
        raise RoutingError("ingress selector is empty")
    ingress = await ctx.cluster.get(INGRESS, c.namespace, ref.name)
    if ingress is None:
        raise RoutingError(f'ingress {ref.name}.{c.namespace} get query error: ingresses.networking.k8s.io '
                           f'"{ref.name}" not found')
    apex = c.service_name
    spec = copy_json(ingress.get("spec") or {})
    found = False
    for rule in spec.get("rules") or []:
        for path in ((rule or {}).get("http") or {}).get("paths") or []:
            service = ((path or {}).get("backend") or {}).get("service") or {}
            if service.get("name") == apex:
                service["name"] = f"{apex}-canary"
                found = True
    if not found:
        raise RoutingError(f"backend {apex} not found in ingress {ref.name}")
    name = route_name(ctx)
    existing = await ctx.cluster.get(INGRESS, c.namespace, name)
    meta = ingress.get("metadata") or {}
    if existing is None:
        await ctx.cluster.create(INGRESS.new(c.namespace, name, spec=spec) | {"metadata": {
            "name": name, "namespace": c.namespace, "labels": dict(meta.get("labels") or {}),
            "annotations": _nginx_annotations(dict(meta.get("annotations") or {}), 0),
            "ownerReferences": [owner_ref(ctx)]}})
        _note(ctx, 100, 0)
    elif existing.get("spec") != spec:
        await ctx.cluster.patch(INGRESS, c.namespace, name, {"spec": spec})


async def _set_ingress_weight(ctx: TickContext, canary: int) -> None:
    c = ctx.canary
    name = route_name(ctx)
    current = await ctx.cluster.get(INGRESS, c.namespace, name)
    if current is None:
        raise RoutingError(f'ingress {name}.{c.namespace} get query error: ingresses.networking.k8s.io '
                           f'"{name}" not found')
    annotations = dict((current.get("metadata") or {}).get("annotations") or {})
    if canary <= 0:
        wanted = _nginx_annotations(annotations, 0)
    elif c.analysis.match:
        wanted = _nginx_header_annotations(ctx, annotations)
    else:
        wanted = {**annotations, f"{NGINX}/canary-weight": str(canary), f"{NGINX}/canary": "true"}
    patch = {k: None for k in annotations if k not in wanted} | wanted
    await ctx.cluster.patch(INGRESS, c.namespace, name, {"metadata": {"annotations": patch}})


async def reconcile(ctx: TickContext) -> None:
    """Create the routing object at 100/0 if absent; rewrite it (weights back to 100/0) if names drifted."""
    c = ctx.canary
    kind = router_kind(ctx)
    if kind is INGRESS:
        await _reconcile_ingress(ctx)
        return
    name = c.service_name
    if kind is VIRTUAL_SERVICE:
        for host in (f"{name}-canary", f"{name}-primary"):
            rule = _destination_rule(ctx, host)
            found = await ctx.cluster.get(DESTINATION_RULE, c.namespace, host)
            if found is None:
                await ctx.cluster.create(DESTINATION_RULE.new(c.namespace, host, spec=rule) | {"metadata": {
                    "name": host, "namespace": c.namespace, "ownerReferences": [owner_ref(ctx)]}})
            elif found.get("spec") != rule:
                await ctx.cluster.patch(DESTINATION_RULE, c.namespace, host, {"spec": rule})
    existing = await ctx.cluster.get(kind, c.namespace, name)
    spec = _spec(ctx, 100, 0)
    if existing is None:
        meta: Obj = {"name": name, "namespace": c.namespace, "ownerReferences": [owner_ref(ctx)]}
        if c.spec.service.apex and kind in (HTTP_ROUTE, VIRTUAL_SERVICE):
            meta["labels"] = dict(c.spec.service.apex.labels)
            meta["annotations"] = dict(c.spec.service.apex.annotations)
        await ctx.cluster.create(kind.new(c.namespace, name, spec=spec) | {"metadata": meta})
        _note(ctx, 100, 0)
    elif _shape(ctx, existing.get("spec") or {}) != _shape(ctx, spec):
        await ctx.cluster.patch(kind, c.namespace, name, _spec_patch(kind, spec))
        _note(ctx, 100, 0)
        ctx.notes.mirrored = False


async def get_routes(ctx: TickContext) -> tuple[int, int]:
    """``GetRoutes``: ``(primary, canary)`` as the routing object says."""
    c = ctx.canary
    kind = router_kind(ctx)
    obj = await ctx.cluster.get(kind, c.namespace, route_name(ctx))
    weights = weights_of(obj) if obj is not None else None
    if kind is INGRESS and weights is None:
        raise RoutingError(f'ingress {route_name(ctx)}.{c.namespace} get query error: '
                           f'ingresses.networking.k8s.io "{route_name(ctx)}" not found')
    if weights is None or weights == (0, 0):
        raise RoutingError(f"{kind.kind} {c.service_name}.{c.namespace} does not contain routes for "
                           f"{c.service_name}-primary and {c.service_name}-canary")
    ctx.notes.weights = weights
    ctx.notes.mirrored = mirrored_by(obj) if obj is not None else False
    return weights


def mirrored_by(obj: Obj) -> bool:
    """Whether the routing object mirrors requests to the canary (Flagger's ``mirrored`` from GetRoutes)."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "VirtualService":
        return any(isinstance(r, dict) and (r.get("mirror") or {}).get("host") for r in spec.get("http") or [])
    if obj.get("kind") == "HTTPRoute":
        return any(f.get("type") == "RequestMirror" for r in spec.get("rules") or [] for f in r.get("filters") or []
                   if isinstance(f, dict))
    return False


async def set_routes(ctx: TickContext, primary: int, canary: int, *, mirrored: bool = False) -> None:
    """``SetRoutes``: rewrite the two backends with these weights (and mirror requests to the canary)."""
    c = ctx.canary
    kind = router_kind(ctx)
    if kind is INGRESS:
        await _set_ingress_weight(ctx, canary)
    elif c.session_affinity is not None and kind in (HTTP_ROUTE, VIRTUAL_SERVICE):
        changes = sticky.cookie_changes(ctx, c.session_affinity, canary)
        try:
            spec = _spec(ctx, primary, canary, mirrored, sticky.cookies_after(ctx, changes))
        except sticky.StickyError as err:
            raise RoutingError(str(err)) from None
        await ctx.cluster.patch(kind, c.namespace, c.service_name, _spec_patch(kind, spec))
        if changes:
            await set_session_cookies(ctx, changes)
    else:
        await ctx.cluster.patch(kind, c.namespace, c.service_name, _spec_patch(kind, _spec(ctx, primary, canary,
                                                                                          mirrored)))
    ctx.notes.mirrored = mirrored
    _note(ctx, primary, canary)


def _note(ctx: TickContext, primary: int, canary: int) -> None:
    if ctx.notes.weights != (primary, canary):
        ctx.notes.weights = (primary, canary)
        c = ctx.canary
        ctx.emit(WeightChanged(time=ctx.now(), namespace=c.namespace, name=c.name, primary=primary, canary=canary))
