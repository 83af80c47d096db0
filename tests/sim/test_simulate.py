"""``canarylab simulate`` as a user runs it: the seed walkthrough, scenarios, output formats, exit codes."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from canarylab.manifests import bootstrap_file
from tests.sim.conftest import SET_IMAGE, Run

Simulate = Callable[..., Run]
Write = Callable[[str, str], str]

SEED_EVENTS = [
    "Initialization done! podinfo.test",
    "New revision detected! Scaling up podinfo.test",
    "Starting canary analysis for podinfo.test",
    "Pre-rollout check acceptance-test passed",
    *[f"Advance podinfo.test canary weight {w}" for w in range(5, 55, 5)],
    "Copying podinfo.test template spec to podinfo-primary.test",
    "Routing all traffic to primary",
    "Promotion completed! Scaling down podinfo.test",
]


def _in_order(expected: list[str], messages: list[str]) -> bool:
    it = iter(messages)
    return all(any(m == e for m in it) for e in expected)


def _canary_with_gate(write: Write) -> str:
    seed = bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
    gated = seed.replace(
        "    webhooks:\n",
        "    webhooks:\n"
        "      - name: ask-first\n"
        "        type: confirm-rollout\n"
        "        url: http://flagger-loadtester.test/gate/check\n",
    )
    assert gated != seed
    return write("gated-canary.yaml", gated)


# ---------------------------------------------------------------------------------------------- runs


def test_default_scenario_promotes_the_seed_canary_with_the_seeds_events(simulate: Simulate) -> None:
    # Given the seed lab and no scenario (set image 3.1.1 at 0s), when simulate runs
    run = simulate()
    # Then it succeeds, weights go 5..50 by 5, and the seed's events come in order
    assert run.code == 0, run.err
    assert run.weights() == list(range(5, 55, 5))
    assert _in_order(SEED_EVENTS, run.messages), run.out
    assert all(re.match(r"^\+\d\d:\d\d (Normal|Warning) podinfo\.test .+", line) for line in run.lines), run.out
    assert "podinfo.test Succeeded" in run.err


def test_json_output_is_one_object_per_line_with_the_result_last(simulate: Simulate) -> None:
    run = simulate("--json")
    objects = run.objects
    assert run.code == 0
    assert all(o["kind"] == "event" for o in objects[:-1])
    first = objects[0]
    assert set(first) == {"kind", "time", "type", "reason", "namespace", "name", "message"}
    assert (first["namespace"], first["name"], first["reason"]) == ("test", "podinfo", "Synced")
    times = [o["time"] for o in objects]
    assert times == sorted(times)
    assert objects[-1] == {
        "kind": "result", "time": objects[-1]["time"],
        "canaries": [{"namespace": "test", "name": "podinfo", "phase": "Succeeded", "canaryWeight": 0,
                      "failedChecks": 0}],
    }  # fmt: skip


def test_errors_on_the_new_version_roll_it_back(simulate: Simulate, write: Write) -> None:
    # Given a new image whose pods answer half of the requests with 500
    scenario = write("errors.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 0s
          fault: {{namespace: test, deployment: podinfo, errorRate: 0.5}}
    """)
    run = simulate("--scenario", scenario, "--json")
    # Then the success-rate check halts the advance until the threshold, and the canary fails (exit 1)
    assert run.code == 1
    messages = [o["message"] for o in run.objects if o["kind"] == "event"]
    assert "Halt podinfo.test advancement success rate 50.00% < 99%" in messages
    assert messages[-2:] == ["Rolling back podinfo.test failed checks threshold reached 5",
                             "Canary failed! Scaling down podinfo.test"]
    assert run.objects[-1]["canaries"][0]["phase"] == "Failed"


