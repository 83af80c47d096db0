"""``kubectl apply -f`` for the simulated lab: the learner's edited work file, validated, then created or replaced."""

from __future__ import annotations

from pathlib import Path

from canarylab.engine.kinds import kind_of
from canarylab.engine.ports import Cluster
from canarylab.errors import UserError
from canarylab.manifests import load_documents
from canarylab.sim.inputs import check_object, read_file
from canarylab.validation import STRICT


async def apply_file(cluster: Cluster, path: Path, default_namespace: str = "test", *,
                     validate: str = STRICT) -> list[str]:
    """Apply every document of ``path``; returns ``kubectl``-style lines (``canary.flagger.app/podinfo configured``).

    A problem (YAML, an unsupported kind, an invalid Canary or MetricTemplate) is a :class:`UserError` naming the
    file, the document and the field; nothing is applied then. ``validate`` is ``--validate``: under ``strict``
    an unknown field is such a problem; under ``warn`` it is dropped and reported first, as kubectl's
    ``Warning: ...`` lines; under ``ignore`` it is dropped silently.
    """
    docs = load_documents(read_file(str(path)), path.name)
    warnings: list[str] = []
    docs = [check_object(doc, f"{path.name}: document {index}", validate=validate, warnings=warnings)
            for index, doc in enumerate(docs, 1)]
    lines = [f"Warning: {w}" for w in warnings]
    for doc in docs:
        kind = kind_of(doc)
        meta = doc.setdefault("metadata", {})
        if kind.namespaced:
            meta.setdefault("namespace", default_namespace)
        namespace = str(meta.get("namespace") or "")
        live = await cluster.get(kind, namespace, str(meta["name"]))
        label = f"{kind.kind.lower()}.{kind.group or 'core'}/{meta['name']}".replace(".core/", "/")
        if live is None:
            await cluster.create(doc)
            lines.append(f"{label} created")
            continue
        merged = dict(live.get("metadata") or {})
        for field in ("labels", "annotations"):
            if meta.get(field):
                merged[field] = {**(merged.get(field) or {}), **meta[field]}
        doc["metadata"] = merged
        if live.get("spec") == doc.get("spec") and live.get("data") == doc.get("data"):
            lines.append(f"{label} unchanged")
            continue
        await cluster.replace(doc)
        lines.append(f"{label} configured")
    if len(lines) == len(warnings):
        raise UserError(f"{path.name}: no objects to apply.")
    return lines
