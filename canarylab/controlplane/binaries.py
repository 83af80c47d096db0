"""Where the control plane's binaries are: the substrate cache (``make substrate``), then the tools directory
of ``canarylab tools install``, then ``PATH``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

from canarylab.errors import UserError

KUBERNETES = "v1.34.12"
ETCD = "v3.6.4"
KWOK = "v0.7.0"
"""The pinned versions; ``substrate/versions.env`` says the same (a test checks)."""

NAMES = {"etcd": "etcd", "kube_apiserver": "kube-apiserver", "kube_controller_manager": "kube-controller-manager",
         "kube_scheduler": "kube-scheduler", "kubectl": "kubectl", "kwok": "kwok"}
"""Field name -> executable name."""


class MissingBinaries(UserError):
    """Some control-plane binaries were found nowhere; the message says where we looked and how to get them."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


def substrate_cache() -> Path:
    """The root of ``substrate/build``'s cache (same rule as the script)."""
    if os.environ.get("CANARYLAB_SUBSTRATE_CACHE"):
        return Path(os.environ["CANARYLAB_SUBSTRATE_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "canarylab" / "substrate"


def search_dirs() -> list[Path]:
    """Directories searched before ``PATH``, in order."""
    from canarylab.lab.state import bin_dir

    cache = substrate_cache()
    return [cache / f"kubernetes-{KUBERNETES}-etcd-{ETCD}" / "bin", cache / f"kwok-{KWOK}" / "bin", bin_dir()]


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the six executables a control plane needs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path

    @classmethod
    def locate(cls, extra: list[Path] | None = None) -> Binaries:
        """Find every binary (``extra`` dirs first); raise :class:`MissingBinaries` naming the fix."""
        dirs = [*(extra or []), *search_dirs()]
        found: dict[str, Path] = {}
        missing: list[str] = []
        for field, exe in NAMES.items():
            path = next((d / exe for d in dirs if os.access(d / exe, os.X_OK) and (d / exe).is_file()), None)
            if path is None:
                on_path = shutil.which(exe)
                path = Path(on_path) if on_path else None
            if path is None:
                missing.append(exe)
            else:
                found[field] = path
        if missing:
            where = ", ".join(str(d) for d in dirs)
            raise MissingBinaries(
                f"the local Kubernetes control plane needs {', '.join(missing)}, found nowhere (looked in {where} "
                f"and PATH). In a source checkout build them with `make substrate` (Go, kubernetes {KUBERNETES}, "
                f"etcd {ETCD}, kwok {KWOK}; about 15 minutes cold, cached after); elsewhere run "
                "`canarylab tools install`.")
        return cls(**found)

    def paths(self) -> dict[str, Path]:
        """Executable name -> path."""
        return {NAMES[f.name]: getattr(self, f.name) for f in fields(self)}


GATEWAY_API = "v1.2.1"
"""The Gateway API release whose CRDs (HTTPRoute) ``substrate/build`` copies from its Go module."""


def gateway_api_crds() -> Path:
    """The directory with the Gateway API standard CRDs; :class:`MissingBinaries` naming the fix when absent."""
    from canarylab.lab.state import cache_root

    name = f"gateway-api-{GATEWAY_API}"
    dirs = (substrate_cache() / name / "crds", cache_root() / "crds" / name)
    for d in dirs:
        if (d / "gateway.networking.k8s.io_httproutes.yaml").is_file():
            return d
    raise MissingBinaries(f"the Gateway API {GATEWAY_API} CRDs are missing (looked in "
                          f"{substrate_cache() / f'gateway-api-{GATEWAY_API}' / 'crds'}). In a source checkout run "
                          "`make substrate`; elsewhere `canarylab tools install`.")
