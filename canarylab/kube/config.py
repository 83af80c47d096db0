"""Which kube context and API server the engine talks to, and whether it may act there on its own.

Safety rule (issue 6): the engine never touches a kube context canarylab did not create unless the user names
it with ``--context``; on such a context it only acts on Canaries in namespaces named with ``--namespace``.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


class KubeconfigError(UserError):
    """A kubeconfig canarylab cannot use; the message names the file, the entry and the fix (exit 2)."""


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
             bool: "a boolean", type(None): "empty"}
    shown = repr(value) if not isinstance(value, dict | list) else ""
    return names.get(type(value), type(value).__name__) + (f" ({shown[:40]})" if shown else "")


def _read(path: Path) -> dict[str, Any] | None:
    """One kubeconfig file as a mapping; ``None`` when it does not exist (kubectl skips those)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise KubeconfigError(f"cannot read the kubeconfig {path}: {err.strerror or err}. Fix its permissions, or "
                              "point KUBECONFIG at another file.") from None
    if len(data) > 16 * 1024 * 1024:
        raise KubeconfigError(f"the kubeconfig {path} is {len(data) // (1024 * 1024)} MB, far more than any "
                              "kubeconfig; point KUBECONFIG at the right file.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise KubeconfigError(f"the kubeconfig {path} is not a kubeconfig: byte {err.start} is not UTF-8 text "
                              "(a binary file?). Point KUBECONFIG at your kubeconfig, or regenerate it (for the "
                              "lab: `kind export kubeconfig --name canarylab`).") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise KubeconfigError(f"the kubeconfig {path} is not valid YAML{where}: {problem}. Fix the file, or point "
                              "KUBECONFIG at another one.") from None
    except (RecursionError, ValueError) as err:
        raise KubeconfigError(f"the kubeconfig {path} cannot be parsed ({type(err).__name__}: "
                              f"{str(err)[:80]}). Fix the file, or point KUBECONFIG at another one.") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise KubeconfigError(f"the kubeconfig {path} is not a kubeconfig: its top level is {_kind(raw)}, not a "
                              "mapping with clusters, contexts and users. Point KUBECONFIG at your kubeconfig.")
    current = raw.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigError(f"the kubeconfig {path}: current-context must be a context name, not {_kind(current)}. "
                              "Fix it with `kubectl config use-context NAME`.")
    for section, inner in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
        items = raw.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise KubeconfigError(f"the kubeconfig {path}: {section} must be a list of {{name, {inner}}} entries, "
                                  f"not {_kind(items)}. Fix the file (`kubectl config view` shows the expected "
                                  "shape).")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item.get("name"):
                got = _kind(item) if not isinstance(item, dict) else "an entry without a name"
                raise KubeconfigError(f"the kubeconfig {path}: {section}[{i}] must be a mapping with a name and a "
                                      f"{inner}, not {got}. Fix or remove that entry.")
            if item.get(inner) is not None and not isinstance(item.get(inner), dict):
                raise KubeconfigError(f"the kubeconfig {path}: {section}[{i}] ({item['name']!r}): {inner} must be a "
                                      f"mapping, not {_kind(item[inner])}. Fix or remove that entry.")
    return raw


def _load(paths: list[Path]) -> dict[str, Any]:
    """The kubeconfig files merged as kubectl merges them; each entry remembers its file (``_file``)."""
    merged: dict[str, Any] = {"contexts": [], "clusters": [], "users": [], "current-context": "",
                              "current-file": None}
    for path in paths:
        raw = _read(path)
        if raw is None:
            continue
        # kubectl's merge rule: the first file that sets a value wins.
        if not merged["current-context"] and raw.get("current-context"):
            merged["current-context"], merged["current-file"] = raw["current-context"], path
        for section in ("contexts", "clusters", "users"):
            have = {item["name"] for item in merged[section]}
            merged[section] += [{**i, "_file": path} for i in raw.get(section) or [] if i["name"] not in have]
    return merged


def _entry(config: dict[str, Any], section: str, name: str) -> dict[str, Any] | None:
    return next((c for c in config[section] if c["name"] == name), None)


def _pem(data: Any, what: str, where: str, fix: str) -> bytes:
    if not isinstance(data, str):
        raise KubeconfigError(f"{where}: {what} must be base64 text, not {_kind(data)}. {fix}")
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KubeconfigError(f"{where}: {what} is not valid base64. {fix}") from None
    if b"-----BEGIN " not in raw:
        raise KubeconfigError(f"{where}: {what} does not hold PEM data (no -----BEGIN line after base64 "
                              f"decoding). {fix}")
    return raw


def _check_ca(pem: bytes, where: str, fix: str) -> None:
    try:
        ssl.create_default_context(cadata=pem.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as err:
        raise KubeconfigError(f"{where}: certificate-authority-data is not a usable certificate "
                              f"({err.__class__.__name__}: {getattr(err, 'reason', None) or err}). {fix}") from None


def _check_client_pair(cert: bytes, key: bytes, where: str, fix: str) -> None:
    with tempfile.TemporaryDirectory(prefix="canarylab-kubeconfig-") as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, ValueError) as err:
            raise KubeconfigError(f"{where}: client-certificate-data and client-key-data are not a usable "
                                  f"certificate and key ({getattr(err, 'reason', None) or err}). {fix}") from None


