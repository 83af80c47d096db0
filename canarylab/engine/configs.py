"""Config tracking (flagger-spec 2.5, 3.4): the ConfigMaps and Secrets a pod template uses.

Their data is checksummed into ``status.trackedConfigs`` (a change starts a run, like a new image) and
copied to ``<name>-primary`` at initialization and on every promotion; the primary's pod spec points at
the copies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from canarylab.engine.context import TickContext
from canarylab.engine.documents import copy_json
from canarylab.engine.kinds import CONFIG_MAP, SECRET, Kind, Obj

TRACKED_SECRET_TYPES = ("", "Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls")
OPT_OUT = "flagger.app/config-tracking"


class ConfigError(Exception):
    """A mandatory ConfigMap or Secret is missing; the message is the Warning event text."""


@dataclass(frozen=True)
class Ref:
    """One ConfigMap or Secret the pod template references."""

    kind: Kind
    name: str
    optional: bool


@dataclass(frozen=True)
class Config:
    """A tracked ConfigMap or Secret with its checksum."""

    kind: Kind
    name: str
    checksum: str
    obj: Obj

    @property
    def key(self) -> str:
        """``configmap/<name>`` or ``secret/<name>``, as in ``status.trackedConfigs``."""
        return f"{self.kind.kind.lower()}/{self.name}"


def checksum(data: Any) -> str:
    """Flagger's config checksum: the first 8 bytes of SHA-256 over the JSON of ``data``, in hex."""
    text = json.dumps(data or {}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _containers(pod: Obj) -> list[Obj]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


# Where a pod spec names a ConfigMap or Secret: (field, kind, the field's name key), per place it can appear.
_VOLUME = (("configMap", CONFIG_MAP, "name"), ("secret", SECRET, "secretName"))
_PROJECTED = (("configMap", CONFIG_MAP, "name"), ("secret", SECRET, "name"))
_ENV_VALUE_FROM = (("configMapKeyRef", CONFIG_MAP, "name"), ("secretKeyRef", SECRET, "name"))
_ENV_FROM = (("configMapRef", CONFIG_MAP, "name"), ("secretRef", SECRET, "name"))


def _refs(holder: Obj, fields: tuple[tuple[str, Kind, str], ...]) -> list[Ref]:
    return [Ref(kind, str(holder[f].get(name_key, "")), bool(holder[f].get("optional")))
            for f, kind, name_key in fields if isinstance(holder.get(f), dict)]


def references(template: Obj) -> list[Ref]:
    """ConfigMaps and Secrets used by volumes, projected volumes, ``env.valueFrom`` and ``envFrom``."""
    pod = template.get("spec") or {}
    refs: list[Ref] = []
    for vol in pod.get("volumes") or []:
        refs += _refs(vol, _VOLUME)
        for src in (vol.get("projected") or {}).get("sources") or []:
            refs += _refs(src, _PROJECTED)
    for c in _containers(pod):
        for env in c.get("env") or []:
            refs += _refs(env.get("valueFrom") or {}, _ENV_VALUE_FROM)
        for env_from in c.get("envFrom") or []:
            refs += _refs(env_from, _ENV_FROM)
    seen: dict[tuple[str, str], Ref] = {}
    for ref in refs:
        if ref.name:
            prev = seen.get((ref.kind.kind, ref.name))
            # a config referenced once as mandatory is mandatory
            seen[(ref.kind.kind, ref.name)] = ref if prev is None or prev.optional else prev
    return list(seen.values())


async def target_configs(ctx: TickContext, deployment: Obj) -> list[Config]:
    """The tracked configs of the target's pod template (opted-out and registry Secrets left out)."""
    template = (deployment.get("spec") or {}).get("template") or {}
    refs = references(template)
    if not refs:
        return []
    out: list[Config] = []
    ns = ctx.canary.namespace
    for ref in refs:
        obj = await ctx.cluster.get(ref.kind, ns, ref.name)
        if obj is None:
            if ref.optional:
                continue
            raise ConfigError(f"{ref.kind.kind} {ref.name}.{ns} get query error: "
                              f'{ref.kind.plural} "{ref.name}" not found')
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get(OPT_OUT, "")).startswith("disable"):
            continue
        if ref.kind is SECRET and str(obj.get("type", "")) not in TRACKED_SECRET_TYPES:
            continue
        out.append(Config(ref.kind, ref.name, checksum(obj.get("data")), obj))
    return out


def tracked(configs: list[Config]) -> dict[str, str]:
    """``status.trackedConfigs`` for these configs."""
    return {c.key: c.checksum for c in configs}


def changed(status: dict[str, Any], configs: list[Config]) -> bool:
    """``HaveDependenciesChanged``: a different set of configs or any different checksum."""
    before = status.get("trackedConfigs")
    if not configs and not before:
        return False
    if configs and not before:
        return True
    now = tracked(configs)
    return len(now) != len(before or {}) or any((before or {}).get(k) != v for k, v in now.items())


async def copy_to_primary(ctx: TickContext, configs: list[Config], owner: dict[str, Any]) -> None:
    """Create or update ``<name>-primary`` copies with the same data (initialization and promotion)."""
    ns = ctx.canary.namespace
    for cfg in configs:
        name = f"{cfg.name}-primary"
        src = cfg.obj
        body: Obj = {k: copy_json(v) for k, v in src.items() if k in ("data", "binaryData", "stringData", "type")}
        labels = dict((src.get("metadata") or {}).get("labels") or {})
        existing = await ctx.cluster.get(cfg.kind, ns, name)
        if existing is None:
            await ctx.cluster.create(cfg.kind.new(ns, name, **body) | {
                "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner]}})
        elif any(existing.get(k) != v for k, v in body.items()):
            await ctx.cluster.patch(cfg.kind, ns, name, {k: body.get(k) for k in ("data", "binaryData")
                                                         if k in body or k in existing})


def rewrite_to_primary(template: Obj, configs: list[Config]) -> Obj:
    """The pod template with every tracked config name suffixed ``-primary`` (in place; returns it)."""
    names = {(c.kind.kind, c.name) for c in configs}
    if not names:
        return template
    pod = template.get("spec") or {}

    def fix(ref: dict[str, Any] | None, kind: Kind, key: str = "name") -> None:
        if ref and (kind.kind, ref.get(key)) in names:
            ref[key] = f"{ref[key]}-primary"

    for vol in pod.get("volumes") or []:
        fix(vol.get("configMap"), CONFIG_MAP)
        fix(vol.get("secret"), SECRET, "secretName")
        for src in (vol.get("projected") or {}).get("sources") or []:
            fix(src.get("configMap"), CONFIG_MAP)
            fix(src.get("secret"), SECRET)
    for c in _containers(pod):
        for env in c.get("env") or []:
            source = env.get("valueFrom") or {}
            fix(source.get("configMapKeyRef"), CONFIG_MAP)
            fix(source.get("secretKeyRef"), SECRET)
        for env_from in c.get("envFrom") or []:
            fix(env_from.get("configMapRef"), CONFIG_MAP)
            fix(env_from.get("secretRef"), SECRET)
    return template
