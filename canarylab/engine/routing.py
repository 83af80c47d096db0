"""The routing object: SMI ``TrafficSplit`` (v1alpha2, int weights), Gateway API ``HTTPRoute`` or Istio
``VirtualService`` (with a ``DestinationRule`` per generated Service), written as Flagger's routers write them.

Weights are always read back from the object (flagger-spec 4.2, 4.3), never from the Canary status.
"""

from __future__ import annotations

from typing import Any

from canarylab.engine.context import TickContext
from canarylab.engine.documents import copy_json
from canarylab.engine.events import WeightChanged
from canarylab.engine.kinds import DESTINATION_RULE, HTTP_ROUTE, TRAFFIC_SPLIT, VIRTUAL_SERVICE, Kind, Obj
from canarylab.engine.targets import owner_ref


class RoutingError(Exception):
    """The routing object is missing or unusable; the message is the Warning event text."""


def router_kind(ctx: TickContext) -> Kind:
    return {"HTTPRoute": HTTP_ROUTE, "VirtualService": VIRTUAL_SERVICE}.get(ctx.canary.router, TRAFFIC_SPLIT)


def gateway_matches(requests: list[Any] | None) -> list[Obj]:
    """Flagger's ``mapRouteMatches``: Istio-style ``match`` entries as Gateway API ``HTTPRouteMatch``es.

    Headers and query parameters are written in name order (Flagger ranges over a Go map). The spec
    validation has already refused selectors the Gateway API cannot express.
    """
    out: list[Obj] = []
    for request in requests or []:
        if not isinstance(request, dict):
            continue
        match: Obj = {}
        uri = request.get("uri") or {}
        for key, kind in (("regex", "RegularExpression"), ("exact", "Exact"), ("prefix", "PathPrefix")):
            if uri.get(key):
                match["path"] = {"type": kind, "value": uri[key]}
                break
        method = (request.get("method") or {}).get("exact")
        if method:
            match["method"] = method
        for field, target in (("headers", "headers"), ("queryParams", "queryParams")):
            found = []
            for name, condition in sorted((request.get(field) or {}).items()):
                condition = condition or {}
                if condition.get("exact"):
                    found.append({"name": name, "type": "Exact", "value": condition["exact"]})
                elif condition.get("regex"):
                    found.append({"name": name, "type": "RegularExpression", "value": condition["regex"]})
            if found:
                match[target] = found
        if match:
            out.append(match)
    return out


def _merge_matches(analysis: list[Obj], service: list[Obj]) -> list[Obj]:
    """``mergeMatchConditions``: every service match, with each analysis match's headers and query params."""
    if not analysis:
        return service
    if not service:
        return analysis
    merged = []
    for a in analysis:
        for s in service:
            m = dict(s)
            if a.get("headers"):
                m["headers"] = a["headers"]
            if a.get("queryParams"):
                m["queryParams"] = a["queryParams"]
            merged.append(m)
    return merged


def _istio_merge(analysis: list[Any], service: list[Any]) -> list[Any]:
    """Istio's ``mergeMatchConditions``: each service match with the analysis match's headers and sourceLabels."""
    if not service:
        return [copy_json(m) for m in analysis]
    merged = []
    for a in analysis:
        for s in service:
            m = copy_json(s)
            if isinstance(a, dict) and a.get("headers") is not None:
                m["headers"] = copy_json(a["headers"])
            if isinstance(a, dict) and a.get("sourceLabels") is not None:
                m["sourceLabels"] = copy_json(a["sourceLabels"])
            merged.append(m)
    return merged


def _virtual_service(ctx: TickContext, primary: int, canary: int, mirrored: bool) -> Obj:
    """Flagger's Istio router: hosts (the apex always), gateways (``mesh`` by default), one weighted HTTP route
    carrying the service's match, rewrite, timeout, retries, headers and corsPolicy."""
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
    if mirrored:
        weighted["mirror"] = {"host": f"{svc}-canary"}
        if c.analysis.mirror_weight > 0:
            weighted["mirrorPercentage"] = {"value": float(c.analysis.mirror_weight)}
    http = [weighted]
    if c.analysis.match:
        weighted["match"] = _istio_merge(c.analysis.match, s.match or [])
        http.append(route(s.match, [destination(f"{svc}-primary", 100)]))
    return {"hosts": hosts, "gateways": gateways, "http": http}


def _destination_rule(ctx: TickContext, host: str) -> Obj:
    spec: Obj = {"host": host}
    if ctx.canary.spec.service.traffic_policy:
        spec["trafficPolicy"] = copy_json(ctx.canary.spec.service.traffic_policy)
    return spec


