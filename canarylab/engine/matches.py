"""Request matches as Flagger's routers write them: Istio-style ``match`` entries mapped to the Gateway API, and
the merges of the analysis (or cookie) matches into the service's (``mergeMatchConditions``)."""

from __future__ import annotations

from typing import Any

from canarylab.engine.documents import copy_json
from canarylab.engine.kinds import Obj


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


def merge_matches(analysis: list[Obj], service: list[Obj]) -> list[Obj]:
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


def istio_merge(analysis: list[Any], service: list[Any]) -> list[Any]:
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
