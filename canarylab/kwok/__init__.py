"""The Docker-free lab: a real control plane (``canarylab.controlplane``), the simulated data plane attached
to it, a real Prometheus and the seed's manifests, run in the background by ``canarylab up --runtime kwok``."""
