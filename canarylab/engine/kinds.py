"""The Kubernetes kinds the engine reads and writes, as the API spells them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
"""A Kubernetes object as JSON: ``apiVersion``, ``kind``, ``metadata``, ``spec``, ``status``."""


@dataclass(frozen=True)
class Kind:
    """One resource kind: its API version, kind name and URL plural."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def new(self, namespace: str, name: str, **fields: Any) -> Obj:
        """A fresh object of this kind with the given top-level fields (``spec=...``)."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": name, "namespace": namespace},
            **fields,
        }


DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
DAEMON_SET = Kind("apps/v1", "DaemonSet", "daemonsets")
SERVICE = Kind("v1", "Service", "services")
POD = Kind("v1", "Pod", "pods")
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SECRET = Kind("v1", "Secret", "secrets")
EVENT = Kind("v1", "Event", "events")
NAMESPACE = Kind("v1", "Namespace", "namespaces", namespaced=False)
HPA = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
TRAFFIC_SPLIT = Kind("split.smi-spec.io/v1alpha2", "TrafficSplit", "trafficsplits")
HTTP_ROUTE = Kind("gateway.networking.k8s.io/v1beta1", "HTTPRoute", "httproutes")
VIRTUAL_SERVICE = Kind("networking.istio.io/v1beta1", "VirtualService", "virtualservices")
DESTINATION_RULE = Kind("networking.istio.io/v1beta1", "DestinationRule", "destinationrules")
CANARY = Kind("flagger.app/v1beta1", "Canary", "canaries")
METRIC_TEMPLATE = Kind("flagger.app/v1beta1", "MetricTemplate", "metrictemplates")
ALERT_PROVIDER = Kind("flagger.app/v1beta1", "AlertProvider", "alertproviders")

ALL_KINDS: tuple[Kind, ...] = (
    DEPLOYMENT, DAEMON_SET, SERVICE, POD, CONFIG_MAP, SECRET, EVENT, NAMESPACE, HPA,
    TRAFFIC_SPLIT, HTTP_ROUTE, VIRTUAL_SERVICE, DESTINATION_RULE, CANARY, METRIC_TEMPLATE, ALERT_PROVIDER,
)  # fmt: skip

_BY_KIND = {k.kind: k for k in ALL_KINDS}


def kind_of(obj: Obj) -> Kind:
    """The :class:`Kind` of an object, by its ``kind`` (any API version of a known kind maps to ours)."""
    try:
        return _BY_KIND[obj["kind"]]
    except KeyError:
        raise ValueError(f"unsupported kind {obj.get('kind')!r}: canarylab knows "
                         + ", ".join(sorted(_BY_KIND))) from None


def ref(obj: Obj) -> tuple[str, str]:
    """``(namespace, name)`` of an object."""
    meta = obj.get("metadata", {})
    return meta.get("namespace", ""), meta["name"]
