"""The simulated lab's objects: the seed lab plus ``-f FILE`` manifests, checked before anything runs.

Every problem is reported as one paragraph naming the file, the document, the field and the rule (a
:class:`~canarylab.errors.UserError`, exit code 2).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from canarylab.engine.kinds import Obj
from canarylab.engine.spec import SpecError, parse_canary, parse_metric_template
from canarylab.errors import UserError
from canarylab.loader import load_documents, read_text
from canarylab.manifests import seed_lab
from canarylab.validation import IGNORE, STRICT, accepted_versions, validate_object
from canarylab.validation.openapi import show

ACCEPTED_KINDS = (
    "Namespace", "Deployment", "DaemonSet", "Service", "HorizontalPodAutoscaler", "TrafficSplit", "HTTPRoute",
    "Ingress", "Canary", "MetricTemplate", "AlertProvider", "ConfigMap", "Secret",
)  # fmt: skip
CLUSTER_SCOPED = ("Namespace",)
MAX_REPORTED = 10
"""Bad documents named in one message; the rest are counted."""


def read_file(path: str) -> str:
    """The text of a user's file, or a :class:`UserError` saying why it cannot be read (or is too large)."""
    return read_text(path)


def lab_objects(files: Sequence[str] = (), *, validate: str = STRICT, warnings: list[str] | None = None) -> list[Obj]:
    """The seed lab with the files' objects applied on top (same kind/namespace/name replaces).

    Every object is validated as the API server would (:func:`canarylab.validation.validate_object`) and kept
    as it would store it (nulls dropped, defaults set). ``validate`` is ``--validate``; what it lets through
    with ``warn``, and duplicate keys (unless ``ignore``), are appended to ``warnings``. When any file holds a
    Canary, the seed's Canary is left out.
    """
    given: list[tuple[Obj, str]] = []
    refused: list[str] = []  # every bad document of every file, reported together
    for path in files:
        notes: list[str] = []
        # kubectl accepts a duplicate key and keeps the last value (its YAML-to-JSON step); say so, at least
        docs = load_documents(path, on_duplicate=notes.append)
        if validate != IGNORE and warnings is not None:
            warnings += notes
        if not any(d is not None for d in docs):
            raise UserError(f"{path}: holds no YAML documents (the file is empty or has only comments); give at "
                            "least one Kubernetes object, e.g. a Canary (see examples/).")
        for index, doc in enumerate(docs, 1):
            if doc is None:
                continue
            where = f"{path}: document {index}"
            try:
                given.append((check_object(doc, where, validate=validate, warnings=warnings), where))
            except UserError as err:
                refused.append(str(err))
    if refused:
        more = f" ({len(refused) - MAX_REPORTED} more documents have problems too.)" if len(refused) > MAX_REPORTED \
            else ""
        raise UserError(" ".join(refused[:MAX_REPORTED]) + more)
    seed = [(check_object(doc, "the seed lab"), "the seed lab") for doc in seed_lab()]
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


def check_object(doc: Any, where: str, *, validate: str = STRICT, warnings: list[str] | None = None) -> Obj:
    """The object as the lab holds it (validated, nulls dropped, defaults set), or a :class:`UserError`
    naming every problem with its field path."""
    if not isinstance(doc, dict) or "kind" not in doc:
        raise UserError(f"{where}: is not a Kubernetes object (it needs apiVersion, kind and metadata; got "
                        f"{show(doc)}).")
    kind = doc.get("kind")
    if kind not in ACCEPTED_KINDS:
        known = "is not simulated by the lab" if isinstance(kind, str) and accepted_versions(kind) else \
            "is not supported by the simulated lab"
        hint = ""
        if isinstance(kind, str):
            lowered = {k.lower(): k for k in ACCEPTED_KINDS}
            close = [lowered[kind.lower()]] if kind.lower() in lowered else \
                difflib.get_close_matches(kind, ACCEPTED_KINDS, n=1, cutoff=0.7)
            hint = f"; did you mean {close[0]}?" if close else ""
        raise UserError(f"{where}: kind {kind!r} {known}{hint} (it accepts {', '.join(ACCEPTED_KINDS)}).")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    label = f"{where} ({kind} {name})" if isinstance(name, str) and name else f"{where} ({kind})"
    result = validate_object(doc, validate)
    if warnings is not None:
        warnings += [f"{label}: {w}" for w in result.warnings]
    if result.errors:
        raise UserError(f"{label}: {'; '.join(str(e) for e in result.errors)}.")
    obj = result.obj
    try:
        if kind == "Canary":
            parse_canary(obj)
        elif kind == "MetricTemplate":
            parse_metric_template(obj)
    except SpecError as err:
        raise UserError(f"{label}: {'; '.join(str(p) for p in err.problems)}.") from None
    return obj


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
