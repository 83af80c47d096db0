"""pytest plugin: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, KWOK) on 127.0.0.1, one per test session, and a fresh namespace per test.

Registered from ``tests/conftest.py``. The binaries come from ``make substrate`` (see
:meth:`canarylab.controlplane.Binaries.locate`); when they are missing the tests that use the fixture FAIL
with the fix named, they are never skipped. The control plane's logs stay under the session's temporary
directory; the path is printed in the summary and in every start failure.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from canarylab.controlplane import ControlPlane, ControlPlaneError, MissingBinaries


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane; ``.kubeconfig`` has the context ``canarylab-kwok`` (admin)."""
    state = tmp_path_factory.mktemp("controlplane")
    plane = ControlPlane(state, nodes=2)
    began = time.monotonic()
    try:
        plane.start()
    except MissingBinaries as err:
        pytest.fail(f"{err}", pytrace=False)
    except ControlPlaneError as err:
        pytest.fail(f"the test control plane did not start: {err}\n(all logs: {plane.logs_dir})", pytrace=False)
    # Under pytest-xdist each worker starts its own; the controller's summary reads these notes.
    note = _notes_dir(tmp_path_factory) / f"controlplane-{uuid.uuid4().hex[:6]}.txt"
    note.write_text(f"real control plane: started in {time.monotonic() - began:.1f}s, logs in {plane.logs_dir}\n")
    try:
        yield plane
    finally:
        plane.stop()


def ensure_running(plane: ControlPlane) -> None:
    """Bring back any component a test stopped and did not restart (so one failure does not cascade)."""
    for name, component in plane.components.items():
        if not component.running():
            plane.start_component(name, timeout=60)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:40].rstrip("-") or "t"


@pytest.fixture
def kube_namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (its ``default`` ServiceAccount exists, so pods can be created); deleted after."""
    ensure_running(control_plane)
    name = f"{_slug(request.node.name)}-{uuid.uuid4().hex[:5]}"
    with control_plane.http() as http:
        answer = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": name}})
        assert answer.status_code == 201, answer.text
        end = time.monotonic() + 20
        while http.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code != 200:
            assert time.monotonic() < end, f"kube-controller-manager made no default ServiceAccount in {name}"
            time.sleep(0.05)
    try:
        yield name
    finally:
        with control_plane.http() as http:
            http.delete(f"/api/v1/namespaces/{name}")


def _notes_dir(factory: pytest.TempPathFactory) -> Path:
    """The run's base temporary directory (a worker's is one level below the controller's)."""
    base = factory.getbasetemp()
    return base.parent if base.name.startswith("popen-gw") else base


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how long each control plane took to start and where its logs are."""
    factory = getattr(terminalreporter.config, "_tmp_path_factory", None)
    if factory is None or hasattr(terminalreporter.config, "workerinput"):
        return
    for note in sorted(_notes_dir(factory).glob("controlplane-*.txt")):
        terminalreporter.write_line(note.read_text().strip())


LAB_CRDS = ("customresourcedefinitions/canaries.flagger.app", "customresourcedefinitions/metrictemplates.flagger.app",
            "customresourcedefinitions/alertproviders.flagger.app",
            "customresourcedefinitions/trafficsplits.split.smi-spec.io",
            "customresourcedefinitions/httproutes.gateway.networking.k8s.io")


def install_lab_crds(plane: ControlPlane) -> None:
    """Apply Flagger's CRDs, the SMI TrafficSplit and the Gateway API CRDs (server-side) and wait until served."""
    from canarylab.controlplane.binaries import gateway_api_crds
    from canarylab.manifests import bootstrap_file

    files = [bootstrap_file("crds", "flagger.yaml"), bootstrap_file("crds", "smi-trafficsplit.yaml"),
             *sorted(gateway_api_crds().glob("*.yaml"))]
    args = ["apply", "--server-side", "--force-conflicts"]
    for f in files:
        args += ["-f", str(f)]
    plane.kubectl(*args)
    plane.kubectl("wait", "--for", "condition=Established", "--timeout=60s", *LAB_CRDS, timeout=70)


@pytest.fixture(scope="session")
def lab_crds(control_plane: ControlPlane) -> ControlPlane:
    """The control plane with the lab's CRDs (Canary, MetricTemplate, AlertProvider, TrafficSplit, HTTPRoute)."""
    try:
        install_lab_crds(control_plane)
    except MissingBinaries as err:
        pytest.fail(str(err), pytrace=False)
    return control_plane
