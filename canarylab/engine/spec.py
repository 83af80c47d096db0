"""Canary and MetricTemplate (``flagger.app/v1beta1``) as models, with Flagger's defaults and validation.

:func:`parse_canary` returns a :class:`Canary` or raises :class:`SpecError` listing EVERY problem as
``<field path>: <rule> (got <value>)``, e.g. ``spec.analysis.stepWeight: must be between 1 and 100 (got -5)``.
The models accept extra fields (the engine also reads Canaries an API server already validated); the strict
check of what a user writes, against Flagger's CRD schema, happens before, in ``canarylab.validation``. The
defaults are Flagger's (flagger-spec section 10).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canarylab.engine.durations import parse_duration
from canarylab.engine.kinds import Obj

BUILTIN_METRICS = ("request-success-rate", "request-duration")
WEBHOOK_TYPES = ("", "confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
                 "confirm-promotion", "post-rollout", "rollback", "event")  # fmt: skip
SMI_PROVIDERS = re.compile(r"^(linkerd|smi:v1alpha[123](:[\w-]+)?|osm)$")
GATEWAY_PROVIDERS = ("gatewayapi:v1beta1", "gatewayapi:v1")
DEFAULT_PROVIDER = "linkerd"
_CRD_DURATION = re.compile(r"^[0-9]+(m|s)")


class _Model(BaseModel):
    # Flagger YAML carries fields canarylab does not use (Istio options, alerts, ...): keep them.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


_M = TypeVar("_M", bound="_Model")


class TargetRef(_Model):
    """``spec.targetRef``: the Deployment under canary."""

    api_version: str = Field("apps/v1", alias="apiVersion")
    kind: str = "Deployment"
    name: str


class IngressRef(_Model):
    """``spec.ingressRef``: the Ingress the NGINX router copies for the canary."""

    api_version: str = Field("networking.k8s.io/v1", alias="apiVersion")
    kind: str = "Ingress"
    name: str


class AutoscalerRef(_Model):
    """``spec.autoscalerRef``: the HPA whose copy scales the primary."""

    api_version: str = Field("autoscaling/v2", alias="apiVersion")
    kind: str = "HorizontalPodAutoscaler"
    name: str
    primary_scaler_replicas: dict[str, int] | None = Field(None, alias="primaryScalerReplicas")


class ServiceMeta(_Model):
    """Labels and annotations for a generated Service."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class CanaryService(_Model):
    """``spec.service``: what the three generated Services (and the routing object) look like."""

    name: str | None = None
    port: int
    port_name: str = Field("http", alias="portName")
    target_port: int | str | None = Field(None, alias="targetPort")
    app_protocol: str | None = Field(None, alias="appProtocol")
    hosts: list[str] = Field(default_factory=list)
    gateway_refs: list[dict[str, Any]] = Field(default_factory=list, alias="gatewayRefs")
    match: list[Any] | None = None
    # Istio's VirtualService options, carried to the route as Flagger carries them
    gateways: list[str] = Field(default_factory=list)
    delegation: bool = False
    rewrite: dict[str, Any] | None = None
    timeout: str | None = None
    backend_timeout: str | None = Field(None, alias="backendTimeout")  # the Gateway API's only
    retries: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None
    cors_policy: dict[str, Any] | None = Field(None, alias="corsPolicy")
    mirror: list[dict[str, Any]] = Field(default_factory=list)  # Gateway API RequestMirror filters
    traffic_policy: dict[str, Any] | None = Field(None, alias="trafficPolicy")
    headless: bool = False
    port_discovery: bool = Field(False, alias="portDiscovery")
    apex: ServiceMeta | None = None
    primary: ServiceMeta | None = None
    canary: ServiceMeta | None = None


class ThresholdRange(_Model):
    """Inclusive acceptable range of a metric."""

    min: float | None = None
    max: float | None = None


class TemplateRef(_Model):
    """A MetricTemplate reference; ``namespace`` defaults to the Canary's."""

    name: str
    namespace: str | None = None


