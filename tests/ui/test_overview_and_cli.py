"""The overview with several Canaries, and how ``canarylab demo``/``ui`` fail on bad input."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from canarylab.app import CanaryLabApp
from canarylab.manifests import bootstrap_documents
from canarylab.screens.detail import DetailScreen
from canarylab.screens.overview import OverviewScreen
from canarylab.widgets.canary_table import CanaryTable

from .conftest import until
from .screen_text import screen_text

MakeApp = Callable[..., CanaryLabApp]


def two_canaries(tmp_path: Path) -> str:
    """The seed's podinfo Canary plus the same app as ``frontend`` in namespace ``shop``."""
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}]
    for doc in [*bootstrap_documents("workloads", "podinfo.yaml"),
                *bootstrap_documents("workloads", "podinfo-canary.yaml")]:
        twin = copy.deepcopy(doc)
        twin["metadata"].update(namespace="shop", name="frontend")
        twin["metadata"].pop("labels", None)
        if twin["kind"] == "Canary":
            twin["spec"]["targetRef"]["name"] = twin["spec"]["autoscalerRef"]["name"] = "frontend"
            twin["spec"]["analysis"].pop("webhooks")
        elif twin["kind"] == "HorizontalPodAutoscaler":
            twin["spec"]["scaleTargetRef"]["name"] = "frontend"
        else:
            twin["spec"]["selector"]["matchLabels"] = {"app": "frontend"}
            twin["spec"]["template"]["metadata"]["labels"] = {"app": "frontend"}
        docs.append(twin)
    docs += bootstrap_documents("workloads", "podinfo-canary.yaml")
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


async def test_the_overview_lists_filters_sorts_and_opens_canaries(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app(files=(two_canaries(tmp_path),))
    async with app.run_test(size=(120, 30)) as pilot:
        # given two canaries, the dashboard stays on the overview, one row each, like kubectl get canaries -A
        await until(pilot, lambda: len(app.lab.engine.canary_states()) == 2, "two canaries")
        # (the summary line can be painted a frame before the table's rows: wait for both)
        await until(pilot, lambda: all(word in screen_text(app) for word in ("2 of 2 canaries", "frontend", "shop")),
                    "both rows")
        assert isinstance(app.screen, OverviewScreen)
        text = screen_text(app)
        assert "NAMESPACE" in text and "LASTTRANSITION" in text
        assert "shop" in text and "frontend" in text and "podinfo" in text
        # when sorted by name, frontend comes first
        table = app.screen.query_one(CanaryTable)
        while table.sort_by != "name":
            await pilot.press("s")
        await until(pilot, lambda: table.selected_key() is not None, "a row under the cursor")
        assert [str(k.value) for k in table.rows] == ["shop/frontend", "test/podinfo"]
        # when filtered with / for "test", only podinfo is left, and Enter opens it
        await pilot.press("slash", "t", "e", "s", "t", "enter")
        await until(pilot, lambda: "1 of 2 canaries" in screen_text(app), "the filtered table")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail")
        assert app.screen.key == ("test", "podinfo")  # type: ignore[attr-defined]
        # and Escape goes back to the overview
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canarylab.cli", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_a_bad_file_is_one_paragraph_and_exit_2_before_the_tui(tmp_path: Path) -> None:
    missing = run_cli("demo", "-f", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "nope.yaml: no such file" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Canary\nmetadata: {name: x, namespace: test}\nspec: [\n")
    result = run_cli("demo", "-f", str(broken))
    assert result.returncode == 2 and "broken.yaml" in result.stderr and "Traceback" not in result.stderr
    assert "\x1b[" not in result.stdout  # the TUI never started


def test_a_bad_keymap_is_reported_before_the_tui(tmp_path: Path) -> None:
    keymap = tmp_path / "keys.yaml"
    keymap.write_text("ship: s\n")
    result = subprocess.run([sys.executable, "-m", "canarylab.cli", "demo"], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL, env={"CANARYLAB_KEYMAP": str(keymap),
                                                                       "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "unknown binding id 'ship'" in result.stderr
