"""Generate ``kubernetes-<version>.json``: the OpenAPI schemas of the kinds the simulated lab holds.

Run ``python -m canarylab.validation.generate`` after changing :data:`ROOTS` or :data:`KUBERNETES`. It reads the
strict JSON schemas that the ``kubernetes-validate`` package ships (a test dependency; they are generated from
Kubernetes' own OpenAPI document) and writes only what validation needs: types, properties, required fields,
items, maps, enums, int-or-string and preserved-unknown markers, for the definitions the root kinds reach.
Descriptions are dropped. The file is committed so that canarylab does not import ``kubernetes-validate``
(and ``jsonschema``) at run time; ``tests/validation/test_schemas.py`` checks it is up to date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KUBERNETES = "1.34.0"
"""The Kubernetes minor the substrate pins (substrate/versions.env)."""

ROOTS: dict[str, str] = {
    "apps/v1/Deployment": "io.k8s.api.apps.v1.Deployment",
    "apps/v1/DaemonSet": "io.k8s.api.apps.v1.DaemonSet",
    "v1/Service": "io.k8s.api.core.v1.Service",
    "v1/ConfigMap": "io.k8s.api.core.v1.ConfigMap",
    "v1/Secret": "io.k8s.api.core.v1.Secret",
    "v1/Namespace": "io.k8s.api.core.v1.Namespace",
    "autoscaling/v2/HorizontalPodAutoscaler": "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
    "networking.k8s.io/v1/Ingress": "io.k8s.api.networking.v1.Ingress",
    "meta/v1/ObjectMeta": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
}
"""``apiVersion/kind`` -> the definition that describes it (ObjectMeta also serves the CRDs' metadata)."""

OUTPUT = Path(__file__).with_name(f"kubernetes-{KUBERNETES.rsplit('.', 1)[0]}.json")
_KEEP = ("required", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern")


def _compact(schema: Any, wanted: set[str]) -> Any:
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        wanted.add(name)
        return {"$ref": name}
    out: dict[str, Any] = {}
    types = schema.get("type")
    if isinstance(types, list):
        types = [t for t in types if t != "null"]
        types = types[0] if len(types) == 1 else types
    if "oneOf" in schema:  # IntOrString and Quantity: a union of scalar types
        union = []
        for option in schema["oneOf"]:
            t = option.get("type")
            union += [x for x in (t if isinstance(t, list) else [t]) if x and x != "null"]
        if union == ["string", "integer"]:
            out["x-kubernetes-int-or-string"] = True
        else:
            types = union
    if types:
        out["type"] = types
    if schema.get("format") in ("int32", "int64", "byte"):
        out["format"] = schema["format"]
    for key in _KEEP:
        if key in schema:
            value = schema[key]
            out[key] = [v for v in value if v is not None] if key == "enum" else value
    if "properties" in schema:
        out["properties"] = {k: _compact(v, wanted) for k, v in schema["properties"].items()}
    if "items" in schema:
        out["items"] = _compact(schema["items"], wanted)
    if "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if extra is not False or "properties" not in schema:
            out["additionalProperties"] = extra if isinstance(extra, bool) else _compact(extra, wanted)
    if schema.get("x-kubernetes-preserve-unknown-fields") or (types == "object" and not schema.get("properties")
                                                               and "additionalProperties" not in schema):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def generate(version: str = KUBERNETES) -> dict[str, Any]:
    """The compact schema document for ``version`` (needs the ``kubernetes-validate`` package)."""
    import kubernetes_validate  # a test dependency: only this generator imports it

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    definitions = json.loads((root / "_definitions.json").read_text())["$defs"]
    wanted = set(ROOTS.values())
    done: dict[str, Any] = {}
    while wanted - set(done):
        for name in sorted(wanted - set(done)):
            done[name] = _compact(definitions[name], wanted)
    return {
        "source": f"kubernetes-validate {getattr(kubernetes_validate, '__version__', '?')}, "
                  f"Kubernetes v{version} (strict)",
        "kinds": ROOTS,
        "definitions": dict(sorted(done.items())),
    }


def render(document: dict[str, Any]) -> str:
    """The file's text: one definition per line, so diffs stay readable."""
    lines = [f'{{"source": {json.dumps(document["source"])},', f'"kinds": {json.dumps(document["kinds"])},',
             '"definitions": {']
    items = list(document["definitions"].items())
    for i, (name, schema) in enumerate(items):
        lines.append(f"{json.dumps(name)}: {json.dumps(schema, separators=(',', ':'))}"
                     + ("," if i < len(items) - 1 else ""))
    lines.append("}}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(generate()))
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size:,} bytes)", file=sys.stderr)