def test_latency_on_the_new_version_rolls_it_back(simulate: Simulate, write: Write) -> None:
    scenario = write("slow.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 0s
          fault: {{namespace: test, deployment: podinfo, latencyMs: 600}}
    """)
    run = simulate("--scenario", scenario)
    assert run.code == 1
    halts = [m for m in run.messages if m.startswith("Halt podinfo.test advancement request duration")]
    assert len(halts) == 5
    # P99 from Linkerd's buckets with Prometheus' interpolation: 500 + 500 x 0.99 = 995 ms
    assert halts[0] == "Halt podinfo.test advancement request duration 995ms > 500ms"
    assert "Rolling back podinfo.test failed checks threshold reached 5" in run.messages


def test_a_fault_cleared_in_time_lets_the_canary_promote(simulate: Simulate, write: Write) -> None:
    scenario = write("blip.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 30s
          fault: {{namespace: test, deployment: podinfo, latencyMs: 600}}
        - at: 1m
          clearFault: {{namespace: test, deployment: podinfo}}
    """)
    run = simulate("--scenario", scenario)
    assert run.code == 0, run.out
    assert any("request duration" in m for m in run.messages)
    assert run.messages[-1] == "Promotion completed! Scaling down podinfo.test"


def test_pods_that_never_become_ready_fail_the_run_after_the_progress_deadline(
        simulate: Simulate, write: Write) -> None:
    scenario = write("stuck.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 0s
          fault: {{namespace: test, deployment: podinfo, neverReady: true}}
    """)
    run = simulate("--scenario", scenario)
    assert run.code == 1
    assert any(m.startswith("canary deployment podinfo.test not ready") for m in run.messages)
    assert run.messages[-1] == "Canary failed! Scaling down podinfo.test"
    assert not any("threshold reached" in m for m in run.messages)  # as in Flagger: no threshold message


def test_a_gate_that_opens_late_holds_the_run_until_then(simulate: Simulate, write: Write) -> None:
    # Given a Canary with a confirm-rollout gate on the loadtester, closed at first
    canary = _canary_with_gate(write)
    scenario = write("gate.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 3m
          gate: {{namespace: test, canary: podinfo, open: true}}
    """)
    run = simulate("-f", canary, "--scenario", scenario)
    # Then it waits for approval, and runs once the gate opens
    assert run.code == 0, run.out
    waiting = [line for line in run.lines if "waiting for approval ask-first" in line]
    passed = [line for line in run.lines if "Confirm-rollout check ask-first passed" in line]
    assert waiting and passed
    assert run.lines.index(waiting[0]) < run.lines.index(passed[0])
    assert passed[0].startswith(("+03:", "+04:"))  # Initialized at +00:30, gate opened 3m later
    assert run.messages[-1] == "Promotion completed! Scaling down podinfo.test"


def test_abort_mid_run_rolls_back(simulate: Simulate, write: Write) -> None:
    scenario = write("abort.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 2m
          abort: {{namespace: test, canary: podinfo}}
    """)
    run = simulate("--scenario", scenario, "--json")
    assert run.code == 1
    assert run.objects[-1]["canaries"][0]["phase"] == "Failed"
    messages = [o["message"] for o in run.objects if o["kind"] == "event"]
    assert messages[-1] == "Canary failed! Scaling down podinfo.test"
    assert not any(m.endswith("canary weight 50") for m in messages)


def test_promote_mid_run_skips_the_remaining_steps(simulate: Simulate, write: Write) -> None:
    scenario = write("promote.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 2m
          promote: {{namespace: test, canary: podinfo}}
    """)
    run = simulate("--scenario", scenario)
    assert run.code == 0
    assert max(run.weights()) < 50
    assert _in_order(["Copying podinfo.test template spec to podinfo-primary.test",
                      "Promotion completed! Scaling down podinfo.test"], run.messages)