def _spec(ctx: TickContext, primary: int, canary: int, mirrored: bool = False) -> Obj:
    c = ctx.canary
    svc = c.service_name
    if c.router == "VirtualService":
        return _virtual_service(ctx, primary, canary, mirrored)
    if c.router == "HTTPRoute":
        port = c.spec.service.port
        refs = [{k: v for k, v in ref.items()} for ref in c.spec.service.gateway_refs]
        matches = gateway_matches(c.spec.service.match) or [{"path": {"type": "PathPrefix", "value": "/"}}]

        def backend(name: str, weight: int) -> Obj:
            return {"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}

        rules: list[Obj] = [{"matches": matches,
                             "backendRefs": [backend(f"{svc}-primary", primary), backend(f"{svc}-canary", canary)]}]
        if mirrored and c.analysis.iterations > 0:
            # Blue/Green mirroring: every request also goes to the canary, whose answers are dropped
            rules[0]["filters"] = [{"type": "RequestMirror", "requestMirror": {"backendRef": {
                "group": "", "kind": "Service", "name": f"{svc}-canary", "port": port}}}]
        if c.analysis.match:
            # A/B testing: the weighted rule takes the matched requests; everyone else stays on the primary
            rules[0]["matches"] = _merge_matches(gateway_matches(c.analysis.match), matches)
            rules.append({"matches": matches, "backendRefs": [backend(f"{svc}-primary", 100)]})
        return {"parentRefs": refs, "hostnames": list(c.spec.service.hosts), "rules": rules}
    return {
        "service": c.spec.service.hosts[0] if c.spec.service.hosts else svc,
        "backends": [{"service": f"{svc}-canary", "weight": canary},
                     {"service": f"{svc}-primary", "weight": primary}],
    }  # fmt: skip


def _shape(spec: Obj) -> Any:
    """The spec without weights: Flagger rewrites the object only when names drift, not weights."""
    if "backends" in spec:
        return (spec.get("service"), [b.get("service") for b in spec.get("backends") or []])
    if "http" in spec:  # a VirtualService: everything but the weights and the mirror
        return (spec.get("hosts"), spec.get("gateways"), [
            ({k: v for k, v in r.items() if k not in ("route", "mirror", "mirrorPercentage")},
             [(d.get("destination") or {}).get("host") for d in r.get("route") or []])
            for r in spec.get("http") or [] if isinstance(r, dict)])
    rules = spec.get("rules") or [{}]
    return (spec.get("parentRefs"), spec.get("hostnames") or [],
            [(_comparable(r.get("matches")), [b.get("name") for b in r.get("backendRefs") or []]) for r in rules])


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
        # the first HTTP route with a canary destination carries the split (GetRoutes)
        for route in spec.get("http") or []:
            hosts = {str((d.get("destination") or {}).get("host", "")): int(d.get("weight", 0) or 0)
                     for d in route.get("route") or [] if isinstance(d, dict)}
            if any(h.endswith("-canary") for h in hosts):
                primary = next((w for h, w in hosts.items() if h.endswith("-primary")), 0)
                canary = next(w for h, w in hosts.items() if h.endswith("-canary"))
                break
    elif obj.get("kind") == "TrafficSplit":
        for b in spec.get("backends") or []:
            name, weight = str(b.get("service", "")), int(float(b.get("weight", 0) or 0))
            if name.endswith("-primary"):
                primary = weight
            elif name.endswith("-canary"):
                canary = weight
    else:
        for rule in spec.get("rules") or []:
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


async def reconcile(ctx: TickContext) -> None:
    """Create the routing object at 100/0 if absent; rewrite it (weights back to 100/0) if names drifted."""
    c = ctx.canary
    kind = router_kind(ctx)
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
    elif _shape(existing.get("spec") or {}) != _shape(spec):
        await ctx.cluster.patch(kind, c.namespace, name, {"spec": spec})
        _note(ctx, 100, 0)
        ctx.notes.mirrored = False


async def get_routes(ctx: TickContext) -> tuple[int, int]:
    """``GetRoutes``: ``(primary, canary)`` as the routing object says."""
    c = ctx.canary
    kind = router_kind(ctx)
    obj = await ctx.cluster.get(kind, c.namespace, c.service_name)
    weights = weights_of(obj) if obj is not None else None
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
    await ctx.cluster.patch(kind, c.namespace, c.service_name, {"spec": _spec(ctx, primary, canary, mirrored)})
    ctx.notes.mirrored = mirrored
    _note(ctx, primary, canary)


def _note(ctx: TickContext, primary: int, canary: int) -> None:
    if ctx.notes.weights != (primary, canary):
        ctx.notes.weights = (primary, canary)
        c = ctx.canary
        ctx.emit(WeightChanged(time=ctx.now(), namespace=c.namespace, name=c.name, primary=primary, canary=canary))