class CanaryMetric(_Model):
    """``analysis.metrics[]``."""

    name: str
    interval: str | None = None
    threshold: float | None = None
    threshold_range: ThresholdRange | None = Field(None, alias="thresholdRange")
    query: str | None = None
    template_ref: TemplateRef | None = Field(None, alias="templateRef")
    template_variables: dict[str, str] = Field(default_factory=dict, alias="templateVariables")

    @property
    def builtin(self) -> bool:
        """Linkerd's built-in checks are evaluated by name, whatever else is set (flagger-spec 1.6)."""
        return self.name in BUILTIN_METRICS


class CanaryWebhook(_Model):
    """``analysis.webhooks[]``."""

    name: str
    type: str = ""
    url: str
    timeout: str | None = None
    retries: int = 0
    disable_tls: bool = Field(False, alias="disableTLS")
    mute_alert: bool = Field(False, alias="muteAlert")
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The hook type, with Flagger's empty type meaning ``rollout``."""
        return self.type or "rollout"

    @property
    def timeout_seconds(self) -> float:
        """10s when empty or shorter than two characters (Flagger's ``webhook.go``)."""
        if not self.timeout or len(self.timeout) < 2:
            return 10.0
        return parse_duration(self.timeout)


class CanaryAlert(_Model):
    """``analysis.alerts[]``: post to an AlertProvider the messages this severity admits."""

    name: str
    severity: Literal["info", "warn", "error", ""] = "info"
    provider_ref: TemplateRef = Field(alias="providerRef")


class SessionAffinity(_Model):
    """``analysis.sessionAffinity``: sticky canary sessions by cookie (Flagger's Gateway API and Istio routers)."""

    cookie_name: str = Field("", alias="cookieName")
    primary_cookie_name: str = Field("", alias="primaryCookieName")
    max_age: int = Field(0, alias="maxAge")
    domain: str = ""
    http_only: bool = Field(False, alias="httpOnly")
    partitioned: bool = False
    path: str = ""
    same_site: str = Field("", alias="sameSite")
    secure: bool = False

    @property
    def max_age_seconds(self) -> int:
        """``GetMaxAge``: a day when unset."""
        return self.max_age or 86400

    def build_cookie(self, cookie: str, max_age: int) -> str:
        """``BuildCookie``: the ``Set-Cookie`` value for ``name=value`` with its attributes, in Flagger's order."""
        out = f"{cookie}; Max-Age={max_age}"
        if self.domain:
            out += f"; Domain={self.domain}"
        if self.http_only:
            out += "; HttpOnly"
        if self.partitioned:
            out += "; Partitioned"
        if self.path:
            out += f"; Path={self.path}"
        if self.same_site:
            out += f"; SameSite={self.same_site}"
        if self.secure:
            out += "; Secure"
        return out


SESSION_AFFINITY_PROVIDERS = ("gatewayapi:v1", "gatewayapi:v1beta1", "istio")
"""The providers whose Flagger routers implement ``analysis.sessionAffinity``."""


class CanaryAnalysis(_Model):
    """``spec.analysis``."""

    interval: str | None = None
    threshold: int = 0
    max_weight: int = Field(0, alias="maxWeight")
    step_weight: int = Field(0, alias="stepWeight")
    step_weights: list[int] = Field(default_factory=list, alias="stepWeights")
    step_weight_promotion: int = Field(0, alias="stepWeightPromotion")
    iterations: int = 0
    match: list[Any] | None = None
    mirror: bool = False
    mirror_weight: int = Field(0, alias="mirrorWeight")
    primary_ready_threshold: int | None = Field(None, alias="primaryReadyThreshold")
    canary_ready_threshold: int | None = Field(None, alias="canaryReadyThreshold")
    metrics: list[CanaryMetric] = Field(default_factory=list)
    webhooks: list[CanaryWebhook] = Field(default_factory=list)
    alerts: list[CanaryAlert] = Field(default_factory=list)
    session_affinity: SessionAffinity | None = Field(None, alias="sessionAffinity")