def test_pause_holds_the_weight_and_resume_continues(simulate: Simulate, write: Write) -> None:
    scenario = write("pause.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 1m
          pause: {{namespace: test, canary: podinfo}}
        - at: 6m
          resume: {{namespace: test, canary: podinfo}}
    """)
    paused = simulate("--scenario", scenario)
    plain = simulate()
    assert paused.code == 0 and plain.code == 0
    assert paused.weights() == list(range(5, 55, 5))
    last = next(line for line in paused.lines if "Promotion completed" in line)
    assert last[:6] > next(line for line in plain.lines if "Promotion completed" in line)[:6]


def test_a_new_image_mid_run_restarts_the_analysis(simulate: Simulate, write: Write) -> None:
    scenario = write("again.yaml", f"""
        - at: 0s
          {SET_IMAGE}
        - at: 2m
          setImage: {{namespace: test, deployment: podinfo, container: podinfod, image: stefanprodan/podinfo:3.1.2}}
    """)
    run = simulate("--scenario", scenario)
    assert run.code == 0
    assert "New revision detected! Restarting analysis for podinfo.test" in run.messages
    after = run.messages[run.messages.index("New revision detected! Restarting analysis for podinfo.test"):]
    assert _in_order(["Starting canary analysis for podinfo.test", "Advance podinfo.test canary weight 5",
                      "Advance podinfo.test canary weight 50", "Promotion completed! Scaling down podinfo.test"],
                     after)


def test_timeout_exits_3_with_the_state_so_far(simulate: Simulate) -> None:
    run = simulate("--timeout", "2m", "--json")
    assert run.code == 3
    result = run.objects[-1]
    assert result["kind"] == "result" and result["time"] == 120
    assert result["canaries"][0]["phase"] == "Progressing"
    assert "--timeout" in run.err


def test_a_query_check_without_prometheus_says_it_needs_one(simulate: Simulate, write: Write) -> None:
    seed = bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
    canary = write("query.yaml", seed.replace(
        "    metrics:\n",
        "    metrics:\n"
        "    - name: my-query\n"
        "      interval: 1m\n"
        "      thresholdRange: {min: 1}\n"
        "      query: sum(rate(response_total[1m]))\n",
    ))
    run = simulate("-f", canary, "--timeout", "4m")
    assert any("needs PromQL" in m and "--prometheus" in m for m in run.messages), run.out


# ---------------------------------------------------------------------------------------------- bad input


def test_a_missing_file_exits_2_naming_it(simulate: Simulate) -> None:
    run = simulate("-f", "/nonexistent/lab.yaml")
    assert run.code == 2
    assert run.err.startswith("canarylab: /nonexistent/lab.yaml: no such file")
    assert "Traceback" not in run.err


def test_bad_yaml_exits_2_naming_file_and_line(simulate: Simulate, write: Write) -> None:
    path = write("broken.yaml", "kind: Canary\nmetadata: {name: x\n")
    run = simulate("-f", path)
    assert run.code == 2
    assert path in run.err and "line" in run.err and "not valid YAML" in run.err


def test_an_invalid_canary_exits_2_naming_field_and_rule(simulate: Simulate, write: Write) -> None:
    seed = bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
    path = write("canary.yaml", seed.replace("stepWeight: 5", "stepWeight: 500"))
    run = simulate("-f", path)
    assert run.code == 2
    assert path in run.err and "document 1" in run.err and "spec.analysis.stepWeight" in run.err
    assert run.out == ""


def test_an_unsupported_kind_exits_2(simulate: Simulate, write: Write) -> None:
    path = write("job.yaml", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x, namespace: test}\n")
    run = simulate("-f", path)
    assert run.code == 2 and "kind 'Job' is not supported" in run.err


def test_a_deployment_whose_selector_misses_its_labels_exits_2(simulate: Simulate, write: Write) -> None:
    path = write("dep.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: test}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: other}}
            spec: {containers: [{name: web, image: nginx}]}
    """)
    run = simulate("-f", path)
    assert run.code == 2 and "spec.template.metadata.labels" in run.err


def test_bad_scenarios_exit_2_naming_step_field_and_rule(simulate: Simulate, write: Write) -> None:
    cases = {
        "- at: 0s\n  explode: {deployment: podinfo}\n": "step 1: explode: unknown action",
        "- at: soon\n  abort: {canary: podinfo}\n": "step 1: at must be a duration",
        "- at: 0s\n  fault: {deployment: podinfo, errorRate: 2}\n": "fault.errorRate must be a number between 0 and 1",
        "- at: 0s\n  fault: {deployment: nope, errorRate: 0.1}\n": "fault.deployment: Deployment nope does not exist",
        "- at: 0s\n  setImage: {deployment: podinfo, container: app, image: x}\n": "has no container 'app'",
        "- at: 0s\n  gate: {canary: podinfo, open: maybe}\n": "gate.open must be true or false",
        "- at: 0s\n  abort: {canary: other}\n": "Canary other does not exist",
        "- at: 0s\n  promote: {canary: podinfo, now: true}\n": "promote.now: unknown field",
        "- at: 0s\n  setImage: {deployment: podinfo, contianer: podinfod, image: x}\n":
            "setImage.contianer: unknown field; did you mean container?",
        "steps: nope\n": "a scenario is a YAML list of steps",
        "- [unclosed\n": "is not valid YAML",
    }
    for text, expected in cases.items():
        path = write("scenario.yaml", text)
        run = simulate("--scenario", path)
        assert run.code == 2, text
        assert path in run.err and expected in run.err, (text, run.err)
        assert "Traceback" not in run.err


