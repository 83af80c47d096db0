"""What the API server checks beyond the OpenAPI schema, and the defaults it sets, for the kinds the lab reads.

Kubernetes validates these in Go (``ValidateDeployment``, ``ValidateService``, ...) and defaults them in
``SetDefaults_*``; the OpenAPI document does not carry them. Only the rules for fields the simulated lab reads
are here, worded after the API server's messages. Each function gets a schema-valid object, fills in the
defaults and appends ``(path, message)`` problems.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Problems = list[tuple[str, str]]
Obj = dict[str, Any]

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PERCENT = re.compile(r"^[0-9]+%$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _name_rule(kind: str) -> tuple[re.Pattern[str], int, str]:
    if kind == "Namespace":
        return _DNS1123_LABEL, 63, "a lowercase RFC 1123 label (a-z, 0-9 and '-', starting and ending with a " \
                                   "letter or digit, at most 63 characters)"
    if kind == "Service":
        return _DNS1035_LABEL, 63, "a DNS-1035 label (a-z, 0-9 and '-', starting with a letter, ending with a " \
                                   "letter or digit, at most 63 characters)"
    return _DNS1123_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', starting and " \
                                    "ending with a letter or digit)"


def check_metadata(obj: Obj, out: Problems) -> None:
    """``metadata.name`` is required and well formed; ``metadata.namespace`` is a DNS label."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        out.append(("metadata.name", "is required"))
        return
    name = meta["name"]
    pattern, length, words = _name_rule(str(obj.get("kind")))
    if not pattern.match(name) or len(name) > length:
        out.append(("metadata.name", f"must be {words} (got {name!r})"))
    namespace = meta.get("namespace")
    if namespace is not None and (not _DNS1123_LABEL.match(namespace) or len(namespace) > 63):
        out.append(("metadata.namespace", f"must be a lowercase RFC 1123 label (got {namespace!r})"))


def _int_or_percent(value: Any, path: str, out: Problems, *, max_percent: int | None = None) -> None:
    if isinstance(value, int):
        if value < 0:
            out.append((path, f"must be greater than or equal to 0 (got {value})"))
    elif not _PERCENT.match(value):
        out.append((path, f"must be an integer or a percentage such as 25% (got {value!r})"))
    elif max_percent is not None and int(value[:-1]) > max_percent:
        out.append((path, f"must not be greater than 100% (got {value!r})"))


def _is_zero(value: Any) -> bool:
    return value == 0 or value == "0%"


def _pod_template(spec: Obj, selector: Obj | None, base: str, out: Problems) -> None:
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    match = (selector or {}).get("matchLabels") or {}
    if selector is not None:
        if not match and not selector.get("matchExpressions"):
            out.append((f"{base}.selector", "empty selector is invalid: give matchLabels (e.g. app: NAME)"))
        elif selector.get("matchExpressions"):
            out.append((f"{base}.selector.matchExpressions", "is not simulated: the lab selects pods by "
                        "matchLabels; use matchLabels"))
        elif any(labels.get(k) != v for k, v in match.items()):
            out.append((f"{base}.template.metadata.labels", f"`selector` does not match template `labels` "
                        f"(selector {match}, template labels {labels})"))
    if "template" not in spec:
        return  # reported as required
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        out.append((f"{base}.template.spec.containers", "must list at least one container"))
    seen: set[str] = set()
    for i, container in enumerate(containers):
        where = f"{base}.template.spec.containers[{i}]"
        if not container.get("image"):
            out.append((f"{where}.image", "is required"))
        name = container.get("name", "")
        if name in seen:
            out.append((f"{where}.name", f"duplicate container name {name!r}"))
        seen.add(name)
        for j, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort")
            if isinstance(number, int) and not 1 <= number <= 65535:
                out.append((f"{where}.ports[{j}].containerPort", f"must be between 1 and 65535 (got {number})"))


