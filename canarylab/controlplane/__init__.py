"""A real Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, KWOK) for the tests and the Docker-free lab. See :class:`ControlPlane`."""

from canarylab.controlplane.binaries import Binaries, MissingBinaries
from canarylab.controlplane.launcher import ControlPlane, ControlPlaneError

__all__ = ["Binaries", "ControlPlane", "ControlPlaneError", "MissingBinaries"]
