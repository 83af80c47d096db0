"""Which kube context and API server the engine talks to, and whether it may act there on its own.

Safety rule (issue 6): the engine never touches a kube context canarylab did not create unless the user names
it with ``--context``; on such a context it only acts on Canaries in namespaces named with ``--namespace``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from canarylab.errors import UserError
from canarylab.kube.incluster import ServiceAccount, detect

LAB_CONTEXT = "kind-canarylab"
"""The context ``canarylab up`` creates (kind names contexts ``kind-<cluster>``)."""
KWOK_CONTEXT = "canarylab-kwok"
"""The context of the Docker-free lab (``canarylab up --runtime kwok``), in the lab's own kubeconfig."""


@dataclass(frozen=True)
class Target:
    """The resolved context: its name, API server URL, kubeconfig and whether canarylab created it.

    ``service_account`` is set for the in-cluster login (no kubeconfig, in a pod): ``context`` is then
    ``in-cluster`` and RBAC, granted by whoever installed the engine, decides where it may act."""

    context: str
    server: str
    kubeconfig: str | None
    created_by_canarylab: bool
    service_account: ServiceAccount | None = None
    gateway: str | None = None
    """The Docker-free lab's data plane (``http://127.0.0.1:PORT``): its in-cluster URLs are reached there."""


def kubeconfig_paths(kubeconfig: str | None = None) -> list[Path]:
    """The kubeconfig files kubectl would read: ``kubeconfig``, else ``$KUBECONFIG`` (``:``-separated), else ~."""
    spec = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [Path(p).expanduser() for p in spec.split(os.pathsep) if p]


def _load(paths: list[Path]) -> dict[str, Any]:
    merged: dict[str, Any] = {"contexts": [], "clusters": [], "current-context": ""}
    for path in paths:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as err:
            raise UserError(f"cannot read the kubeconfig {path}: {err}. Fix the file or point --context at "
                            "another one with KUBECONFIG=...") from None
        if not isinstance(raw, dict):
            continue
        # kubectl's merge rule: the first file that sets a value wins.
        merged["current-context"] = merged["current-context"] or raw.get("current-context") or ""
        for section in ("contexts", "clusters"):
            have = {item.get("name") for item in merged[section]}
            merged[section] += [i for i in raw.get(section) or [] if isinstance(i, dict) and i.get("name") not in have]
    return merged


def created_contexts() -> set[str]:
    """Contexts ``canarylab up`` created (the kind labs' state files, and the Docker-free lab while it is up)."""
    from canarylab.lab.state import created_contexts as lab_created

    found = lab_created()
    if _kwok_lab() is not None:
        found.add(KWOK_CONTEXT)
    return found


def _kwok_lab() -> tuple[str, str] | None:
    """``(kubeconfig, gateway)`` of the Docker-free lab when it is up and ready."""
    from canarylab.kwok import state

    record = state.ready()
    return None if record is None else (record.kubeconfig, record.gateway)


IN_CLUSTER = "in-cluster"
"""The name the service-account login goes by in messages (it has no kube context)."""


def resolve(context: str | None, kubeconfig: str | None = None, serviceaccount_dir: str | None = None) -> Target:
    """The context to use. Without ``--context``: the Docker-free lab when it is up; without any kubeconfig
    file, in a pod, the pod's service account (:mod:`canarylab.kube.incluster`); otherwise only the lab's own
    context qualifies, and only if canarylab created it; anything else is a :class:`UserError` that says what
    to do."""
    kwok = _kwok_lab()
    if context is None and kwok is not None:
        if LAB_CONTEXT in created_contexts():
            raise UserError(f"two canarylab labs are up: the Docker-free lab ({KWOK_CONTEXT}) and the kind lab "
                            f"({LAB_CONTEXT}); say which with --context {KWOK_CONTEXT} or --context {LAB_CONTEXT}.")
        context = KWOK_CONTEXT
    paths = kubeconfig_paths(kubeconfig)
    if context is None and not any(p.is_file() for p in paths):
        account = detect(directory=serviceaccount_dir)
        if account is not None:
            return Target(IN_CLUSTER, account.server, kubeconfig, False, account)
    created = created_contexts()
    config = _load(paths)
    names = [c.get("name") for c in config["contexts"]]
    where = ", ".join(str(p) for p in paths)
    if context == KWOK_CONTEXT and kwok is not None:
        lab_kubeconfig, gateway = kwok
        lab_server = server_of(KWOK_CONTEXT, lab_kubeconfig)
        # The lab's own kubeconfig, unless the user's kubeconfig names a different cluster by that context name
        # (e.g. a test's control plane): then that one, as any context, and not treated as the lab.
        if KWOK_CONTEXT not in names or server_of(KWOK_CONTEXT, kubeconfig) == lab_server:
            return Target(KWOK_CONTEXT, lab_server, lab_kubeconfig, True, gateway=gateway or None)
        created.discard(KWOK_CONTEXT)
    elif context == KWOK_CONTEXT and KWOK_CONTEXT not in names:
        raise UserError(f"--context {KWOK_CONTEXT}: the Docker-free lab is not up (and your kubeconfig {where} has "
                        "no such context); start it with `canarylab up --runtime kwok`.")
    if context is None:
        if LAB_CONTEXT not in created:
            current = config["current-context"]
            hint = f" (your current context is {current!r})" if current else ""
            raise UserError(
                f"no lab cluster: canarylab did not create the context {LAB_CONTEXT!r}, and it never acts on a "
                f"context you did not name{hint}. Run `canarylab up --runtime kwok` (no Docker needed) or "
                "`canarylab up` (kind) to build a lab, or name a cluster with "
                "`canarylab engine --context CTX --namespace NS` (the engine then only acts on Canaries in NS)."
            )
        context = LAB_CONTEXT
    if context not in names:
        known = ", ".join(sorted(n for n in names if n)) or "none"
        raise UserError(f"--context {context!r} is not in your kubeconfig ({where}); contexts there: {known}. "
                        "Use `kubectl config get-contexts` to list them.")
    ctx = next(c for c in config["contexts"] if c.get("name") == context).get("context") or {}
    cluster: dict[str, Any] = next((c for c in config["clusters"] if c.get("name") == ctx.get("cluster")), {})
    server = (cluster.get("cluster") or {}).get("server", "")
    return Target(context, server, kubeconfig, context in created)


def server_of(context: str | None, kubeconfig: str | None = None) -> str:
    """The API server URL of ``context`` (the current context when ``None``), or ``""`` if unknown."""
    try:
        config = _load(kubeconfig_paths(kubeconfig))
    except UserError:
        return ""
    name = context or config["current-context"]
    ctx = next((c.get("context") or {} for c in config["contexts"] if c.get("name") == name), {})
    cluster = next((c.get("cluster") or {} for c in config["clusters"] if c.get("name") == ctx.get("cluster")), {})
    return str(cluster.get("server", ""))


def check_namespaces(target: Target, namespaces: list[str], readonly: bool) -> None:
    """Refuse to act on a context canarylab did not create unless the user named the namespaces."""
    if target.created_by_canarylab or target.service_account is not None or readonly or namespaces:
        return
    raise UserError(
        f"context {target.context!r} was not created by canarylab, so the engine only acts on Canaries in "
        "namespaces you name: add --namespace NS (repeatable), e.g. "
        f"`canarylab engine --context {target.context} --namespace test`, or add --readonly to only watch."
    )