def check_context(config: dict[str, Any], context: str) -> str:
    """Check everything ``context`` needs (its cluster, server, user, certificates); returns the server URL."""
    entry = _entry(config, "contexts", context)
    assert entry is not None
    file = entry["_file"]
    ctx = entry.get("context") or {}
    where = f"the kubeconfig {file}: context {context!r}"
    fix_ctx = f"Fix it with `kubectl config set-context {context} --cluster=CLUSTER --user=USER`."
    for field in ("cluster", "user"):
        if not isinstance(ctx.get(field), str) or not ctx.get(field):
            raise KubeconfigError(f"{where} names no {field}. {fix_ctx}")
    cluster = _entry(config, "clusters", ctx["cluster"])
    if cluster is None:
        known = ", ".join(sorted(c["name"] for c in config["clusters"])) or "none"
        raise KubeconfigError(f"{where} names the cluster {ctx['cluster']!r}, which is not in your kubeconfig "
                              f"(clusters: {known}). {fix_ctx}")
    user = _entry(config, "users", ctx["user"])
    if user is None:
        known = ", ".join(sorted(u["name"] for u in config["users"])) or "none"
        raise KubeconfigError(f"{where} names the user {ctx['user']!r}, which is not in your kubeconfig "
                              f"(users: {known}). {fix_ctx}")
    c = cluster.get("cluster") or {}
    cwhere = f"the kubeconfig {cluster['_file']}: cluster {cluster['name']!r}"
    cfix = (f"Fix it with `kubectl config set-cluster {cluster['name']} --server=https://HOST:PORT "
            "--certificate-authority=CA.crt --embed-certs`, or regenerate the kubeconfig.")
    server = c.get("server")
    if not isinstance(server, str) or not server.strip():
        raise KubeconfigError(f"{cwhere} has no server URL. {cfix}")
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KubeconfigError(f"{cwhere}: server {server!r} is not an http(s) URL with a host. {cfix}")
    if c.get("certificate-authority-data") is not None:
        _check_ca(_pem(c["certificate-authority-data"], "certificate-authority-data", cwhere, cfix), cwhere, cfix)
    elif c.get("certificate-authority") is not None:
        ca = c["certificate-authority"]
        if not isinstance(ca, str) or not Path(ca).expanduser().is_file():
            raise KubeconfigError(f"{cwhere}: certificate-authority {ca!r} is not a file. {cfix}")
    u = user.get("user") or {}
    uwhere = f"the kubeconfig {user['_file']}: user {user['name']!r}"
    ufix = (f"Fix it with `kubectl config set-credentials {user['name']} --client-certificate=CERT "
            "--client-key=KEY --embed-certs` (or --token=TOKEN), or regenerate the kubeconfig.")
    cert_data, key_data = u.get("client-certificate-data"), u.get("client-key-data")
    if (cert_data is None) != (key_data is None):
        missing = "client-key-data" if key_data is None else "client-certificate-data"
        raise KubeconfigError(f"{uwhere} has one half of a client certificate: {missing} is missing. {ufix}")
    if cert_data is not None:
        cert = _pem(cert_data, "client-certificate-data", uwhere, ufix)
        key = _pem(key_data, "client-key-data", uwhere, ufix)
        _check_client_pair(cert, key, uwhere, ufix)
    for field in ("token", "username", "password"):
        if u.get(field) is not None and not isinstance(u[field], str | int):
            raise KubeconfigError(f"{uwhere}: {field} must be text, not {_kind(u[field])}. {ufix}")
    for field in ("client-certificate", "client-key", "tokenFile"):
        if u.get(field) is not None and (not isinstance(u[field], str) or not Path(u[field]).expanduser().is_file()):
            raise KubeconfigError(f"{uwhere}: {field} {u[field]!r} is not a file. {ufix}")
    exec_ = u.get("exec")
    if exec_ is not None and (not isinstance(exec_, dict) or not isinstance(exec_.get("command"), str)):
        raise KubeconfigError(f"{uwhere}: exec must be a mapping with a command (an exec credential plugin). {ufix}")
    return server.strip()


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
    names = [c["name"] for c in config["contexts"]]
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
    server = check_context(config, context)
    return Target(context, server, kubeconfig, context in created)


def server_of(context: str | None, kubeconfig: str | None = None) -> str:
    """The API server URL of ``context`` (the current context when ``None``), or ``""`` if unknown."""
    try:
        config = _load(kubeconfig_paths(kubeconfig))
    except UserError:
        return ""
    name = context or config["current-context"]
    entry = _entry(config, "contexts", name) if name else None
    if entry is None:
        return ""
    try:
        return check_context(config, name)
    except UserError:
        return ""


def namespace_of(context: str | None, kubeconfig: str | None = None) -> str | None:
    """The default namespace of ``context`` (``"default"`` when it sets none), or ``None`` without a context.

    Given to kr8s explicitly: kr8s otherwise reads it from ``current-context`` even when a context is named, and
    a kubeconfig without ``current-context`` (valid for kubectl) failed with only ``KeyError: 'current-context'``.
    """
    if context is None:
        return None
    try:
        entry = _entry(_load(kubeconfig_paths(kubeconfig)), "contexts", context)
    except UserError:
        return "default"
    namespace = ((entry or {}).get("context") or {}).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else "default"


def check_namespaces(target: Target, namespaces: list[str], readonly: bool) -> None:
    """Refuse to act on a context canarylab did not create unless the user named the namespaces."""
    if target.created_by_canarylab or target.service_account is not None or readonly or namespaces:
        return
    raise UserError(
        f"context {target.context!r} was not created by canarylab, so the engine only acts on Canaries in "
        "namespaces you name: add --namespace NS (repeatable), e.g. "
        f"`canarylab engine --context {target.context} --namespace test`, or add --readonly to only watch."
    )
