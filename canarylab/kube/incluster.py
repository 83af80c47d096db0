"""Logging in as a pod does: the service account's token and CA, and ``KUBERNETES_SERVICE_HOST``/``_PORT``.

The kubelet mounts ``token``, ``ca.crt`` and ``namespace`` under
``/var/run/secrets/kubernetes.io/serviceaccount`` and sets the two variables. ``canarylab engine`` uses them
when it is given no ``--context`` and finds no kubeconfig (the same rule as client-go's in-cluster config and
kr8s). ``CANARYLAB_SERVICEACCOUNT_DIR`` (or ``--serviceaccount-dir``) points at another directory with the
same three files: tests use it to run the engine on the host exactly as a pod would.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from canarylab.errors import UserError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts a pod's service-account token, CA and namespace."""

DIR_ENV = "CANARYLAB_SERVICEACCOUNT_DIR"
"""Environment variable naming another directory with ``token``, ``ca.crt`` and ``namespace``."""


@dataclass(frozen=True)
class ServiceAccount:
    """A pod's login: the directory of its token, the API server's address, its namespace and name."""

    dir: Path
    host: str
    port: str
    namespace: str
    name: str

    @property
    def server(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 service address
        return f"https://{host}:{self.port}"

    @property
    def title(self) -> str:
        """``in-cluster (service account canarylab/canarylab-engine)``."""
        return f"in-cluster (service account {self.namespace}/{self.name})"


def account_of(token: str) -> tuple[str, str]:
    """``(namespace, name)`` from a service-account token's ``sub`` claim, or ``("", "")`` if unreadable.

    Only read for messages; the API server verifies the token, not us."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        parts = str(claims.get("sub", "")).split(":")
    except (IndexError, ValueError, UnicodeDecodeError, AttributeError):
        return "", ""
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return parts[2], parts[3]
    return "", ""


def detect(environ: Mapping[str, str] | None = None, directory: str | None = None) -> ServiceAccount | None:
    """The pod's service account, or ``None`` when not in a pod (``KUBERNETES_SERVICE_HOST`` unset).

    In a pod whose token or CA is missing (``automountServiceAccountToken: false``), a :class:`UserError` says
    which file and what to do.
    """
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host:
        return None
    where = Path(directory or env.get(DIR_ENV) or SERVICE_ACCOUNT_DIR)
    if not port:
        raise UserError("KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not: set both (the kubelet "
                        "does in a pod), or unset KUBERNETES_SERVICE_HOST to use a kubeconfig.")
    token_file, ca_file = where / "token", where / "ca.crt"
    for path, what in ((token_file, "token"), (ca_file, "CA certificate")):
        if not path.is_file():
            raise UserError(
                f"in-cluster login: no service-account {what} at {path}. In a pod, leave "
                "automountServiceAccountToken on (deploy/base sets serviceAccountName: canarylab-engine); "
                f"elsewhere point {DIR_ENV} at a directory with token, ca.crt and namespace, or use a kubeconfig "
                "with --context.")
    try:
        token = token_file.read_text().strip()
    except OSError as err:
        raise UserError(f"in-cluster login: cannot read {token_file}: {err.strerror or err}") from None
    ns_from_token, name = account_of(token)
    ns_file = where / "namespace"
    try:
        namespace = ns_file.read_text().strip() if ns_file.is_file() else ns_from_token
    except OSError:
        namespace = ns_from_token
    return ServiceAccount(where, host, port, namespace or "default", name or "(unknown)")