class CanarySpec(_Model):
    """``spec`` of a Canary."""

    provider: str | None = None
    metrics_server: str | None = Field(None, alias="metricsServer")
    target_ref: TargetRef = Field(alias="targetRef")
    autoscaler_ref: AutoscalerRef | None = Field(None, alias="autoscalerRef")
    ingress_ref: IngressRef | None = Field(None, alias="ingressRef")
    service: CanaryService
    analysis: CanaryAnalysis | None = None
    canary_analysis: CanaryAnalysis | None = Field(None, alias="canaryAnalysis")
    progress_deadline_seconds: int | None = Field(None, alias="progressDeadlineSeconds")
    skip_analysis: bool = Field(False, alias="skipAnalysis")
    revert_on_deletion: bool = Field(False, alias="revertOnDeletion")
    suspend: bool = False


class Metadata(_Model):
    """The parts of ``metadata`` the engine reads."""

    name: str
    namespace: str = "default"
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class Canary(_Model):
    """A ``flagger.app/v1beta1`` Canary with Flagger's derived settings as properties."""

    api_version: str = Field("flagger.app/v1beta1", alias="apiVersion")
    kind: str = "Canary"
    metadata: Metadata
    spec: CanarySpec
    status: dict[str, Any] = Field(default_factory=dict)

    # ------------------------------------------------------------------------- Flagger's getters

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def key(self) -> str:
        """``name.namespace``, as Flagger writes it in messages."""
        return f"{self.metadata.name}.{self.metadata.namespace}"

    @property
    def target(self) -> str:
        return self.spec.target_ref.name

    @property
    def target_key(self) -> str:
        """``target.namespace``."""
        return f"{self.spec.target_ref.name}.{self.metadata.namespace}"

    @property
    def analysis(self) -> CanaryAnalysis:
        """``spec.analysis``, else the deprecated ``spec.canaryAnalysis``, else an empty one."""
        return self.spec.analysis or self.spec.canary_analysis or _EMPTY_ANALYSIS

    @property
    def session_affinity(self) -> SessionAffinity | None:
        """``spec.analysis.sessionAffinity`` (Flagger reads it from ``spec.analysis`` only, never from the
        deprecated ``canaryAnalysis``)."""
        return self.spec.analysis.session_affinity if self.spec.analysis is not None else None

    @property
    def skip_analysis(self) -> bool:
        """``skipAnalysis``, or no analysis at all (``SkipAnalysis()``)."""
        return self.spec.skip_analysis or (self.spec.analysis is None and self.spec.canary_analysis is None)

    @property
    def provider(self) -> str:
        return self.spec.provider or DEFAULT_PROVIDER

    @property
    def router(self) -> str:
        """``HTTPRoute`` for the Gateway API providers, ``VirtualService`` for Istio, else ``TrafficSplit``."""
        if self.provider.startswith("gatewayapi"):
            return "HTTPRoute"
        return {"istio": "VirtualService", "nginx": "Ingress"}.get(self.provider, "TrafficSplit")

    @property
    def service_name(self) -> str:
        return self.spec.service.name or self.spec.target_ref.name

    @property
    def interval_seconds(self) -> float:
        """The analysis interval: 60s by default or when unparsable, at least 10s."""
        text = self.analysis.interval
        try:
            seconds = parse_duration(text) if text else 60.0
        except ValueError:
            seconds = 60.0
        return max(10.0, seconds)

    @property
    def threshold(self) -> int:
        return self.analysis.threshold if self.analysis.threshold > 0 else 1

    @property
    def max_weight(self) -> int:
        """``min(100, last stepWeights)`` with stepWeights, else maxWeight if > 0, else 100."""
        a = self.analysis
        if a.step_weights:
            return min(100, a.step_weights[-1])
        return a.max_weight if a.max_weight > 0 else 100

    @property
    def strategy(self) -> str:
        """``ab-testing``, ``blue-green`` or ``canary`` (``DeploymentStrategy()``)."""
        a = self.analysis
        if a.match and a.iterations > 0:
            return "ab-testing"
        if a.iterations > 0:
            return "blue-green"
        return "canary"

    @property
    def progress_deadline_seconds(self) -> int:
        return self.spec.progress_deadline_seconds or 600

    @property
    def primary_ready_threshold(self) -> int:
        return self.analysis.primary_ready_threshold or 100

    @property
    def canary_ready_threshold(self) -> int:
        return self.analysis.canary_ready_threshold or 100

    def next_step_weight(self, weight: int) -> int:
        """Flagger's ``nextStepWeight`` (flagger-spec 2.6)."""
        a = self.analysis
        if a.step_weight > 0 or not a.step_weights:
            return a.step_weight
        if 100 - weight == 0:
            return 1
        if weight == 0:
            return min(100, a.step_weights[0])
        for i, w in enumerate(a.step_weights[:-1]):
            if weight == w:
                return min(100 - weight, a.step_weights[i + 1] - weight)
        return 100 - weight

    def steps(self) -> tuple[int, ...]:
        """The weight ladder a run climbs (overshoot included), or ``1..iterations`` for Blue/Green."""
        if self.strategy != "canary":
            return tuple(range(1, self.analysis.iterations + 1))
        out: list[int] = []
        weight, limit = 0, self.max_weight
        while weight < limit and len(out) < 101:
            step = self.next_step_weight(weight)
            if step <= 0:
                break
            weight = min(100, weight + step)
            out.append(weight)
        return tuple(out)

    def hooks(self, kind: str) -> list[CanaryWebhook]:
        """The webhooks of one type, in list order."""
        return [h for h in self.analysis.webhooks if h.kind == kind]


