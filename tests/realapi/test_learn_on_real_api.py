"""``canarylab learn`` on a real lab: the learner types kubectl, the step checks read the real API server.

No engine runs here: what is asserted is that the state parts of a check follow what the learner's own
``kubectl`` did, through the same kr8s Cluster adapter ``canarylab learn --context`` uses. The lessons name
namespace ``test`` (the seed's), so the test makes it and deletes it after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canarylab.controlplane import ControlPlane
from canarylab.kube.cluster import KubeCluster
from canarylab.learn.model import find_lesson, load_lessons
from canarylab.learn.tracker import Tracker, for_lab, prepare_work_dir
from canarylab.manifests import seed_lab
from tests.realapi.conftest import apply, kubectl

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def seed_in_test(lab_crds: ControlPlane) -> AsyncIterator[tuple[ControlPlane, KubeCluster]]:
    """Namespace ``test`` with the seed applied (as `canarylab up` leaves a lab), deleted after."""
    await kubectl(lab_crds, "create", "namespace", "test", check=False)
    await apply(lab_crds, [d for d in seed_lab() if d.get("kind") != "Namespace"])
    cluster = await KubeCluster.connect(lab_crds.context, kubeconfig=str(lab_crds.kubeconfig), backoff=(0.1, 1.0))
    try:
        yield lab_crds, cluster
    finally:
        # wait (bounded) until it is gone: other tests of the session use namespace test too
        await kubectl(lab_crds, "delete", "namespace", "test", "--wait=true", "--timeout=90s", check=False)


async def test_the_setup_step_passes_once_the_learner_applies_the_lesson_file(
        seed_in_test: tuple[ControlPlane, KubeCluster], tmp_path: Path) -> None:
    plane, cluster = seed_in_test
    lesson = for_lab(find_lesson(load_lessons(), "gates"), real=True, work_dir=tmp_path)
    prepare_work_dir(lesson, tmp_path)
    tracker = Tracker(lesson, cluster, tmp_path, real=True)
    # given the seed's Canary (no gate), the first step asks for kubectl apply and is not done
    assert tracker.view().do == f"type in another terminal: kubectl apply -f {tmp_path / 'gates-canary.yaml'}"
    assert not await tracker.update()
    # when the learner runs the command shown (the real kubectl, against the real API server)
    await kubectl(plane, "apply", "-f", str(tmp_path / "gates-canary.yaml"))
    # then the check sees it in the cluster and the lesson moves on to shipping
    assert await tracker.update()
    assert tracker.step is not None and tracker.step.title == "Ship into a closed gate"
    assert "kubectl -n test set image deployment/podinfo" in tracker.view().do


async def test_the_image_part_of_the_ship_step_follows_kubectl_set_image(
        seed_in_test: tuple[ControlPlane, KubeCluster], tmp_path: Path) -> None:
    plane, cluster = seed_in_test
    lesson = find_lesson(load_lessons(), "seed")
    tracker = Tracker(for_lab(lesson, real=True, work_dir=tmp_path), cluster, tmp_path, real=True, step_index=1)
    await tracker.update()
    assert (tracker.parts[0].text, tracker.parts[0].ok) == ("podinfo runs podinfo:3.1.1", False)
    await kubectl(plane, "-n", "test", "set", "image", "deployment/podinfo",
                  "podinfod=stefanprodan/podinfo:3.1.1")
    for _ in range(50):  # bounded: the API server answers at once, this only absorbs a slow machine
        await tracker.update()
        if tracker.parts and tracker.parts[0].ok:
            break
        await asyncio.sleep(0.1)
    # the state part holds; the event part waits for the engine, which this test does not run
    assert [(p.text, p.ok) for p in tracker.parts] == [
        ("podinfo runs podinfo:3.1.1", True), ('event "New revision detected! Scaling up podinfo.test"', False)]
    assert tracker.step_index == 1
