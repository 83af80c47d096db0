"""The routing object: SMI ``TrafficSplit`` (v1alpha2, int weights) or Gateway API ``HTTPRoute``.

Weights are always read back from the object (flagger-spec 4.2, 4.3), never from the Canary status.
"""

from __future__ import annotations

from typing import Any

from canarylab.engine.context import TickContext
from canarylab.engine.events import WeightChanged
from canarylab.engine.kinds import HTTP_ROUTE, TRAFFIC_SPLIT, Kind, Obj
from canarylab.engine.targets import owner_ref


class RoutingError(Exception):
    """The routing object is missing or unusable; the message is the Warning event text."""


def router_kind(ctx: TickContext) -> Kind:
    return HTTP_ROUTE if ctx.canary.router == "HTTPRoute" else TRAFFIC_SPLIT


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


def _spec(ctx: TickContext, primary: int, canary: int) -> Obj:
    c = ctx.canary
    svc = c.service_name
    if c.router == "HTTPRoute":
        port = c.spec.service.port
        refs = [{k: v for k, v in ref.items()} for ref in c.spec.service.gateway_refs]
        matches = gateway_matches(c.spec.service.match) or [{"path": {"type": "PathPrefix", "value": "/"}}]

        def backend(name: str, weight: int) -> Obj:
            return {"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}

        rules: list[Obj] = [{"matches": matches,
                             "backendRefs": [backend(f"{svc}-primary", primary), backend(f"{svc}-canary", canary)]}]
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
    """``(primary, canary)`` from a TrafficSplit or HTTPRoute (``None`` if it has no such backends)."""
    spec = obj.get("spec") or {}
    primary = canary = None
    if obj.get("kind") == "TrafficSplit":
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
    existing = await ctx.cluster.get(kind, c.namespace, name)
    spec = _spec(ctx, 100, 0)
    if existing is None:
        meta: Obj = {"name": name, "namespace": c.namespace, "ownerReferences": [owner_ref(ctx)]}
        if c.spec.service.apex and kind is HTTP_ROUTE:
            meta["labels"] = dict(c.spec.service.apex.labels)
            meta["annotations"] = dict(c.spec.service.apex.annotations)
        await ctx.cluster.create(kind.new(c.namespace, name, spec=spec) | {"metadata": meta})
        _note(ctx, 100, 0)
    elif _shape(existing.get("spec") or {}) != _shape(spec):
        await ctx.cluster.patch(kind, c.namespace, name, {"spec": spec})
        _note(ctx, 100, 0)


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
    return weights


async def set_routes(ctx: TickContext, primary: int, canary: int) -> None:
    """``SetRoutes``: rewrite the two backends with these weights."""
    c = ctx.canary
    kind = router_kind(ctx)
    await ctx.cluster.patch(kind, c.namespace, c.service_name, {"spec": _spec(ctx, primary, canary)})
    _note(ctx, primary, canary)


def _note(ctx: TickContext, primary: int, canary: int) -> None:
    if ctx.notes.weights != (primary, canary):
        ctx.notes.weights = (primary, canary)
        c = ctx.canary
        ctx.emit(WeightChanged(time=ctx.now(), namespace=c.namespace, name=c.name, primary=primary, canary=canary))