_EMPTY_ANALYSIS = CanaryAnalysis.model_validate({})


class MetricProvider(_Model):
    """``spec.provider`` of a MetricTemplate."""

    type: str = "prometheus"
    address: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    secret_ref: dict[str, str] | None = Field(None, alias="secretRef")
    insecure_skip_verify: bool = Field(False, alias="insecureSkipVerify")


class MetricTemplateSpec(_Model):
    provider: MetricProvider = Field(default_factory=lambda: MetricProvider.model_validate({}))
    query: str


class MetricTemplate(_Model):
    """A ``flagger.app/v1beta1`` MetricTemplate."""

    metadata: Metadata
    spec: MetricTemplateSpec


# --------------------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where, which rule, and the value found."""

    path: str
    rule: str
    value: Any = None
    has_value: bool = True

    def __str__(self) -> str:
        if not self.has_value:
            return f"{self.path}: {self.rule}"
        return f"{self.path}: {self.rule} (got {_show(self.value)})"


class SpecError(ValueError):
    """A Canary or MetricTemplate that cannot be run; ``problems`` lists every reason."""

    def __init__(self, what: str, problems: list[Problem]) -> None:
        self.what = what
        self.problems = problems
        lines = "; ".join(str(p) for p in problems)
        super().__init__(f"{what} is invalid: {lines}")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)[:80]
    return str(value)


_PLACEHOLDERS: dict[str, Any] = {
    "metadata": {"name": ""}, "spec": {}, "targetRef": {"name": ""}, "service": {"port": 1},
    "name": "", "port": 1, "url": "http://placeholder", "query": "",
}  # fmt: skip


_UNION_TAGS = {"int", "str", "float", "bool", "dict", "list", "none"}


def _walk(doc: Any, loc: tuple[Any, ...]) -> tuple[list[Any], Any, Any]:
    """The real path of a pydantic ``loc`` in ``doc`` (union member tags dropped), its parent and key."""
    path: list[Any] = []
    parent, key, node = None, None, doc
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            parent, key, node = node, part, node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and part not in _UNION_TAGS:
            parent, key, node = node, part, None  # a missing key
            path.append(part)
            break
        else:
            break
    return path, parent, key