def test_a_bad_timeout_exits_2(simulate: Simulate) -> None:
    run = simulate("--timeout", "soon")
    assert run.code == 2 and "--timeout soon" in run.err


def test_a_bad_prometheus_address_exits_2(simulate: Simulate) -> None:
    run = simulate("--prometheus", "ftp://prometheus.example")
    assert run.code == 2
    assert "ftp://prometheus.example" in run.err and "Traceback" not in run.err


# ---------------------------------------------------------------------------------------------- process


def test_the_seed_run_takes_under_2_cpu_seconds_process_start_included() -> None:
    # CPU time of the child process (user + system), not wall time: the figure holds on a loaded machine
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "canarylab.cli", "simulate"], capture_output=True, text=True,
                          timeout=60, env=env, cwd=Path(__file__).resolve().parents[2])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith("Promotion completed! Scaling down podinfo.test")
    assert cpu < 2.0, f"the seed run took {cpu:.2f} CPU seconds"


def test_speed_runs_the_lab_that_many_times_real_time(simulate: Simulate) -> None:
    started = time.perf_counter()
    run = simulate("--speed", "1000")
    wall = time.perf_counter() - started
    assert run.code == 0
    assert run.messages[-1] == "Promotion completed! Scaling down podinfo.test"
    assert wall >= 0.42  # 7 minutes of lab time at 1000x real time


def test_an_unreachable_prometheus_is_reported_on_the_canary(simulate: Simulate) -> None:
    run = simulate("--prometheus", "http://127.0.0.1:1", "--speed", "200", "--timeout", "1m")
    assert run.code == 3
    assert "Error checking metric providers: prometheus not available at http://127.0.0.1:1" in run.messages


def test_an_object_in_a_missing_namespace_exits_2(simulate: Simulate, write: Write) -> None:
    path = write("prod.yaml", """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: prod}
        spec: {ports: [{port: 80}], selector: {app: web}}
    """)
    run = simulate("-f", path)
    assert run.code == 2
    assert f'{path}: document 1 (Service web): metadata.namespace "prod" does not exist' in run.err


def test_a_gateway_api_canary_runs_on_an_httproute(simulate: Simulate, write: Write) -> None:
    seed = bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
    routed = seed.replace("  analysis:\n", "  provider: gatewayapi:v1beta1\n  analysis:\n")
    canary = write("gateway.yaml", routed.replace(
        "    port: 9898\n",
        "    port: 9898\n"
        "    gatewayRefs: [{name: podinfo, namespace: test, group: core, kind: Service, port: 9898}]\n", 1))
    run = simulate("-f", canary)
    assert run.code == 0, run.err
    assert run.weights() == list(range(5, 55, 5))


def test_a_canary_whose_target_is_not_in_the_lab_exits_2(simulate: Simulate, write: Write) -> None:
    seed = bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
    path = write("canary.yaml", seed.replace("    name: podinfo\n", "    name: podinf0\n", 1))
    run = simulate("-f", path)
    assert run.code == 2
    assert "spec.targetRef.name: Deployment podinf0 is not in namespace test" in run.err


def test_a_fault_before_a_new_image_stays_with_the_old_revision_and_says_so(simulate: Simulate, write: Write) -> None:
    # Given a fault on the current revision (3.1.0), then a new image
    scenario = write("early.yaml", f"""
        - at: 0s
          fault: {{namespace: test, deployment: podinfo, errorRate: 0.5}}
        - at: 0s
          {SET_IMAGE}
    """)
    run = simulate("--scenario", scenario)
    # Then 3.1.1 starts clean and is promoted, and the run says why the fault did not hit it
    assert run.code == 0, run.out
    assert run.messages[-1].startswith("Promotion completed!")
    assert ("stefanprodan/podinfo:3.1.1 starts clean; the fault (50% errors) stays with stefanprodan/podinfo:3.1.0"
            in run.err)