def deployment(obj: Obj, out: Problems) -> None:
    """``ValidateDeploymentSpec`` for the fields the lab reads; ``SetDefaults_Deployment``."""
    spec = obj.setdefault("spec", {})
    _required_spec(spec, out)
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    for name in ("replicas", "minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(name)
        if isinstance(value, int) and value < 0:
            out.append((f"spec.{name}", f"must be greater than or equal to 0 (got {value})"))
    deadline, min_ready = spec["progressDeadlineSeconds"], spec.get("minReadySeconds", 0)
    if deadline <= 0:
        out.append(("spec.progressDeadlineSeconds", f"must be greater than 0 (got {deadline})"))
    elif deadline <= min_ready:
        out.append(("spec.progressDeadlineSeconds", f"must be greater than minReadySeconds {min_ready} "
                    f"(got {deadline})"))
    if strategy["type"] == "Recreate":
        if "rollingUpdate" in strategy:
            out.append(("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
        _int_or_percent(rolling["maxSurge"], "spec.strategy.rollingUpdate.maxSurge", out)
        _int_or_percent(rolling["maxUnavailable"], "spec.strategy.rollingUpdate.maxUnavailable", out, max_percent=100)
        if _is_zero(rolling["maxSurge"]) and _is_zero(rolling["maxUnavailable"]):
            out.append(("spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0"))
    else:
        out.append(("spec.strategy.type", f"must be RollingUpdate or Recreate (got {strategy['type']!r})"))
    _pod_template(spec, spec.get("selector"), "spec", out)


def _required_spec(spec: Obj, out: Problems) -> None:
    """``selector`` and ``template`` (the schema requires them only when ``spec`` is there at all)."""
    for name in ("selector", "template"):
        if name not in spec:
            out.append((f"spec.{name}", "is required"))


def daemon_set(obj: Obj, out: Problems) -> None:
    """``ValidateDaemonSetSpec`` for the fields the lab reads; ``SetDefaults_DaemonSet``."""
    spec = obj.setdefault("spec", {})
    _required_spec(spec, out)
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
        _int_or_percent(rolling["maxSurge"], "spec.updateStrategy.rollingUpdate.maxSurge", out)
        _int_or_percent(rolling["maxUnavailable"], "spec.updateStrategy.rollingUpdate.maxUnavailable", out,
                        max_percent=100)
        if _is_zero(rolling["maxSurge"]) and _is_zero(rolling["maxUnavailable"]):
            out.append(("spec.updateStrategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0"))
    elif strategy["type"] != "OnDelete":
        out.append(("spec.updateStrategy.type", f"must be RollingUpdate or OnDelete (got {strategy['type']!r})"))
    value = spec.get("minReadySeconds")
    if isinstance(value, int) and value < 0:
        out.append(("spec.minReadySeconds", f"must be greater than or equal to 0 (got {value})"))
    _pod_template(spec, spec.get("selector"), "spec", out)


def service(obj: Obj, out: Problems) -> None:
    """``ValidateService`` for ports and selector; ``SetDefaults_Service`` (type, protocol, targetPort)."""
    spec = obj.setdefault("spec", {})
    kind = spec.setdefault("type", "ClusterIP")
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        out.append(("spec.ports", "must list at least one port (e.g. - port: 80, targetPort: http)"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        where = f"spec.ports[{i}]"
        port.setdefault("protocol", "TCP")
        number = port.get("port")
        if isinstance(number, int) and not 1 <= number <= 65535:
            out.append((f"{where}.port", f"must be between 1 and 65535 (got {number})"))
        target = port.setdefault("targetPort", number)
        if isinstance(target, int) and not 1 <= target <= 65535:
            out.append((f"{where}.targetPort", f"must be between 1 and 65535 (got {target})"))
        name = port.get("name")
        if len(ports) > 1 and not name:
            out.append((f"{where}.name", "is required when a Service has more than one port"))
        if name in names:
            out.append((f"{where}.name", f"duplicate port name {name!r}"))
        if name:
            names.add(name)


def hpa(obj: Obj, out: Problems) -> None:
    """``ValidateHorizontalPodAutoscalerSpec`` for the replica bounds and the target; ``minReplicas`` 1."""
    spec = obj.setdefault("spec", {})
    low = spec.setdefault("minReplicas", 1)
    high = spec.get("maxReplicas")
    for name in ("scaleTargetRef", "maxReplicas"):
        if name not in spec:
            out.append((f"spec.{name}", "is required"))
    if low < 1:
        out.append(("spec.minReplicas", f"must be greater than or equal to 1 (got {low})"))
    if isinstance(high, int):
        if high < 1:
            out.append(("spec.maxReplicas", f"must be greater than or equal to 1 (got {high})"))
        elif high < low:
            out.append(("spec.maxReplicas", f"must be greater than or equal to `minReplicas` {low} (got {high})"))
    target = spec.get("scaleTargetRef") or {}
    if target.get("name") == "":
        out.append(("spec.scaleTargetRef.name", "is required"))


def config_data(obj: Obj, out: Problems) -> None:
    """ConfigMap and Secret keys: ``[-._a-zA-Z0-9]+``, each key once across data and binaryData/stringData."""
    seen: set[str] = set()
    for section in ("data", "binaryData", "stringData"):
        for key in obj.get(section) or {}:
            if not _CONFIG_KEY.match(key) or len(key) > 253:
                out.append((f"{section}.{key}", "a key must consist of alphanumeric characters, '-', '_' or '.'"))
            if key in seen and not (obj.get("kind") == "Secret" and section == "stringData"):
                out.append((f"{section}.{key}", "duplicate of a key in data"))
            seen.add(key)


RULES: dict[str, Callable[[Obj, Problems], None]] = {
    "Deployment": deployment,
    "DaemonSet": daemon_set,
    "Service": service,
    "HorizontalPodAutoscaler": hpa,
    "ConfigMap": config_data,
    "Secret": config_data,
}
