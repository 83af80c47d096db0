"""The screen tells the truth (issue 13): faults, keys that cannot act now, a ship during initialization,
quitting, the help box, where reports go and the routine startup warning; Pilot on the real engine and lab."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Label

from canarylab.app import CanaryLabApp
from canarylab.engine.kinds import DEPLOYMENT
from canarylab.screens.bump_image import BumpImageScreen
from canarylab.screens.confirm import ConfirmScreen
from canarylab.screens.detail import DetailScreen
from canarylab.screens.fault import FaultScreen
from canarylab.screens.help import HelpScreen
from canarylab.screens.report import reports_dir
from canarylab.sim.lab import SimLab
from canarylab.widgets.clock_text import hms
from canarylab.widgets.fault_line import FaultLine
from canarylab.widgets.lab_header import LabHeader

from .conftest import FAST, until
from .screen_text import screen_text

MakeApp = Callable[..., CanaryLabApp]


def phase(app: CanaryLabApp) -> str:
    states = app.lab.engine.canary_states()
    return states[0].phase if states else ""


def weight(app: CanaryLabApp) -> int:
    states = app.lab.engine.canary_states()
    return states[0].canary_weight if states else 0


def hint_line(app: CanaryLabApp) -> str:
    return screen_text(app).splitlines()[-2].strip()


def notices(app: CanaryLabApp) -> str:
    """Every notification shown (title and message), whole: on screen long ones wrap."""
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


def fault_line(app: CanaryLabApp) -> str:
    """The pods panel's fault line, whole (the panel is narrow, the line wraps there)."""
    from canarylab.widgets.fault_line import fault_text

    line = app.screen.query_one(FaultLine)
    return fault_text(line._fault, can_clear=line._can_clear)


def image_of(app: CanaryLabApp, deployment: str) -> str:
    obj = app.lab.cluster.get_now(DEPLOYMENT, "test", deployment)  # type: ignore[attr-defined]
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"]) if obj else ""


async def ship(app: CanaryLabApp, pilot: Pilot[None], tag: str = "3.1.1") -> None:
    await pilot.press("b")
    await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal")
    assert f"stefanprodan/podinfo:{tag}" in screen_text(app)
    await pilot.press("enter")


async def test_an_active_fault_is_on_screen_and_a_new_image_starts_clean(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        # given 3.1.1 under analysis
        await until(pilot, lambda: phase(app) == "Initialized", "the seed canary to be Initialized")
        await ship(app, pilot)
        await until(pilot, lambda: weight(app) >= 5, "the analysis to start", timeout=60)
        # when a 50% error fault is injected
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FaultScreen), "the fault modal")
        await pilot.press("down", "enter")
        fault = app.lab.fault("test", "podinfo")
        assert fault is not None and fault.active
        # then the header shows a badge, the pods panel what, on which revision and since when, and the hint
        await until(pilot, lambda: "⚡ fault: 50% errors on 3.1.1" in screen_text(app).splitlines()[0], "the badge")
        assert fault_line(app) == f"⚡ fault: 50% errors on canary podinfo:3.1.1 since {hms(fault.since)} · f clears it"
        assert "⚡ fault: 50% errors on canary" in screen_text(app)  # on screen, in the pods panel
        await until(pilot, lambda: "analysis running with a fault on 3.1.1" in hint_line(app), "the hint")
        log = [line.message for line in app.history.of("test", "podinfo").log]
        assert "fault injected: 50% errors on deployment/podinfo (the canary's pods)" in log
        assert "fault injected: 50% errors on" in screen_text(app)  # in the event log
        # and after the rollback the hint says the fault is still there and a new image starts clean
        await until(pilot, lambda: phase(app) == "Failed", "the rollback", timeout=90)
        await until(pilot, lambda: hint_line(app).startswith("3.1.1 keeps its fault (50% errors): press b to ship "
                                                             "3.1.2, a new image starts clean"), "the Failed hint")
        assert "⚡ fault" in screen_text(app).splitlines()[0]
        # when 3.1.2 is shipped
        await ship(app, pilot, "3.1.2")
        # then the badge is gone, the screen says 3.1.2 started clean, and its analysis advances without errors
        await until(pilot, lambda: "⚡" not in screen_text(app).splitlines()[0], "the badge to go")
        await until(pilot, lambda: fault_line(app) == "✓ podinfo:3.1.2 started clean: the fault (50% errors) stayed "
                    "with podinfo:3.1.1", "the clean-start line")
        assert "✓ podinfo:3.1.2 started clean" in screen_text(app)
        assert "3.1.2 starts clean: the fault (50% errors) stays with 3.1.1" in notices(app)
        await until(pilot, lambda: weight(app) >= 10, "3.1.2's analysis to advance", timeout=60)
        assert app.lab.engine.canary_states()[0].failed_checks == 0


