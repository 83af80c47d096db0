"""``canarylab ui`` end to end: the dashboard as ``run_ui`` builds it, on :class:`KubeLab` over HTTP.

The cluster is the in-memory Kubernetes API of ``tests/kube`` (kmock, on 127.0.0.1, fresh per test), webhooks go
to the loadtester stand-in through the API server's service proxy, and the checks read FakeMetrics (the
Metrics port's fake, injected as ``tests/kube/test_engine_over_http.py`` does). The engine is the real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from canarylab.app import MUTATING, CanaryLabApp
from canarylab.engine import controller
from canarylab.engine.kinds import DEPLOYMENT
from canarylab.keymap import KEYS
from canarylab.kube.lab import KubeLab
from canarylab.manifests import seed_lab
from canarylab.screens.bump_image import BumpImageScreen
from canarylab.screens.detail import DetailScreen
from canarylab.widgets.traffic_bar import TrafficBar
from tests.doubles import FakeMetrics
from tests.kube.apiserver import ApiServer, ready_deployments
from tests.kube.conftest import apiserver, kubeconfig  # noqa: F401 (fixtures: a fresh API server per test)
from tests.kube.loadtester import run_loadtester

from .conftest import FAST, until
from .screen_text import screen_text

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def no_lab_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hermetic: canarylab created no context on this machine (``kmock`` is someone else's cluster)."""
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def seeded(apiserver: ApiServer) -> ApiServer:  # noqa: F811 (the imported fixture)
    """The seed tutorial's lab in the API server, its Deployments becoming ready at once (no pods run here)."""
    apiserver.controllers.append(ready_deployments)
    for obj in seed_lab():
        apiserver.put_object(obj)
    return apiserver


@asynccontextmanager
async def ui(server: ApiServer, config: Path, *, readonly: bool = False) -> AsyncIterator[CanaryLabApp]:
    """What ``canarylab ui --context kmock -n test [--readonly]`` runs: the lab started first, then the app."""
    async with run_loadtester() as loadtester:
        server.proxy_service("test", "flagger-loadtester", 80, loadtester.url)
        lab = KubeLab("kmock", ["test"], readonly=readonly, kubeconfig=str(config), metrics=FakeMetrics.healthy(),
                      speed=FAST, log=lambda line: None)
        await lab.start()
        try:
            yield CanaryLabApp(lab, start_lab=False)
        finally:
            await lab.stop()


def line(app: CanaryLabApp, index: int) -> str:
    """One line of the screen (``""`` before the first frame)."""
    lines = screen_text(app).splitlines()
    return lines[index] if lines else ""


async def test_ui_shows_the_seed_canary_and_b_ships_3_1_1_with_the_weight_moving_on_screen(
        seeded: ApiServer, kubeconfig: Path) -> None:  # noqa: F811
    async with ui(seeded, kubeconfig) as app, app.run_test(size=(120, 40)) as pilot:
        # given the seed Canary on the cluster, the dashboard opens on its detail once the engine initialized it
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        await until(pilot, lambda: "Initialized" in screen_text(app), "the Canary Initialized on screen")
        text = screen_text(app)
        assert "context kmock" in text and "engine running" in text and "TrafficSplit podinfo" in text
        assert "Initialization done! podinfo.test" in text
        assert "press b to ship 3.1.1" in text and "f to break it" not in text  # no faults on a real cluster
        assert "Fault" not in line(app, -1)
        # when b is pressed and the proposed tag accepted
        await until(pilot, lambda: "podinfo:3.1.0" in screen_text(app), "the pods table's images")
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal")
        assert "stefanprodan/podinfo:3.1.1" in screen_text(app)
        await pilot.press("enter")
        # then the Deployment on the cluster has the new image, and the traffic moves on screen
        await until(pilot, lambda: "3.1.1" in str(seeded.objects(DEPLOYMENT, "test")), "the image on the cluster")
        await until(pilot, lambda: app.screen.query_one(TrafficBar)._split[1] >= 10, "the bar at 10%", timeout=60)
        await until(pilot, lambda: "Advance podinfo.test canary weight 10" in screen_text(app), "the events")
        text = screen_text(app)
        assert "Progressing" in text and "podinfo:3.1.1 canary" in text
        assert "New revision detected! Scaling up podinfo.test" in text


async def test_ui_readonly_shows_no_key_that_changes_anything(seeded: ApiServer, kubeconfig: Path) -> None:  # noqa: F811
    async with ui(seeded, kubeconfig, readonly=True) as app, app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        await until(pilot, lambda: "read-only" in line(app, 0), "the read-only header")
        await until(pilot, lambda: "Export" in line(app, -1), "the footer")
        footer = line(app, -1)
        mutating = [k.description for k in KEYS if k.mutating]
        assert mutating and not [label for label in mutating if label.split("/")[0] in footer]
        assert all(not app.check_action(action, ()) for action in MUTATING)
        # pressing them changes nothing on the cluster
        before = len(seeded.writes)
        await pilot.press("b", "r", "p", "space", "g")
        await pilot.pause(0.5)
        assert isinstance(app.screen, DetailScreen)
        assert len(seeded.writes) == before


async def test_ui_says_the_engine_stopped_when_its_task_dies(
    seeded: ApiServer, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    async with ui(seeded, kubeconfig) as app, app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: "Initialized" in screen_text(app), "the Canary Initialized on screen")
        assert isinstance(app.lab, KubeLab) and app.lab.failed_task() is None
        # when the engine hits a bug (injected: hashing a pod template fails) as the image changes, its task dies
        monkeypatch.setattr(controller, "template_hash", _injected_bug)
        await app.lab.set_image("test", "podinfo", "podinfod", "stefanprodan/podinfo:3.1.1")
        await until(pilot, lambda: app.lab.failed_task() is not None, "the engine task to die")  # type: ignore[attr-defined]
        # then the dashboard says so instead of showing a frozen lab as running
        await until(pilot, lambda: "engine stopped" in line(app, 0), "the header")
        await until(pilot, lambda: "the engine stopped" in screen_text(app), "the notification")
        assert "RuntimeError: injected engine bug" in screen_text(app)  # the cause, unwrapped


def _injected_bug(deployment: object) -> str:
    raise RuntimeError("injected engine bug")
