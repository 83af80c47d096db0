"""The dashboard's pure parts: chart rasterising, the ladder, next tags, sorting, keymaps, the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from canarylab.engine.controller import CanaryState
from canarylab.engine.events import CheckEvaluated, KubeEvent, WeightChanged
from canarylab.errors import UserError
from canarylab.keymap import KEYS, load_keymap
from canarylab.screens.hints import hint
from canarylab.screens.history import History
from canarylab.screens.report import markdown
from canarylab.screens.tags import next_image
from canarylab.session import FaultInfo
from canarylab.widgets.braille import render
from canarylab.widgets.canary_table import sort_and_filter
from canarylab.widgets.event_log import short_message
from canarylab.widgets.key_footer import FooterPlan, fit
from canarylab.widgets.status import needs_attention
from canarylab.widgets.step_ladder import ladder

STEPS = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)


def state(name: str = "podinfo", namespace: str = "test", **changes: object) -> CanaryState:
    base: dict[str, object] = dict(
        namespace=namespace, name=name, target=name, phase="Initialized", canary_weight=0, primary_weight=100,
        failed_checks=0, threshold=5, iterations=0, strategy="canary", steps=STEPS, max_weight=50, interval=30.0,
        last_transition_time=None, paused=False, suspended=False, waiting_gate=None, problem=None,
        router="TrafficSplit",
    )
    base.update(changes)
    return CanaryState(**base)  # type: ignore[arg-type]


def test_a_success_rate_under_its_minimum_is_drawn_red_below_a_threshold_line() -> None:
    # given a success rate that starts healthy and falls under min 99
    values = [100.0, 99.8, 99.5, 80.0]
    chart = render(values, [v >= 99 for v in values], width=10, height=4, minimum=99)
    roles = {role for row in chart.rows for _, role in row}
    # then the line has an ok part and a failing part, the threshold is drawn and the side below it shaded
    assert {"ok", "threshold", "zone"} <= roles and roles & {"bad", "bad+zone"}
    assert chart.threshold_row is not None
    below = chart.rows[chart.threshold_row + 1 :]
    assert all(role in ("zone", "bad+zone", "ok+zone") for row in below for _, role in row)


def test_a_latency_check_shades_the_side_above_its_maximum() -> None:
    chart = render([120.0, 130.0], [True, True], width=8, height=6, maximum=500)
    assert chart.threshold_row is not None
    assert all(role == "zone" for _, role in chart.rows[0])  # above max 500 is the failing side
    assert chart.low < 120 and chart.high > 500


def test_no_values_leave_a_gap_and_an_empty_chart_does_not_fail() -> None:
    assert render([], [], width=5, height=2).rows
    chart = render([1.0, None, 2.0], [True, False, True], width=5, height=2)
    assert any(role == "ok" for row in chart.rows for _, role in row)


@pytest.mark.parametrize(
    ("phase", "weight", "expected_current"),
    [("Progressing", 15, "15%"), ("WaitingPromotion", 50, "promote"), ("Promoting", 50, "promote")],
)
def test_the_ladder_marks_the_current_step(phase: str, weight: int, expected_current: str) -> None:
    chips = ladder(STEPS, weight, 0, phase, "canary")
    assert [label for label, role in chips if role == "current"] == [expected_current]
    assert all(role == "done" for label, role in chips if label in ("5%", "10%")) or weight < 15


def test_the_ladder_after_a_rollback_and_for_blue_green() -> None:
    assert ladder(STEPS, 0, 0, "Failed", "canary")[-1] == ("rolled back", "failed")
    chips = ladder((1, 2, 3, 4), 0, 2, "Progressing", "blue-green")  # two iterations done, the third runs
    assert chips[:4] == [("#1", "done"), ("#2", "done"), ("#3", "current"), ("#4", "todo")]


@pytest.mark.parametrize(
    ("image", "proposed"),
    [("stefanprodan/podinfo:3.1.0", "stefanprodan/podinfo:3.1.1"),
     ("registry:5000/app:v1.2.9", "registry:5000/app:v1.2.10"),
     ("nginx:latest", "nginx:latest"), ("nginx", "nginx")],
)
def test_the_bump_modal_proposes_the_next_patch(image: str, proposed: str) -> None:
    assert next_image(image) == proposed


def test_overview_rows_filter_and_sort_with_attention_first() -> None:
    states = [state("b", "shop"), state("a", "test", phase="Failed"), state("c", "test", waiting_gate="ask")]
    assert [s.name for s in sort_and_filter(states, "attention", "")] == ["a", "c", "b"]
    assert [s.name for s in sort_and_filter(states, "name", "TEST")] == ["a", "c"]
    assert [s.name for s in sort_and_filter(states, "namespace", "failed")] == ["a"]
    assert needs_attention(states[1]) and not needs_attention(states[0])


def test_keys_are_remapped_from_a_file_and_the_environment(tmp_path: Path) -> None:
    keymap = tmp_path / "keymap.yaml"
    keymap.write_text("bump: ctrl+b\nquit: q,ctrl+q\n")
    got = load_keymap({"CANARYLAB_KEYMAP": str(keymap), "CANARYLAB_KEY_FAULT": "x"})
    assert got == {"canarylab.bump": "ctrl+b", "canarylab.quit": "q,ctrl+q", "canarylab.fault": "x"}


def test_a_wrong_keymap_names_the_binding_and_the_fix(tmp_path: Path) -> None:
    keymap = tmp_path / "keymap.yaml"
    keymap.write_text("ship: s\n")
    with pytest.raises(UserError, match=r"unknown binding id 'ship'.*bump"):
        load_keymap({"CANARYLAB_KEYMAP": str(keymap)})
    with pytest.raises(UserError, match="no such file"):
        load_keymap({"CANARYLAB_KEYMAP": str(tmp_path / "missing.yaml")})


def test_the_report_has_the_timeline_weights_and_checks_against_thresholds() -> None:
    history = History()
    common = {"namespace": "test", "name": "podinfo"}
    history.feed([
        KubeEvent(time=0, type="Normal", reason="Synced", message="New revision detected! Scaling up podinfo.test",
                  **common),
        WeightChanged(time=30, primary=95, canary=5, **common),
        CheckEvaluated(time=60, metric="request-success-rate", value=50.0, min=99, max=None, ok=False, unit="%",
                       **common),
        KubeEvent(time=60, type="Warning", reason="Synced",
                  message="Halt podinfo.test advancement success rate 50.00% < 99%", **common),
    ])  # fmt: skip
    text = markdown("simulated lab", state(phase="Progressing"), "test", "podinfo", history.of("test", "podinfo"), 90)
    assert "| 00:00:00 | Normal | New revision detected! Scaling up podinfo.test |" in text
    assert "| 00:00:30 | 95% | 5% |" in text
    assert "| 00:01:00 | 50% | 99 | - | FAILED |" in text
    assert "1 evaluations, 1 failed." in text


def test_each_new_revision_starts_a_run_the_charts_show_alone_and_the_report_labels() -> None:
    # given a check evaluated before any revision (the dashboard started mid-run), then two runs
    history = History()
    common = {"namespace": "test", "name": "podinfo"}

    def check(time: float, value: float) -> CheckEvaluated:
        return CheckEvaluated(time=time, metric="request-success-rate", value=value, min=99, max=None,
                              ok=value >= 99, unit="%", **common)

    def revision(time: float, how: str) -> KubeEvent:
        return KubeEvent(time=time, type="Normal", reason="Synced", message=f"New revision detected! {how}", **common)

    history.feed([check(10, 100.0)])
    canary = history.of("test", "podinfo")
    assert canary.run == 0 and [s.value for s in canary.run_checks()["request-success-rate"]] == [100.0]
    history.feed([revision(20, "Scaling up podinfo.test"), check(50, 99.5), check(80, 99.0)])
    assert [s.time for s in canary.run_checks()["request-success-rate"]] == [50, 80]
    # when a newer revision arrives mid-run, the chart starts empty, then only has the new run's samples
    history.feed([revision(90, "Restarting analysis for podinfo.test")])
    assert canary.run_checks() == {"request-success-rate": []}
    history.feed([check(120, 50.0)])
    assert [s.time for s in canary.run_checks()["request-success-rate"]] == [120]
    # and the report keeps every run, labelled
    text = markdown("simulated lab", state(phase="Progressing"), "test", "podinfo", canary, 130)
    assert "4 evaluations, 1 failed." in text
    assert "The run in progress when the dashboard started: 1 evaluations, 0 failed." in text
    assert "Run 1 (new revision at 00:00:20): 2 evaluations, 0 failed." in text
    assert "Run 2 (new revision at 00:01:30): 1 evaluations, 1 failed." in text
    assert text.index("Run 1 (") < text.index("| 00:00:50 |") < text.index("Run 2 (") < text.index("| 00:02:00 |")


@pytest.mark.parametrize(
    ("message", "short"),
    [("Advance podinfo.test canary weight 5", "Advance canary weight 5"),
     ("New revision detected! Scaling up podinfo.test", "New revision detected! Scaling up"),
     ("Starting canary analysis for podinfo.test", "Starting canary analysis"),
     ("Initialization done! podinfo.test", "Initialization done!"),
     ("Halt podinfo.test advancement success rate 50.00% < 99%", "success rate 50.00% < 99%"),
     ("Rolling back podinfo.test failed checks threshold reached 5", "Rolling back failed checks threshold reached 5"),
     ("Copying podinfo.test template spec to podinfo-primary.test", "Copying podinfo template spec to podinfo-primary"),
     ("podinfo-primary.test not ready: waiting for rollout", "podinfo-primary not ready: waiting for rollout"),
     # a metric name and a URL stay whole
     ("Halt advancement no values found for metric: request-success-rate",
      "no values found for metric: request-success-rate"),
     ("Pre-rollout check t failed Post http://flagger-loadtester.test/: refused",
      "Pre-rollout check t failed Post http://flagger-loadtester.test/: refused")],
)
def test_narrow_event_lines_drop_the_canary_flaggers_message_repeats(message: str, short: str) -> None:
    assert short_message(message, "test") == short


def test_the_hint_has_a_shorter_wording_for_narrow_terminals() -> None:
    running = state(phase="Progressing", canary_weight=10)
    wide = hint(running, "podinfo:3.1.1", readonly=False, supports_faults=True, width=118)
    narrow = hint(running, "podinfo:3.1.1", readonly=False, supports_faults=True, width=78)
    assert wide == "analysis running: f to inject a fault, p to promote now, r to roll back, space to pause"
    assert narrow == "running: f fault · p promote · r roll back · space pause" and len(narrow) <= 78
    for phase in ("Initialized", "Progressing", "Promoting", "Initializing"):
        for readonly in (False, True):
            assert len(hint(state(phase=phase), "p:3.1.1", readonly=readonly, supports_faults=True, width=78)) <= 78


def test_the_footer_goes_compact_then_short_then_drops_the_least_needed_keys() -> None:
    keys = [(k.action, {"space": "space", "slash": "/", "question_mark": "?", "ctrl+s": "^s"}.get(k.keys, k.keys),
             k.description) for k in KEYS]
    palette = ("^p", "palette")
    assert fit(keys, 200, palette) == FooterPlan(False, {a: d for a, _, d in keys}, True)
    at_120 = fit(keys, 120, palette)
    assert at_120.compact and at_120.palette and len(at_120.labels) == len(keys) and at_120.labels["pause"] == "Pause"
    at_80 = fit(keys, 80, palette)
    assert {"bump", "fault", "rollback", "promote", "pause", "help", "quit"} <= set(at_80.labels)
    assert "filter" not in at_80.labels
    # the overview gives up its own Overview key first
    assert "overview" not in fit(keys, 110, palette, drop_first=("overview",)).labels
    # however narrow, help and quit stay
    assert set(fit(keys, 10, palette).labels) == {"help", "quit"}


def _fault(active: bool = True) -> FaultInfo:
    return FaultInfo("test", "podinfo", 0.5, 0.0, False, "stefanprodan/podinfo:3.1.2", 100.0,
                     None if active else "stefanprodan/podinfo:3.1.3")


def test_the_hint_accounts_for_an_active_fault_and_forgets_one_left_behind() -> None:
    failed, running = state(phase="Failed"), state(phase="Progressing", canary_weight=10)
    # after a rollback, the faulty revision is still faulty: the hint says shipping starts clean
    assert hint(failed, "podinfo:3.1.3", readonly=False, supports_faults=True, fault=_fault()) == (
        "3.1.2 keeps its fault (50% errors): press b to ship 3.1.3, a new image starts clean")
    assert hint(failed, "podinfo:3.1.3", readonly=False, supports_faults=True, fault=_fault(), width=40) == (
        "b ships 3.1.3 (starts clean)")
    # during the analysis it says failed checks are to be expected, and how to clear the fault
    assert hint(running, "podinfo:3.1.3", readonly=False, supports_faults=True, fault=_fault()).startswith(
        "analysis running with a fault on 3.1.2 (50% errors): expect failed checks; f clears it")
    # a fault left behind by a new image does not change the walkthrough
    assert hint(running, "p:3.1.4", readonly=False, supports_faults=True, fault=_fault(active=False)) == hint(
        running, "p:3.1.4", readonly=False, supports_faults=True)


def test_the_hint_says_a_queued_ship_waits_and_names_a_target_changed_while_initializing() -> None:
    for phase, until in (("Initializing", "the Canary is Initialized"), ("Promoting", "the promotion is done")):
        assert hint(state(phase=phase), "p:3.1.2", readonly=False, supports_faults=True,
                    queued="stefanprodan/podinfo:3.1.1") == f"3.1.1 is queued: it ships as soon as {until}"
    assert "b queues" in hint(state(phase="Initializing"), "p:3.1.1", readonly=False, supports_faults=True)
    # Flagger's dead end, reached by a kubectl set image during initialization: said, with the way out
    text = hint(state(phase="Initialized"), "p:3.1.2", readonly=False, supports_faults=True,
                primary_image="p:3.1.0", canary_image="p:3.1.1")
    assert text == ("3.1.1 was set while initializing, so it is never analysed and the primary keeps 3.1.0: "
                    "press b to ship 3.1.2")


def test_the_fault_line_says_what_where_and_since_when() -> None:
    from canarylab.widgets.fault_line import fault_text

    assert fault_text(_fault()) == "⚡ fault: 50% errors on canary podinfo:3.1.2 since 00:01:40 · f clears it"
    assert fault_text(_fault(active=False)) == (
        "✓ podinfo:3.1.3 started clean: the fault (50% errors) stayed with podinfo:3.1.2")
    assert fault_text(None) == ""


def test_refusals_are_one_rule_for_the_engine_and_the_dashboard() -> None:
    from canarylab.engine.commands import Abort, Pause, Promote, refusal

    assert refusal(Promote, "podinfo.test", "Succeeded") == (
        "podinfo.test is Succeeded: only a canary in Progressing or WaitingPromotion can be promoted now")
    assert refusal(Abort, "podinfo.test", "Initialized", paused=False) is not None
    assert refusal(Abort, "podinfo.test", "Progressing") is None
    assert refusal(Promote, "podinfo.test", "Progressing", paused=True) == "podinfo.test is paused; resume it first"
    assert refusal(Pause, "podinfo.test", "Succeeded") is None
