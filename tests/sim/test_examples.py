"""The examples/ folder: every Canary spec a user can start from runs through ``canarylab simulate -f`` as the
README says it does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sim.conftest import Run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Simulate = Callable[..., Run]


def example(name: str) -> str:
    return str(EXAMPLES / name)


def test_every_example_is_covered_here() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == [
        "ab-testing.yaml", "blue-green.yaml", "canary.yaml", "gates-scenario.yaml", "gates.yaml",
        "metric-template.yaml",
    ]


def test_the_seed_canary_promotes_in_5_percent_steps(simulate: Simulate) -> None:
    run = simulate("-f", example("canary.yaml"))
    assert run.code == 0, run.err
    assert run.weights() == list(range(5, 55, 5))
    assert "Promotion completed! Scaling down podinfo.test" in run.messages


def test_blue_green_runs_ten_iterations_then_switches(simulate: Simulate) -> None:
    run = simulate("-f", example("blue-green.yaml"), "--json")
    assert run.code == 0, run.err
    messages = [o["message"] for o in run.objects if o["kind"] == "event"]
    iterations = [m for m in messages if "canary iteration" in m]
    assert iterations[0].endswith("iteration 1/10") and iterations[-1].endswith("iteration 10/10")
    assert not any("canary weight" in m for m in messages)
    assert not [o for o in run.objects if o["kind"] == "event" and o["type"] == "Warning"
                and "not ready" not in o["message"]]
    assert run.objects[-1]["canaries"][0]["phase"] == "Succeeded"


def test_the_gate_holds_promotion_until_the_scenario_opens_it(simulate: Simulate) -> None:
    run = simulate("-f", example("gates.yaml"), "--scenario", example("gates-scenario.yaml"))
    assert run.code == 0, run.err
    waiting = next(line for line in run.lines if "waiting for promotion approval approve-promotion" in line)
    passed = next(line for line in run.lines if "Confirm-promotion check approve-promotion passed" in line)
    assert run.lines.index(waiting) < run.lines.index(passed)
    assert passed.startswith(("+06:", "+07:"))  # Initialized at +00:30, the gate opens 6m later
    assert run.messages[-1] == "Promotion completed! Scaling down podinfo.test"


def test_ab_testing_routes_the_insiders_to_the_canary_for_ten_iterations(simulate: Simulate) -> None:
    run = simulate("-f", example("ab-testing.yaml"), "--json")
    assert run.code == 0, run.err
    messages = [o["message"] for o in run.objects if o["kind"] == "event"]
    assert [m for m in messages if "canary iteration" in m][-1].endswith("iteration 10/10")
    assert not [o for o in run.objects if o["kind"] == "event" and o["type"] == "Warning"
                and "not ready" not in o["message"]]
    assert run.objects[-1]["canaries"][0]["phase"] == "Succeeded"


def test_ab_testing_on_the_smi_router_is_refused_naming_the_fix(simulate: Simulate, write: Callable[..., str]) -> None:
    text = Path(example("ab-testing.yaml")).read_text().replace("provider: gatewayapi:v1beta1", "provider: linkerd")
    run = simulate("-f", write("ab-smi.yaml", text))
    assert run.code == 2 and "spec.analysis.match: A/B testing needs header matching" in run.err
    assert "use provider gatewayapi:v1beta1" in run.err


def test_the_metric_template_needs_a_prometheus_and_says_so(simulate: Simulate) -> None:
    run = simulate("-f", example("metric-template.yaml"))
    assert run.code == 1
    assert any("error-rate" in m and "--prometheus" in m for m in run.messages), run.out


@pytest.mark.parametrize("name", ["canary.yaml", "gates.yaml", "blue-green.yaml", "ab-testing.yaml",
                                  "metric-template.yaml"])
def test_examples_pass_flaggers_crd_schema(name: str) -> None:
    from canarylab.loader import load_documents
    from canarylab.validation import validate_object

    for doc in load_documents(example(name)):
        assert not validate_object(doc).findings, (name, doc["kind"])