async def test_p_and_r_on_a_succeeded_canary_say_why_at_once(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: phase(app) == "Initialized", "the seed canary to be Initialized")
        await ship(app, pilot)
        await until(pilot, lambda: weight(app) >= 5, "the analysis to start", timeout=60)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: phase(app) == "Succeeded", "the promotion", timeout=60)
        await until(pilot, lambda: "Succeeded" in screen_text(app).splitlines()[0], "the screen to show it")
        # when p is pressed on the Succeeded canary: no question, the reason at once
        await pilot.press("p")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        await until(pilot, lambda: "cannot promote now" in screen_text(app), "the reason")
        assert "podinfo.test is Succeeded: only a canary in Progressing or WaitingPromotion" in notices(app)
        # and r likewise
        await pilot.press("r")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        await until(pilot, lambda: "cannot roll back now" in screen_text(app), "the reason")
        assert "podinfo.test is Succeeded: there is no analysis to abort" in notices(app)
        # f has nothing to break either: the canary has no pods
        await pilot.press("f")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, FaultScreen)
        await until(pilot, lambda: "no fault now" in screen_text(app), "why f does nothing")
        assert "has no pods while the Canary is Succeeded: nothing to break" in notices(app)


async def test_b_while_initializing_queues_the_image_until_initialized(make_app: MakeApp) -> None:
    # a slower lab: the Canary stays Initializing for about ten real seconds
    app = make_app(speed=3.0)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and phase(app) == "Initializing",
                    "the first frame, Initializing")
        # when b is pressed at once, the modal says the image will wait
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal")
        note = str(app.screen.query_one("#note", Label).content)
        assert note.startswith("The Canary is Initializing: a new image set now would never be analysed")
        assert "a new image set now" in screen_text(app)
        assert "Enter queues the image" in screen_text(app)
        await pilot.press("enter")
        # then nothing is set yet, and the hint says it is queued
        assert phase(app) == "Initializing" and image_of(app, "podinfo").endswith(":3.1.0")
        await until(pilot, lambda: "3.1.1 is queued: it ships as soon as the Canary is Initialized"
                    in hint_line(app), "the queued hint")
        assert image_of(app, "podinfo").endswith(":3.1.0")
        # and once Initialized it is set: a real analysis of 3.1.1 against the primary's 3.1.0 starts
        await until(pilot, lambda: weight(app) >= 5, "the analysis of 3.1.1", timeout=60)
        assert image_of(app, "podinfo").endswith(":3.1.1")
        assert image_of(app, "podinfo-primary").endswith(":3.1.0")
        text = screen_text(app)
        assert "New revision detected! Scaling up podinfo.test" in text
        assert "podinfo:3.1.1 canary" in text


async def test_ctrl_c_quits(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        await pilot.press("b")  # also from a modal with a text input
        await until(pilot, lambda: isinstance(app.screen, BumpImageScreen), "the bump modal")
        await pilot.press("ctrl+c")
        await until(pilot, lambda: app._exit, "the app to exit")
    assert app.return_code == 0


async def test_the_help_box_says_how_to_close_it_and_where_reports_go(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        text = screen_text(app)
        assert "Escape, q or ? closes this box" in text
        note = str(app.screen.query_one(".muted", Label).content)
        assert note.startswith(f"Reports (ctrl+s) go to {tmp_path} ($CANARYLAB_REPORTS_DIR).")
        assert "Reports (ctrl+s) go to" in text
        assert "q, ^c" in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "the help to close")


async def test_reports_go_to_the_reports_folder_named_by_the_wall_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "reports" / "nested"
    monkeypatch.setenv("CANARYLAB_REPORTS_DIR", str(folder))
    monkeypatch.chdir(tmp_path)
    app = CanaryLabApp(SimLab(speed=FAST))
    assert app.export_dir == folder == reports_dir()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: phase(app) == "Initialized", "the canary")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: folder.is_dir() and list(folder.glob("*.md")), "the report")
        await until(pilot, lambda: "report saved" in screen_text(app), "the printed path")
        assert f"{folder}/canarylab-podinfo.test-" in notices(app)
    report = next(folder.glob("canarylab-podinfo.test-*.md"))
    stamp = time.mktime(time.strptime(report.stem.removeprefix("canarylab-podinfo.test-"), "%Y%m%d-%H%M%S"))
    assert abs(stamp - time.time()) < 120  # the wall clock, not lab time (which runs 30x faster here)
    assert "exported at " in report.read_text() and "lab time " in report.read_text()
    assert not list(tmp_path.glob("*.md")) and not list(tmp_path.glob("*.svg"))  # nothing in the cwd
    assert [p.parent for p in app.saved_reports] == [folder, folder]


async def test_a_healthy_start_shows_flaggers_primary_warning_as_routine(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: phase(app) == "Initialized", "the canary")
        await until(pilot, lambda: "Initialization done!" in screen_text(app), "the event")
        text = screen_text(app)
        # Flagger's event is kept, marked routine (…), with what it means; no ⚠ on a healthy start
        assert "… podinfo-primary.test not ready: waiting for" in text
        assert "(expected: the primary was just" in text
        assert "⚠" not in text
        log = app.history.of("test", "podinfo").log
        routine = [line for line in log if line.type == "Warning"]
        assert routine and all(line.expected and not line.warning for line in routine)
        header = app.screen.query_one(LabHeader)
        assert header.badge == ""
