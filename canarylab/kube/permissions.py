"""Every API permission the engine uses, in one table, and a check that the cluster grants them.

The table is the source of ``deploy/base/rbac.yaml`` (a test keeps the two equal, rule for rule): the
ClusterRole grants exactly these verbs on these resources, and the Role in the engine's own namespace the
lease of ``--leader-elect``. :func:`missing` asks the API server with SelfSubjectAccessReviews (which any
authenticated user may create) so an engine whose ClusterRole lacks a verb says which one at start, in one
line, instead of failing halfway through a canary run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from canarylab.engine.ports import ClusterError


@dataclass(frozen=True)
class Rule:
    """Verbs on one resource of one API group (``""``: core), and why the engine needs them."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    why: str


CLUSTER_RULES: tuple[Rule, ...] = (
    Rule("flagger.app", "canaries", ("get", "list", "watch", "patch"),
         "watch Canaries, set Flagger's finalizer and the pause annotation"),
    Rule("flagger.app", "canaries/status", ("patch",), "keep the run's state in the Canary status"),
    Rule("flagger.app", "canaries/finalizers", ("update",),
         "own the generated objects (blockOwnerDeletion, checked where OwnerReferencesPermissionEnforcement is on)"),
    Rule("flagger.app", "metrictemplates", ("get",), "read the MetricTemplates a check refers to"),
    Rule("apps", "deployments", ("get", "list", "watch", "create", "update", "patch"),
         "watch targets; create, promote and scale the -primary Deployment"),
    Rule("apps", "daemonsets", ("get", "list", "watch", "create", "update", "patch"),
         "watch DaemonSet targets; create and promote the -primary DaemonSet"),
    Rule("autoscaling", "horizontalpodautoscalers", ("get", "create", "patch"), "the -primary HPA"),
    Rule("", "services", ("get", "create", "patch"), "the apex, -canary and -primary Services"),
    Rule("", "configmaps", ("get", "create", "patch"), "copy the target's ConfigMaps to -primary"),
    Rule("", "secrets", ("get", "create", "patch"), "copy the target's Secrets; MetricTemplate credentials"),
    Rule("", "events", ("create", "patch"), "record Flagger's Events (repeats bump count)"),
    Rule("split.smi-spec.io", "trafficsplits", ("get", "create", "patch"), "route with an SMI TrafficSplit"),
    Rule("gateway.networking.k8s.io", "httproutes", ("get", "create", "patch"), "route with a Gateway API HTTPRoute"),
    Rule("networking.istio.io", "virtualservices", ("get", "create", "patch"), "route with an Istio VirtualService"),
    Rule("networking.istio.io", "destinationrules", ("get", "create", "patch"),
         "the Istio DestinationRules of the -canary and -primary Services"),
    Rule("networking.k8s.io", "ingresses", ("get", "create", "patch"), "the canary Ingress of provider nginx"),
)
"""What the acting engine does anywhere it serves Canaries (``--readonly`` needs list/watch on more)."""

LEASE_RULES: tuple[Rule, ...] = (
    Rule("coordination.k8s.io", "leases", ("get", "create", "update"), "hold the leader lease (--leader-elect)"),
)
"""What ``--leader-elect`` does, in the lease's namespace only."""


@dataclass(frozen=True)
class Missing:
    """One verb on one resource that the API server says the engine may not use."""

    verb: str
    group: str
    resource: str
    namespace: str
    why: str

    def line(self, who: str) -> str:
        """One line: who may not do what, where, why it is needed and where to grant it."""
        where = f"in namespace {self.namespace}" if self.namespace else "in all namespaces"
        kind = "Role" if self.group == "coordination.k8s.io" else "ClusterRole"
        return (f'forbidden: {who} may not "{self.verb}" {self.resource} (API group {self.group or "core"}) '
                f"{where}, which the engine needs to {self.why}; add that verb to the engine's {kind} "
                "(deploy/base/rbac.yaml)")


async def allowed(cluster: Any, verb: str, group: str, resource: str, namespace: str) -> bool:
    """Whether the API server lets the engine's credentials do ``verb`` on ``resource`` (SelfSubjectAccessReview)."""
    plural, _, sub = resource.partition("/")
    attributes: dict[str, str] = {"verb": verb, "group": group, "resource": plural}
    if sub:
        attributes["subresource"] = sub
    if namespace:
        attributes["namespace"] = namespace
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}
    async with cluster.api.call_api("POST", version="authorization.k8s.io/v1", base="/apis",
                                    url="selfsubjectaccessreviews", namespace=None,
                                    content=json.dumps(body),
                                    headers={"Content-Type": "application/json"}) as response:
        answer = response.json()
    return bool((answer.get("status") or {}).get("allowed"))


async def missing(cluster: Any, namespaces: Sequence[str] | None, lease_namespace: str | None) -> list[Missing]:
    """Every permission the engine needs and lacks: the cluster rules in each of ``namespaces`` (``None``:
    cluster-wide), and the lease rules in ``lease_namespace`` when leader election is on.

    Raises :class:`ClusterError` when the API server cannot answer SelfSubjectAccessReviews.
    """
    checks: list[tuple[Rule, str]] = [(r, ns) for r in CLUSTER_RULES for ns in (namespaces or [""])]
    if lease_namespace:
        checks += [(r, lease_namespace) for r in LEASE_RULES]
    out: list[Missing] = []
    for rule, namespace in checks:
        for verb in rule.verbs:
            try:
                ok = await allowed(cluster, verb, rule.group, rule.resource, namespace)
            except Exception as err:  # kr8s raises its own, httpx and OS errors: all mean "cannot check"
                raise ClusterError(f"cannot check the engine's permissions (SelfSubjectAccessReview): {err}") from None
            if not ok:
                out.append(Missing(verb, rule.group, rule.resource, namespace, rule.why))
    return out
