"""The simulated lab's objects: the seed lab plus ``-f FILE`` manifests, checked before anything runs.

Every problem is reported as one paragraph naming the file, the document, the field and the rule (a
:class:`~canarylab.errors.UserError`, exit code 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from canarylab.engine.kinds import Obj
from canarylab.engine.spec import SpecError, parse_canary, parse_metric_template
from canarylab.errors import UserError
from canarylab.manifests import load_documents, seed_lab

ACCEPTED_KINDS = (
    "Namespace", "Deployment", "DaemonSet", "Service", "HorizontalPodAutoscaler", "TrafficSplit", "HTTPRoute",
    "Canary", "MetricTemplate", "AlertProvider", "ConfigMap", "Secret",
)  # fmt: skip
CLUSTER_SCOPED = ("Namespace",)


def read_file(path: str) -> str:
    """The text of a user's file, or a :class:`UserError` saying why it cannot be read."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; give a YAML file.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot be read ({err}).") from None


def lab_objects(files: Sequence[str] = ()) -> list[Obj]:
    """The seed lab with the files' objects applied on top (same kind/namespace/name replaces).

    When any file holds a Canary, the seed's Canary is left out.
    """
    given: list[tuple[Obj, str]] = []
    for path in files:
        docs = load_documents(read_file(path), path)
        for index, doc in enumerate(docs, 1):
            where = f"{path}: document {index}"
            check_object(doc, where)
            given.append((doc, where))
    seed = [(doc, "the seed lab") for doc in seed_lab()]
    if any(d.get("kind") == "Canary" for d, _ in given):
        seed = [(d, w) for d, w in seed if d.get("kind") != "Canary"]
    objects: dict[tuple[str, str, str], tuple[Obj, str]] = {}
    for obj, where in [*seed, *given]:
        objects[_key(obj)] = (obj, where)
    ordered = sorted(objects.values(), key=lambda o: 0 if o[0].get("kind") == "Namespace" else 1)
    namespaces = {"default"} | {o["metadata"]["name"] for o, _ in ordered if o.get("kind") == "Namespace"}
    for obj, where in ordered:
        ns = _namespace(obj)
        if obj.get("kind") not in CLUSTER_SCOPED and ns not in namespaces:
            raise UserError(
                f'{where} ({obj["kind"]} {obj["metadata"]["name"]}): metadata.namespace "{ns}" does not exist in '
                f"the lab (it has {', '.join(sorted(namespaces))}): add a Namespace document for it or use one of "
                "those."
            )
    present = {_key(obj) for obj, _ in ordered}
    for obj, where in ordered:
        if obj.get("kind") == "Canary":
            _check_refs(obj, where, present)
    return [obj for obj, _ in ordered]


def _check_refs(canary: Obj, where: str, present: set[tuple[str, str, str]]) -> None:
    """A Canary's target and autoscaler must be in the lab, or the run could never start."""
    ns = _namespace(canary)
    label = f"{where} (Canary {canary['metadata']['name']})"
    target = _get(canary, "spec", "targetRef") or {}
    kind = target.get("kind", "Deployment")
    if kind not in ("Deployment", "DaemonSet"):
        raise UserError(f"{label}: spec.targetRef.kind {kind!r} is not simulated: the lab runs Deployment and "
                        "DaemonSet targets.")
    if (kind, ns, str(target.get("name"))) not in present:
        raise UserError(f"{label}: spec.targetRef.name: {kind} {target.get('name')} is not in namespace {ns} "
                        f"of the lab: add it with -f, or point the Canary at a {kind} the lab has.")
    scaler = _get(canary, "spec", "autoscalerRef")
    if isinstance(scaler, dict) and ("HorizontalPodAutoscaler", ns, str(scaler.get("name"))) not in present:
        raise UserError(f"{label}: spec.autoscalerRef.name: HorizontalPodAutoscaler {scaler.get('name')} is not in "
                        f"namespace {ns} of the lab: add it with -f, or remove autoscalerRef.")


def check_object(doc: Obj, where: str) -> None:
    """Refuse an object the lab cannot hold, naming the field and the rule."""
    kind = doc.get("kind")
    if kind not in ACCEPTED_KINDS:
        raise UserError(f"{where}: kind {kind!r} is not supported by the simulated lab (it accepts "
                        f"{', '.join(ACCEPTED_KINDS)}).")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        raise UserError(f"{where} ({kind}): metadata.name is required and must be a string.")
    label = f"{where} ({kind} {meta['name']})"
    if kind == "Canary":
        try:
            parse_canary(doc)
        except SpecError as err:
            raise UserError(f"{label}: {'; '.join(str(p) for p in err.problems)}.") from None
    elif kind == "MetricTemplate":
        try:
            parse_metric_template(doc)
        except SpecError as err:
            raise UserError(f"{label}: {'; '.join(str(p) for p in err.problems)}.") from None
    elif kind in ("Deployment", "DaemonSet"):
        _check_deployment(doc, label)
    elif kind == "Service":
        ports = _get(doc, "spec", "ports")
        if not isinstance(ports, list) or not ports or not all(isinstance(p, dict) and "port" in p for p in ports):
            raise UserError(f"{label}: spec.ports must list at least one port, each with a port number.")
    elif kind == "HorizontalPodAutoscaler":
        target = _get(doc, "spec", "scaleTargetRef", "name")
        high = _get(doc, "spec", "maxReplicas")
        low = _get(doc, "spec", "minReplicas")
        low = 1 if low is None else low
        if not isinstance(target, str) or not target:
            raise UserError(f"{label}: spec.scaleTargetRef.name is required.")
        if not isinstance(high, int) or high < 1:
            raise UserError(f"{label}: spec.maxReplicas must be an integer of at least 1 (got {high!r}).")
        if not isinstance(low, int) or not 1 <= low <= high:
            raise UserError(f"{label}: spec.minReplicas must be an integer between 1 and maxReplicas {high} "
                            f"(got {low!r}).")


def _check_deployment(doc: Obj, label: str) -> None:
    replicas = _get(doc, "spec", "replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        raise UserError(f"{label}: spec.replicas must be an integer >= 0 (got {replicas!r}).")
    selector = _get(doc, "spec", "selector", "matchLabels")
    if not isinstance(selector, dict) or not selector:
        raise UserError(f"{label}: spec.selector.matchLabels is required (e.g. app: {doc['metadata']['name']}).")
    labels = _get(doc, "spec", "template", "metadata", "labels") or {}
    if not isinstance(labels, dict) or any(labels.get(k) != v for k, v in selector.items()):
        raise UserError(f"{label}: spec.template.metadata.labels must carry every spec.selector.matchLabels entry "
                        f"(selector {selector}, template labels {labels}).")
    containers = _get(doc, "spec", "template", "spec", "containers")
    if not isinstance(containers, list) or not containers:
        raise UserError(f"{label}: spec.template.spec.containers must list at least one container.")
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name") or not c.get("image"):
            raise UserError(f"{label}: spec.template.spec.containers[{i}] needs a name and an image.")


def _get(doc: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _key(obj: Obj) -> tuple[str, str, str]:
    return (str(obj.get("kind")), _namespace(obj), str(obj["metadata"]["name"]))


def _namespace(obj: Obj) -> str:
    if obj.get("kind") in CLUSTER_SCOPED:
        return ""
    return str(obj.get("metadata", {}).get("namespace") or "default")
