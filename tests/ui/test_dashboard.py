"""Scenarios on the dashboard driven by keys, on the real engine and simulated lab (fast lab clock)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from canarylab.app import CanaryLabApp
from canarylab.engine import controller
from canarylab.screens.bump_image import BumpImageScreen
from canarylab.screens.confirm import ConfirmScreen
from canarylab.screens.detail import DetailScreen
from canarylab.screens.fault import FaultScreen
from canarylab.screens.help import HelpScreen
from canarylab.screens.view import LabView
from canarylab.widgets.clock_text import hms
from canarylab.widgets.metric_chart import MetricChart
from canarylab.widgets.traffic_bar import TrafficBar

from .conftest import FASTER, until
from .screen_text import screen_text

MakeApp = Callable[..., CanaryLabApp]


def phase(app: CanaryLabApp) -> str:
    states = app.lab.engine.canary_states()
    return states[0].phase if states else ""


def weight(app: CanaryLabApp) -> int:
    states = app.lab.engine.canary_states()
    return states[0].canary_weight if states else 0


async def ship(app: CanaryLabApp, pilot: Pilot[None]) -> None:
    """Given the seed lab initialized, press b and accept the proposed 3.1.1."""
    await until(pilot, lambda: phase(app) == "Initialized", "the seed canary to be Initialized")
    await pilot.press("b")
    await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal")
    assert "stefanprodan/podinfo:3.1.1" in screen_text(app)
    await pilot.press("enter")


async def test_b_ships_3_1_1_and_the_bar_ladder_and_events_move(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        # given one canary, the dashboard opens on its detail with the walkthrough hint
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        await until(pilot, lambda: "press b to ship 3.1.1" in screen_text(app), "the walkthrough hint")
        # when b is pressed and the proposed tag accepted
        await ship(app, pilot)
        # then the analysis starts: the bar gives the canary traffic, the ladder climbs, events appear
        await until(pilot, lambda: weight(app) >= 10, "the canary weight to reach 10", timeout=60)
        await until(pilot, lambda: app.screen.query_one(TrafficBar)._split[1] >= 10, "the bar to move")
        text = screen_text(app)
        assert "podinfo:3.1.1 canary" in text
        assert "✔5%" in text and "▶" in text  # done steps and the current one on the ladder
        assert "New revision detected! Scaling up podinfo.test" in text
        assert "Advance podinfo.test canary weight 5" in text
        assert "Progressing" in text


async def test_a_fault_on_the_canary_leads_to_a_rollback_shown_on_screen(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ship(app, pilot)
        await until(pilot, lambda: weight(app) >= 5, "the analysis to start", timeout=60)
        # when f is pressed and "errors 50%" chosen
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FaultScreen), "the fault modal")
        assert "latency +600ms" in screen_text(app) and "clear" in screen_text(app)
        await pilot.press("down", "enter")
        # then the checks fail and the canary is rolled back, on screen
        await until(pilot, lambda: phase(app) == "Failed", "the rollback", timeout=90)
        await until(pilot, lambda: "rolled back" in screen_text(app), "the ladder to show the rollback")
        text = screen_text(app)
        assert "Failed" in text
        assert "Halt podinfo.test advancement success rate" in text
        assert "✘" in text  # the failing success-rate check
        # Flagger resets status.failedChecks on rollback; the dashboard still says how many failed
        assert "failed checks 5/5 before the rollback" in text
        assert app.screen.query_one(TrafficBar)._split[:2] == (100, 0)


async def test_r_asks_first_then_rolls_back(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ship(app, pilot)
        await until(pilot, lambda: weight(app) >= 5, "the analysis to start", timeout=60)
        # when r is pressed and the question answered no, nothing happens
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert "Roll back podinfo.test now?" in screen_text(app)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        assert phase(app) != "Failed"
        # when asked again and answered yes, the engine rolls back
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: phase(app) == "Failed", "the manual rollback", timeout=60)
        await until(pilot, lambda: "Rolling back podinfo.test manual" in screen_text(app), "the rollback event")


async def test_p_asks_first_then_promotes(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ship(app, pilot)
        await until(pilot, lambda: weight(app) >= 5, "the analysis to start", timeout=60)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert "Promote podinfo.test now?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: phase(app) == "Succeeded", "the promotion", timeout=60)
        await until(pilot, lambda: "Promotion completed! Scaling down podinfo.test" in screen_text(app), "the event")
        assert "promoted" in screen_text(app)


async def test_readonly_hides_every_key_that_changes_anything(make_app: MakeApp) -> None:
    app = make_app(readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        await until(pilot, lambda: "read-only" in screen_text(app), "the read-only header")
        await until(pilot, lambda: "Export" in screen_text(app).splitlines()[-1], "the footer")
        footer = screen_text(app).splitlines()[-1]
        for label in ("Ship", "Fault", "Roll back", "Promote", "Pause", "Open gate"):
            assert label not in footer
        # pressing them does nothing
        await pilot.press("b", "f", "r", "p", "space", "g")
        assert isinstance(app.screen, DetailScreen)
        # the help lists no mutating key either
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        help_text = screen_text(app)
        assert "Filter" in help_text and "Ship" not in help_text and "Roll back" not in help_text
        assert "Read-only" in help_text
        # nor does the command palette
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Export" in titles and "Ship" not in titles and "Promote" not in titles


async def test_ctrl_s_saves_a_markdown_report_and_an_svg(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ship(app, pilot)
        await until(pilot, lambda: weight(app) >= 10, "two steps", timeout=60)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: list(tmp_path.glob("*.md")) and list(tmp_path.glob("*.svg")), "the files")
    report = next(tmp_path.glob("canarylab-podinfo.test-*.md")).read_text()
    assert "## Timeline" in report and "New revision detected! Scaling up podinfo.test" in report
    assert "| 95% | 5% |" in report
    assert "### request-success-rate" in report and "| 99 | - | ok |" in report
    assert next(tmp_path.glob("*.svg")).read_text().startswith("<svg")


async def test_the_keymap_remaps_a_key_in_footer_help_and_action(make_app: MakeApp) -> None:
    app = make_app(keymap={"canarylab.bump": "ctrl+b"})
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: phase(app) == "Initialized", "the canary")
        await pilot.press("b")
        assert not isinstance(app.screen, BumpImageScreen)
        await pilot.press("ctrl+b")
        await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal on ctrl+b")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        assert "^b" in screen_text(app) or "ctrl+b" in screen_text(app)


async def test_g_opens_the_promotion_gate_the_canary_waits_at(make_app: MakeApp, tmp_path: Path) -> None:
    # given the seed Canary with a confirm-promotion gate on the loadtester (closed until opened)
    import yaml

    from canarylab.manifests import bootstrap_documents

    canary = bootstrap_documents("workloads", "podinfo-canary.yaml")[0]
    canary["spec"]["analysis"]["webhooks"].append(
        {"name": "ask-promotion", "type": "confirm-promotion", "url": "http://flagger-loadtester.test/gate/check"}
    )
    path = tmp_path / "gated.yaml"
    path.write_text(yaml.safe_dump(canary))
    app = make_app(files=(str(path),), speed=FASTER)
    async with app.run_test(size=(120, 40)) as pilot:
        await ship(app, pilot)
        # when the analysis reaches the top, it waits at the gate, marked on screen
        await until(pilot, lambda: phase(app) == "WaitingPromotion", "the promotion gate", timeout=90)
        await until(pilot, lambda: "waiting at gate ask-promotion: press g to open it" in screen_text(app), "the hint")
        assert "gate ask-promotion" in screen_text(app).splitlines()[0]  # in the header too
        # then g opens it and the canary is promoted
        await pilot.press("g")
        await until(pilot, lambda: phase(app) == "Succeeded", "the promotion after the gate", timeout=90)


async def test_space_pauses_and_resumes_the_analysis(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ship(app, pilot)
        await until(pilot, lambda: weight(app) >= 5, "the analysis to start", timeout=60)
        await pilot.press("space")
        await until(pilot, lambda: app.lab.engine.canary_states()[0].paused, "the pause")
        await until(pilot, lambda: "analysis paused: press space to resume" in screen_text(app), "the paused hint")
        paused_at, since = weight(app), app.lab.clock.now()
        # three analysis intervals of lab time: a running analysis would have moved
        await until(pilot, lambda: app.lab.clock.now() > since + 90, "90 lab seconds")
        assert weight(app) == paused_at
        await pilot.press("space")
        await until(pilot, lambda: weight(app) > paused_at, "the analysis to go on", timeout=60)


async def test_every_action_is_in_the_command_palette(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: phase(app) == "Initialized", "the canary")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Ship", "Fault", "Roll back", "Promote", "Pause/resume", "Open gate", "Filter", "Export",
                "Help", "Quit"} <= titles
        # when Ship is picked from the palette, the bump modal opens as with b
        await pilot.press("ctrl+p")
        await pilot.press(*"Ship")
        await until(pilot, lambda: "Bump the target" in screen_text(app), "the palette entry")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal from the palette")


async def test_repaints_are_coalesced_to_about_five_a_second(make_app: MakeApp) -> None:
    # given a run at 100x real time, where the engine emits many events a second
    app = make_app(speed=FASTER)
    async with app.run_test(size=(120, 40)) as pilot:
        await ship(app, pilot)
        await until(pilot, lambda: weight(app) >= 5, "the analysis to start", timeout=60)
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        calls: list[float] = []
        original = screen.show

        def counting_show(view: LabView) -> None:
            calls.append(app.lab.clock.now())
            original(view)

        screen.show = counting_show  # type: ignore[method-assign]
        events_before = app.history.version
        started = time.monotonic()
        await until(pilot, lambda: time.monotonic() - started > 2.0, "two seconds")
        # then the screen was redrawn at most ~5 times a second however many events arrived
        assert app.history.version > events_before
        assert 1 <= len(calls) <= 12


async def test_a_second_image_bump_starts_the_charts_over(make_app: MakeApp) -> None:
    app = make_app(speed=FASTER)
    async with app.run_test(size=(120, 40)) as pilot:
        # given a first run promoted, with its checks on the charts
        await ship(app, pilot)
        await until(pilot, lambda: phase(app) == "Succeeded", "the first promotion", timeout=90)

        def chart() -> MetricChart:
            return app.screen.query_one("#chart-request-success-rate", MetricChart)

        await until(pilot, lambda: len(chart()._samples) >= 10, "the first run's samples on the chart")
        first_run = chart()._samples
        history = app.history.of("test", "podinfo")
        assert history.run == 1 and {s.run for s in first_run} == {1}
        # when the next tag is shipped
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal")
        assert "stefanprodan/podinfo:3.1.2" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: history.run == 2, "the second New revision detected!")
        started = history.run_started[2]
        # then the chart starts over: only samples of the second run, none of the first
        await until(pilot, lambda: weight(app) >= 10, "two steps of the second run", timeout=60)
        await until(pilot, lambda: chart()._samples and chart()._samples[-1].run == 2, "a second-run sample")
        samples = chart()._samples
        assert all(s.run == 2 and s.time >= started for s in samples)
        assert len(samples) < len(first_run)
        assert f"metric checks · run since {hms(started)}" in screen_text(app)
        # while the report keeps both runs, labelled
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.export_dir and list(app.export_dir.glob("*.md")), "the report")
    assert app.export_dir is not None
    report = next(app.export_dir.glob("*.md")).read_text()
    assert "Run 1 (new revision at" in report and f"Run 2 (new revision at {hms(started)})" in report


async def test_at_80x24_the_detail_fits_hint_footer_and_one_line_events(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ship(app, pilot)
        await until(pilot, lambda: "Advance canary weight 10" in screen_text(app), "two steps, one line each")
        lines = screen_text(app).splitlines()
        # the hint in its short wording, whole; the footer keeps help and quit in view
        assert lines[-2].strip() == "running: f fault · p promote · r roll back · space pause"
        footer = lines[-1]
        for label in ("b Ship", "f Fault", "r Rollback", "p Promote", "space Pause", "? Help", "q Quit"):
            assert label in footer
        # every event is one line starting with its time (no wrapped continuation lines)
        events = [line.split("││", 1)[1] for line in lines if "││" in line]
        logged = [e for e in events if e[:2].isdigit()]
        assert any("Starting canary analysis" in e for e in logged)
        assert not any(e.strip("│ ").startswith(("podinfo", "canary weight")) for e in events)


async def test_the_header_and_a_notice_say_so_when_the_simulated_engine_dies(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: phase(app) == "Initialized", "the canary")
        # when the engine hits a bug (injected: hashing a pod template fails) as the image changes, its task dies
        monkeypatch.setattr(controller, "template_hash", _injected_bug)
        await app.lab.set_image("test", "podinfo", "podinfod", "stefanprodan/podinfo:3.1.1")
        await until(pilot, lambda: app.lab.failed_task() is not None, "a lab task to die")  # type: ignore[attr-defined]
        # then the dashboard says so instead of showing a frozen lab as running
        await until(pilot, lambda: "engine stopped" in screen_text(app).splitlines()[0], "the header")
        await until(pilot, lambda: "the engine stopped" in screen_text(app), "the notification")
        assert "RuntimeError: injected engine bug" in screen_text(app)  # the cause, unwrapped


def _injected_bug(deployment: object) -> str:
    raise RuntimeError("injected engine bug")