def _format_path(path: list[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _pydantic_round(err: ValidationError, doc: Any) -> list[Problem]:
    """Problems for one failed validation; repairs ``doc`` so the next round can look further."""
    out: list[Problem] = []
    repairs: list[tuple[Any, Any, str]] = []
    for e in err.errors():
        path, parent, key = _walk(doc, tuple(e["loc"]))
        where = _format_path(path)
        kind, value = e["type"], e.get("input")
        if kind == "missing":
            out.append(Problem(where, "is required", has_value=False))
        elif kind.startswith("int"):
            out.append(Problem(where, "must be a whole number", value))
        elif kind.startswith("float"):
            out.append(Problem(where, "must be a number", value))
        elif kind.startswith("bool"):
            out.append(Problem(where, "must be true or false", value))
        elif kind in ("dict_type", "model_type", "model_attributes_type"):
            out.append(Problem(where, "must be a mapping", value))
        elif kind == "list_type":
            out.append(Problem(where, "must be a list", value))
        elif kind == "string_type":
            out.append(Problem(where, "must be a string", value))
        else:
            out.append(Problem(where, e["msg"][0].lower() + e["msg"][1:], value))
        if parent is not None:
            repairs.append((parent, key, kind))
    for parent, key, kind in repairs:
        if kind == "missing" or (isinstance(key, str) and key in _PLACEHOLDERS):
            if isinstance(parent, dict):
                parent[key] = json.loads(json.dumps(_PLACEHOLDERS.get(str(key), "")))
        elif isinstance(parent, dict):
            parent.pop(key, None)
        elif isinstance(parent, list) and isinstance(key, int) and key < len(parent):
            parent[key] = None  # dropped below, keeping the indices of this round stable
    # pydantic reports each member of a union separately; keep one line per path
    seen: dict[str, Problem] = {}
    for p in out:
        seen.setdefault(p.path, p)
    _drop_nones(doc)
    return list(seen.values())


def _drop_nones(node: Any) -> None:
    if isinstance(node, dict):
        for v in node.values():
            _drop_nones(v)
    elif isinstance(node, list):
        node[:] = [v for v in node if v is not None]
        for v in node:
            _drop_nones(v)


def _validate_all(model: type[_M], obj: Any) -> tuple[_M | None, list[Problem]]:
    """Validate; on failure repair and retry, so every problem is found in one call."""
    doc = json.loads(json.dumps(obj, default=str))
    problems: list[Problem] = []
    for _ in range(8):
        try:
            return model.model_validate(doc), problems
        except ValidationError as err:
            found = _pydantic_round(err, doc)
            problems += [p for p in found if p.path not in {q.path for q in problems}]
            if not found:
                break
    return None, problems


# --------------------------------------------------------------------------------------------- parse


def parse_canary(obj: Obj) -> Canary:
    """The Canary in ``obj``, or :class:`SpecError` naming every problem with its field path."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = f"Canary {meta.get('name')}.{meta.get('namespace', 'default')}" if isinstance(meta, dict) \
        else "Canary"
    canary, problems = _validate_all(Canary, obj)
    reported = tuple(p.path for p in problems)
    more = _raw_rules(obj) + (_rules(canary) if canary is not None else [])
    # A field with a typing problem was replaced by a placeholder: do not report it twice.
    problems += [p for p in more if not p.path.startswith(reported) or not reported]
    if problems or canary is None:
        raise SpecError(name, problems)
    return canary


def parse_metric_template(obj: Obj) -> MetricTemplate:
    """The MetricTemplate in ``obj``, or :class:`SpecError`."""
    meta = obj.get("metadata") or {}
    name = f"MetricTemplate {meta.get('name')}.{meta.get('namespace', 'default')}"
    template, problems = _validate_all(MetricTemplate, obj)
    if template is None or problems:
        raise SpecError(name, problems)
    return template


def _raw_rules(obj: Obj) -> list[Problem]:
    """Rules that need the raw document (so they still run when typing failed elsewhere)."""
    out: list[Problem] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return out
    analysis = spec.get("analysis") or spec.get("canaryAnalysis")
    provider = spec.get("provider") or DEFAULT_PROVIDER
    if isinstance(analysis, dict) and isinstance(provider, str) and SMI_PROVIDERS.match(provider):
        if analysis.get("match"):
            out.append(Problem("spec.analysis.match", f"A/B testing needs header matching, which provider "
                               f"{provider} (SMI TrafficSplit) cannot do: Flagger would send 100% of the "
                               "traffic to the canary; remove match or use provider gatewayapi:v1beta1",
                               analysis["match"]))  # fmt: skip
        if analysis.get("mirror"):
            out.append(Problem("spec.analysis.mirror", f"traffic mirroring is not supported by provider "
                               f"{provider} (SMI TrafficSplit): the canary would stay at weight 0; remove "
                               "mirror", analysis["mirror"]))  # fmt: skip
    raw_analysis = spec.get("analysis")
    affinity = raw_analysis.get("sessionAffinity") if isinstance(raw_analysis, dict) else None
    if affinity and isinstance(provider, str) and provider not in SESSION_AFFINITY_PROVIDERS:
        out.append(Problem("spec.analysis.sessionAffinity", "sticky canary sessions work only with providers "
                           f"{', '.join(SESSION_AFFINITY_PROVIDERS)} (Flagger's Gateway API and Istio routers); "
                           f"Flagger's {provider} router ignores sessionAffinity and users would not stick to the "
                           "canary: remove it or change spec.provider", affinity))
    elif isinstance(affinity, dict) and (affinity.get("cookieName") or "") == (affinity.get("primaryCookieName")
                                                                                or ""):
        out.append(Problem("spec.analysis.sessionAffinity.primaryCookieName", "can't use the same cookie name for "
                           "both primary and cookie name; please update them to be different (set cookieName, "
                           "and primaryCookieName to another name or leave it out)",
                           affinity.get("primaryCookieName") or ""))  # fmt: skip
    raw_svc = spec.get("service")
    if provider == "istio" and isinstance(raw_svc, dict) and str(raw_svc.get("appProtocol", "")).lower() == "tcp":
        out.append(Problem("spec.service.appProtocol", "TCP routing on Istio is not implemented by canarylab; "
                           "use an HTTP service", raw_svc["appProtocol"]))
    if isinstance(provider, str) and provider.startswith("gatewayapi"):
        raw_service = spec.get("service")
        service: dict[str, Any] = raw_service if isinstance(raw_service, dict) else {}
        for where, requests in (("spec.service.match", service.get("match")),
                                ("spec.analysis.match", (analysis or {}).get("match")
                                 if isinstance(analysis, dict) else None)):
            out.extend(_gateway_match_problems(where, requests))
    return out


def _gateway_match_problems(where: str, requests: Any) -> list[Problem]:
    """What the Gateway API cannot express (Flagger's mapRouteMatches errors), field by field."""
    if requests is None:
        return []
    if not isinstance(requests, list):
        return [Problem(where, "must be a list of request matches (headers, uri, method, queryParams)", requests)]
    out: list[Problem] = []
    for i, request in enumerate(requests):
        at = f"{where}[{i}]"
        if not isinstance(request, dict):
            out.append(Problem(at, "must be a request match (headers, uri, method, queryParams)", request))
            continue
        for field, allowed in (("headers", ("exact", "regex")), ("queryParams", ("exact", "regex"))):
            conditions = request.get(field)
            if conditions is None:
                continue
            if not isinstance(conditions, dict):
                out.append(Problem(f"{at}.{field}", "must map names to {exact: ...} or {regex: ...}", conditions))
                continue
            for name, condition in conditions.items():
                if not isinstance(condition, dict) or not any(condition.get(k) for k in allowed):
                    out.append(Problem(f"{at}.{field}.{name}", "the Gateway API matches only exact or regex "
                                       f"{'header' if field == 'headers' else 'query'} values", condition))
        uri = request.get("uri")
        if uri is not None and (not isinstance(uri, dict) or not any(uri.get(k) for k in ("exact", "prefix", "regex"))):
            out.append(Problem(f"{at}.uri", "the Gateway API matches a path by exact, prefix or regex", uri))
        method = request.get("method")
        if method is not None and (not isinstance(method, dict) or not method.get("exact")):
            out.append(Problem(f"{at}.method", "the Gateway API matches a method only exactly", method))
    return out


def _duration(path: str, text: str | None, out: list[Problem]) -> None:
    if text is None:
        return
    try:
        parse_duration(text)
        ok = bool(_CRD_DURATION.match(text))
    except ValueError:
        ok = False
    if not ok:
        out.append(Problem(path, "must be a duration such as 30s, 1m or 1m30s", text))


def _rules(c: Canary) -> list[Problem]:
    out: list[Problem] = []
    spec = c.spec
    if spec.target_ref.kind not in ("Deployment", "DaemonSet"):
        out.append(Problem("spec.targetRef.kind", "must be Deployment or DaemonSet (the workloads Flagger and "
                           "canarylab run canaries on)", spec.target_ref.kind))
    elif spec.target_ref.kind == "DaemonSet" and spec.autoscaler_ref is not None:
        out.append(Problem("spec.autoscalerRef", "a DaemonSet runs one pod per node and cannot be autoscaled: "
                           "remove autoscalerRef", spec.autoscaler_ref.name))
    if not spec.target_ref.name:
        out.append(Problem("spec.targetRef.name", "must not be empty", spec.target_ref.name))
    if not 1 <= spec.service.port <= 65535:
        out.append(Problem("spec.service.port", "must be between 1 and 65535", spec.service.port))
    provider = c.provider
    if not SMI_PROVIDERS.match(provider) and provider not in GATEWAY_PROVIDERS and provider not in ("istio", "nginx"):
        out.append(Problem("spec.provider", "must be linkerd, smi:v1alpha2, gatewayapi:v1beta1, gatewayapi:v1, "
                           "istio or nginx (canarylab routes with TrafficSplit, HTTPRoute, VirtualService or a "
                           "canary Ingress)", provider))
    if provider == "nginx":
        if spec.ingress_ref is None:
            out.append(Problem("spec.ingressRef", "is required with provider nginx (the Ingress whose canary "
                               "copy takes the weight)", has_value=False))
        elif spec.ingress_ref.kind != "Ingress":
            out.append(Problem("spec.ingressRef.kind", "must be Ingress", spec.ingress_ref.kind))
        if c.analysis.mirror:
            out.append(Problem("spec.analysis.mirror", "the NGINX ingress cannot mirror traffic; remove mirror "
                               "or use provider istio or gatewayapi:v1", True))
    if provider == "istio" and spec.service.delegation and (spec.service.hosts or spec.service.gateways):
        out.append(Problem("spec.service.delegation", f"VirtualService {c.service_name}.{c.namespace} cannot "
                           "have hosts and gateways when delegation enabled", True))
    elif provider in GATEWAY_PROVIDERS and not spec.service.gateway_refs:
        out.append(Problem("spec.service.gatewayRefs", "GatewayRefs must be specified when using Gateway API "
                           "as a provider (for Linkerd: the apex Service, group core, kind Service)",
                           has_value=False))  # fmt: skip
    if provider in GATEWAY_PROVIDERS and c.session_affinity is not None and (spec.service.headers or {}).get(
            "response") is not None:
        # Flagger's rule that expires the cookie after a run adds a second ResponseHeaderModifier to the rule, which
        # the Gateway API's CRD refuses: every promotion and rollback would fail (seen with Flagger v1.44)
        out.append(Problem("spec.service.headers.response", "cannot be combined with analysis.sessionAffinity on the "
                           "Gateway API: after the run Flagger's route would carry two ResponseHeaderModifier filters, "
                           "which the API server refuses (\"ResponseHeaderModifier filter cannot be repeated\"), and "
                           "promotion and rollback would fail; remove the response headers or sessionAffinity",
                           spec.service.headers.get("response") if spec.service.headers else None))
    if spec.autoscaler_ref is not None:
        ref = spec.autoscaler_ref
        if ref.kind != "HorizontalPodAutoscaler":
            out.append(Problem("spec.autoscalerRef.kind", "must be HorizontalPodAutoscaler", ref.kind))
        if ref.api_version not in ("autoscaling/v2", "autoscaling/v2beta2"):
            out.append(Problem("spec.autoscalerRef.apiVersion", "must be autoscaling/v2", ref.api_version))
    if spec.progress_deadline_seconds is not None and spec.progress_deadline_seconds < 1:
        out.append(Problem("spec.progressDeadlineSeconds", "must be at least 1", spec.progress_deadline_seconds))
    if spec.analysis is None and spec.canary_analysis is None:
        if not spec.skip_analysis:
            out.append(Problem("spec.analysis", "is required (or set skipAnalysis: true)", has_value=False))
        return out
    a = c.analysis
    base = "spec.analysis" if spec.analysis is not None else "spec.canaryAnalysis"
    _duration(f"{base}.interval", a.interval, out)
    if a.threshold < 0:
        out.append(Problem(f"{base}.threshold", "must be at least 1", a.threshold))
    if a.step_weight < 0 or a.step_weight > 100:
        out.append(Problem(f"{base}.stepWeight", "must be between 1 and 100", a.step_weight))
    elif a.step_weight == 0 and not a.step_weights and a.iterations <= 0:
        out.append(Problem(f"{base}.stepWeight", "must be between 1 and 100 (or set stepWeights or iterations)",
                           a.step_weight))
    if a.max_weight < 0 or a.max_weight > 100:
        out.append(Problem(f"{base}.maxWeight", "must be between 1 and 100", a.max_weight))
    if a.step_weight_promotion < 0 or a.step_weight_promotion > 100:
        out.append(Problem(f"{base}.stepWeightPromotion", "must be between 0 and 100", a.step_weight_promotion))
    if a.iterations < 0:
        out.append(Problem(f"{base}.iterations", "must be 0 or more", a.iterations))
    for i, w in enumerate(a.step_weights):
        if w < 1:
            out.append(Problem(f"{base}.stepWeights[{i}]", "must be at least 1", w))
    if any(b <= a_ for a_, b in zip(a.step_weights, a.step_weights[1:], strict=False)):
        out.append(Problem(f"{base}.stepWeights", "must be strictly increasing", a.step_weights))
    for name, value in (("primaryReadyThreshold", a.primary_ready_threshold),
                        ("canaryReadyThreshold", a.canary_ready_threshold)):
        if value is not None and not 1 <= value <= 100:
            out.append(Problem(f"{base}.{name}", "must be between 1 and 100", value))
    for i, m in enumerate(a.metrics):
        path = f"{base}.metrics[{i}]"
        if not m.builtin and not m.query and m.template_ref is None:
            out.append(Problem(f"{path}.name", "is not a built-in metric (request-success-rate, "
                               "request-duration) and has no query or templateRef", m.name))
        _duration(f"{path}.interval", m.interval, out)
        tr = m.threshold_range
        if tr is not None and tr.min is not None and tr.max is not None and tr.min > tr.max:
            out.append(Problem(f"{path}.thresholdRange", "min must not exceed max", {"min": tr.min, "max": tr.max}))
    names: set[str] = set()
    for i, h in enumerate(a.webhooks):
        path = f"{base}.webhooks[{i}]"
        if h.type not in WEBHOOK_TYPES:
            out.append(Problem(f"{path}.type", "must be one of " + ", ".join(t for t in WEBHOOK_TYPES if t),
                               h.type))
        if not re.match(r"^https?://", h.url):
            out.append(Problem(f"{path}.url", "must be an http:// or https:// URL", h.url))
        if h.timeout is not None and len(h.timeout) >= 2:
            _duration(f"{path}.timeout", h.timeout, out)
        if h.retries < 0:
            out.append(Problem(f"{path}.retries", "must be 0 or more", h.retries))
        if h.name in names:
            out.append(Problem(f"{path}.name", "must be unique among the webhooks", h.name))
        names.add(h.name)
    return out
