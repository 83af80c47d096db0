"""kr8s classes for every kind the engine reads and writes.

kr8s ships classes for the core kinds (Deployment, Service, HPA, Event, ...); Flagger's Canary and
MetricTemplate, the SMI TrafficSplit and the Gateway API HTTPRoute are declared here, so kr8s builds their URLs
(``/apis/flagger.app/v1beta1/namespaces/test/canaries``) without asking the server's discovery API.
"""

from __future__ import annotations

from kr8s.asyncio.objects import APIObject, get_class

from canarylab.engine.kinds import ALL_KINDS, Kind


class Canary(APIObject):
    """``canaries.flagger.app/v1beta1`` (flagger-spec 1.1): namespaced, with a status subresource."""

    version = "flagger.app/v1beta1"
    endpoint = "canaries"
    kind = "Canary"
    plural = "canaries"
    singular = "canary"
    namespaced = True


class MetricTemplate(APIObject):
    """``metrictemplates.flagger.app/v1beta1`` (flagger-spec 1.9)."""

    version = "flagger.app/v1beta1"
    endpoint = "metrictemplates"
    kind = "MetricTemplate"
    plural = "metrictemplates"
    singular = "metrictemplate"
    namespaced = True


class AlertProvider(APIObject):
    """``alertproviders.flagger.app/v1beta1``: where ``analysis.alerts`` are posted."""

    version = "flagger.app/v1beta1"
    endpoint = "alertproviders"
    kind = "AlertProvider"
    plural = "alertproviders"
    singular = "alertprovider"
    namespaced = True


class TrafficSplit(APIObject):
    """``trafficsplits.split.smi-spec.io/v1alpha2``: the routing object of provider ``linkerd`` (flagger-spec 4.2)."""

    version = "split.smi-spec.io/v1alpha2"
    endpoint = "trafficsplits"
    kind = "TrafficSplit"
    plural = "trafficsplits"
    singular = "trafficsplit"
    namespaced = True


class HTTPRoute(APIObject):
    """``httproutes.gateway.networking.k8s.io/v1beta1``: the routing object of ``gatewayapi:v1beta1`` (4.3)."""

    version = "gateway.networking.k8s.io/v1beta1"
    endpoint = "httproutes"
    kind = "HTTPRoute"
    plural = "httproutes"
    singular = "httproute"
    namespaced = True


class VirtualService(APIObject):
    """``virtualservices.networking.istio.io/v1beta1``: the routing object of provider ``istio``."""

    version = "networking.istio.io/v1beta1"
    endpoint = "virtualservices"
    kind = "VirtualService"
    plural = "virtualservices"
    singular = "virtualservice"
    namespaced = True


class DestinationRule(APIObject):
    """``destinationrules.networking.istio.io/v1beta1``: one per generated Service with provider ``istio``."""

    version = "networking.istio.io/v1beta1"
    endpoint = "destinationrules"
    kind = "DestinationRule"
    plural = "destinationrules"
    singular = "destinationrule"
    namespaced = True


_OURS: dict[str, type[APIObject]] = {c.kind: c for c in (Canary, MetricTemplate, AlertProvider, TrafficSplit,
                                                          HTTPRoute, VirtualService, DestinationRule)}


def _resolve(kind: Kind) -> type[APIObject]:
    if kind.kind in _OURS:
        return _OURS[kind.kind]
    cls = get_class(kind.kind, kind.api_version)
    if (cls.version, cls.endpoint, cls.namespaced) != (kind.api_version, kind.plural, kind.namespaced):
        raise TypeError(f"kr8s's {cls.__name__} does not match {kind}")  # a kr8s upgrade changed it
    return cls


CLASSES: dict[str, type[APIObject]] = {k.kind: _resolve(k) for k in ALL_KINDS}
"""The kr8s class of every kind in :data:`canarylab.engine.kinds.ALL_KINDS`, by kind name."""


def kr8s_class(kind: Kind) -> type[APIObject]:
    """The kr8s class for ``kind``."""
    return CLASSES[kind.kind]
