"""Strict input: every object a user gives to ``canarylab simulate -f`` is checked as an API server would, and
every bad one is one paragraph naming the file, the document, the field and what the user wrote (exit 2).

The schemas decide: Flagger's CRDs for Canary/MetricTemplate, Kubernetes' OpenAPI for the workloads, the CRD
schemas of TrafficSplit/HTTPRoute. ``null`` means unset, as the API server reads it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest
import yaml

from canarylab.manifests import bootstrap_file
from tests.sim.conftest import Run

Simulate = Callable[..., Run]
Write = Callable[[str, str], str]

SEED_CANARY = bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
PODINFO = bootstrap_file("workloads", "podinfo.yaml").read_text()


def deployment(**spec_changes: object) -> str:
    """The seed's podinfo Deployment with some ``spec`` fields replaced (``None`` writes ``null``)."""
    doc = next(d for d in yaml.safe_load_all(PODINFO) if d["kind"] == "Deployment")
    doc["spec"].update(spec_changes)
    return yaml.safe_dump(doc, sort_keys=False)


def one_paragraph(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("canarylab: ") and "Traceback" not in err


# --------------------------------------------------------------------------------------------- Canary


def test_a_misspelled_optional_field_is_refused_naming_it_and_the_field_meant(simulate: Simulate,
                                                                              write: Write) -> None:
    path = write("canary.yaml", SEED_CANARY.replace("threshold: 5", "threshhold: 5"))
    run = simulate("-f", path)
    assert run.code == 2 and one_paragraph(run.err)
    assert f"{path}: document 1 (Canary podinfo): spec.analysis.threshhold: unknown field; did you mean " \
           "threshold?" in run.err


def test_a_misspelled_required_field_names_what_the_user_typed(simulate: Simulate, write: Write) -> None:
    path = write("canary.yaml", SEED_CANARY.replace("stepWeight: 5", "stepWieght: 5"))
    run = simulate("-f", path)
    assert run.code == 2 and one_paragraph(run.err)
    assert "spec.analysis.stepWieght: unknown field; did you mean stepWeight?" in run.err
    assert "(got 0)" not in run.err


@pytest.mark.parametrize("api_version", ["flagger.app/v1", "apps/v1", "flagger.io/v1beta1"])
def test_a_wrong_api_version_names_the_accepted_one(simulate: Simulate, write: Write, api_version: str) -> None:
    path = write("canary.yaml", SEED_CANARY.replace("apiVersion: flagger.app/v1beta1", f"apiVersion: {api_version}"))
    run = simulate("-f", path)
    assert run.code == 2 and one_paragraph(run.err)
    assert f'apiVersion: "{api_version}" is not an apiVersion of Canary: use flagger.app/v1beta1' in run.err


def test_flaggers_crd_rules_apply_interval_and_threshold_are_required(simulate: Simulate, write: Write) -> None:
    path = write("canary.yaml", SEED_CANARY.replace("    interval: 30s\n", "", 1))
    run = simulate("-f", path)
    assert run.code == 2
    assert "spec.analysis: must set interval, threshold and one of iterations, stepWeight, stepWeights " \
           "(interval missing)" in run.err


def test_an_enum_of_the_crd_quotes_the_value(simulate: Simulate, write: Write) -> None:
    text = SEED_CANARY.replace("type: pre-rollout", "type: pre-rolout")
    run = simulate("-f", write("canary.yaml", text))
    assert run.code == 2 and 'spec.analysis.webhooks[0].type: must be one of ""' in run.err
    assert '(got "pre-rolout")' in run.err


def test_null_means_unset_in_a_canary(simulate: Simulate, write: Write) -> None:
    text = SEED_CANARY.replace("progressDeadlineSeconds: 60", "progressDeadlineSeconds: null")
    run = simulate("-f", write("canary.yaml", text))
    assert run.code == 0, run.err


def test_a_metric_template_is_checked_against_its_crd(simulate: Simulate, write: Write) -> None:
    template = textwrap.dedent("""\
        apiVersion: flagger.app/v1beta1
        kind: MetricTemplate
        metadata: {name: errors, namespace: test}
        spec:
          provider: {type: prometheus, adress: http://prometheus:9090}
          query: sum(rate(response_total[1m]))
        """)
    run = simulate("-f", write("template.yaml", template))
    assert run.code == 2 and "spec.provider.adress: unknown field; did you mean address?" in run.err


# --------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n---\n"])
def test_a_file_with_no_documents_is_an_error_naming_the_file(simulate: Simulate, write: Write, text: str) -> None:
    path = write("empty.yaml", text)
    run = simulate("-f", path)
    assert run.code == 2 and one_paragraph(run.err)
    assert f"{path}: holds no YAML documents" in run.err


def test_an_empty_scenario_is_an_error_naming_the_file(simulate: Simulate, write: Write) -> None:
    path = write("scenario.yaml", "# to do\n")
    run = simulate("--scenario", path)
    assert run.code == 2 and f"{path}: holds no YAML documents" in run.err


def test_a_duplicate_key_is_a_warning_and_the_last_value_wins_as_with_kubectl(simulate: Simulate,
                                                                             write: Write) -> None:
    path = write("canary.yaml", SEED_CANARY.replace("threshold: 5", "threshold: 5\n    threshold: 3"))
    run = simulate("-f", path)
    assert run.code == 0, run.err
    assert "warning: " in run.err and "line 32, column 5: the key 'threshold' appears twice in the same mapping; " \
           "the last one is used." in run.err
    assert "appears twice" not in simulate("-f", path, "--validate=ignore").err


def test_a_file_that_is_not_utf8_is_refused(simulate: Simulate, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "latin1.yaml"
    path.write_bytes("kind: Canary\nmetadata: {name: caf\xe9}\n".encode("latin-1"))
    run = simulate("-f", str(path))
    assert run.code == 2 and "is not UTF-8 text" in run.err


# --------------------------------------------------------------------------------------------- --validate


def test_validate_warn_turns_unknown_fields_into_warnings_and_drops_them(simulate: Simulate, write: Write) -> None:
    text = SEED_CANARY.replace("  analysis:\n", "  analysis:\n    owner: team-a\n", 1)
    path = write("canary.yaml", text)
    strict = simulate("-f", path)
    assert strict.code == 2 and "spec.analysis.owner: unknown field" in strict.err
    warn = simulate("-f", path, "--validate=warn")
    assert warn.code == 0
    assert "canarylab: warning: " in warn.err and "spec.analysis.owner: unknown field" in warn.err
    assert "Promotion completed!" in warn.out
    ignore = simulate("-f", path, "--validate", "ignore")
    assert ignore.code == 0 and "warning" not in ignore.err


def test_validate_warn_applies_to_scenario_fields(simulate: Simulate, write: Write) -> None:
    scenario = write("scenario.yaml", "- at: 0s\n  setImage: {deployment: podinfo, container: podinfod, "
                                      "image: stefanprodan/podinfo:3.1.1, note: first}\n")
    assert simulate("--scenario", scenario).code == 2
    warn = simulate("--scenario", scenario, "--validate=warn")
    assert warn.code == 0 and "setImage.note: unknown field" in warn.err


def test_validate_does_not_let_wrong_types_through(simulate: Simulate, write: Write) -> None:
    text = SEED_CANARY.replace("stepWeight: 5", "stepWeight: five")
    run = simulate("-f", write("canary.yaml", text), "--validate=warn")
    assert run.code == 2 and 'spec.analysis.stepWeight: must be a number (got "five")' in run.err


# --------------------------------------------------------------------------------------------- workloads (issue 14)


def test_progress_deadline_null_means_unset_as_the_api_server_reads_it(simulate: Simulate, write: Write) -> None:
    run = simulate("-f", write("podinfo.yaml", deployment(progressDeadlineSeconds=None)))
    assert run.code == 0, run.err
    assert "Promotion completed!" in run.out


def test_max_surge_as_a_mapping_is_refused_with_its_path(simulate: Simulate, write: Write) -> None:
    text = deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": {}}})
    run = simulate("-f", write("podinfo.yaml", text))
    assert run.code == 2 and one_paragraph(run.err)
    assert "(Deployment podinfo): spec.strategy.rollingUpdate.maxSurge: must be an integer or a string such as " \
           "25% (got {})" in run.err


def test_min_ready_seconds_abc_quotes_what_was_written(simulate: Simulate, write: Write) -> None:
    run = simulate("-f", write("podinfo.yaml", deployment(minReadySeconds="abc")))
    assert run.code == 2 and 'spec.minReadySeconds: must be an integer (got "abc")' in run.err


def test_a_service_selector_list_is_refused(simulate: Simulate, write: Write) -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: test}\n" \
              "spec: {selector: [app], ports: [{port: 80}]}\n"
    run = simulate("-f", write("service.yaml", service))
    assert run.code == 2 and one_paragraph(run.err)
    assert '(Service web): spec.selector: must be a mapping (got ["app"])' in run.err


@pytest.mark.parametrize("text, expected", [
    (deployment(replica=3), "spec.replica: unknown field; did you mean replicas?"),
    (deployment(replicas=-1), "spec.replicas: must be greater than or equal to 0 (got -1)"),
    (deployment(replicas=2.5), "spec.replicas: must be an integer (got 2.5)"),
    (deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "ten%"}}),
     "spec.strategy.rollingUpdate.maxSurge: must be an integer or a percentage such as 25% (got 'ten%')"),
    (deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
     "spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when `maxSurge` is 0"),
    (deployment(strategy={"type": "Canary"}), "spec.strategy.type: must be RollingUpdate or Recreate"),
    (deployment(progressDeadlineSeconds=5, minReadySeconds=10),
     "spec.progressDeadlineSeconds: must be greater than minReadySeconds 10 (got 5)"),
    (deployment(selector={"matchLabels": {"app": "other"}}), "`selector` does not match template `labels`"),
    (deployment(selector=None), "spec.selector: is required"),
    ("apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: x, namespace: test}\n",
     'apiVersion: "extensions/v1beta1" is not an apiVersion of Deployment: use apps/v1'),
    ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: podinfo, namespace: test}\n"
     "spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}, minReplicas: 3, "
     "maxReplicas: 2}\n", "spec.maxReplicas: must be greater than or equal to `minReplicas` 3 (got 2)"),
    ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: podinfo, namespace: test}\n"
     "spec: {scaleTargetRef: {kind: Deployment, name: podinfo}, maxReplicas: many}\n",
     'spec.maxReplicas: must be an integer (got "many")'),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: test}\ndata: {retries: 3}\n",
     "data.retries: must be a string (got 3)"),
    ("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: test}\ndata: {token: not base64!}\n",
     "data.token: must be base64 (use stringData for plain text)"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: test}\nspec: {ports: [{port: 70000}]}\n",
     "spec.ports[0].port: must be between 1 and 65535 (got 70000)"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: Web, namespace: test}\nspec: {ports: [{port: 80}]}\n",
     "metadata.name: must be a DNS-1035 label"),
    ("apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: t, namespace: test}\n"
     "spec: {service: podinfo, backends: [{service: podinfo-primary, weight: half}]}\n",
     'spec.backends[0].weight: must be an integer (got "half")'),
    ("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: test}\n"
     "spec: {parentRefs: [{name: podinfo, kind: Service, group: core, port: 0}]}\n",
     "spec.parentRefs[0].port: must be at least 1 (got 0)"),
    ("apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, lables: {x: y}}\n",
     "metadata.lables: unknown field; did you mean labels?"),
    ("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: test}\n"
     "spec: {ingressClassName: nginx, rule: []}\n", "spec.rule: unknown field; did you mean rules?"),
])  # fmt: skip
def test_every_field_the_lab_reads_is_validated_with_its_path(simulate: Simulate, write: Write, text: str,
                                                              expected: str) -> None:
    run = simulate("-f", write("workload.yaml", text))
    assert run.code == 2 and one_paragraph(run.err), run.err
    assert expected in run.err


def test_defaults_are_kubernetes_defaults(write: Write) -> None:
    from canarylab.sim.inputs import lab_objects

    service = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: test}\nspec: {ports: [{port: 80}]}\n"
    bare = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: test}\nspec:\n" \
           "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n" \
           "    spec: {containers: [{name: web, image: nginx}]}\n"
    objects = {(o["kind"], o["metadata"]["name"]): o for o in lab_objects([write("w.yaml", service + "---\n" + bare)])}
    spec = objects[("Deployment", "web")]["spec"]
    assert spec["replicas"] == 1 and spec["progressDeadlineSeconds"] == 600 and spec["revisionHistoryLimit"] == 10
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    port = objects[("Service", "web")]["spec"]["ports"][0]
    assert port == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert objects[("Service", "web")]["spec"]["type"] == "ClusterIP"


def test_an_alert_provider_is_checked_against_flaggers_crd(simulate: Simulate, write: Write) -> None:
    provider = "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata: {name: on-call, namespace: test}\n" \
               "spec: {type: slack, channel: '#deploys', address: https://hooks.slack.com/services/x}\n"
    assert simulate("-f", write("alerts.yaml", provider)).code == 0
    bad = simulate("-f", write("alerts.yaml", provider.replace("type: slack", "type: pager")))
    assert bad.code == 2 and 'spec.type: must be one of' in bad.err and '(got "pager")' in bad.err
    typo = simulate("-f", write("alerts.yaml", provider.replace("channel:", "chanel:")))
    assert typo.code == 2 and "spec.chanel: unknown field; did you mean channel?" in typo.err


def test_demo_refuses_bad_input_before_the_dashboard_opens(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    from canarylab.cli import main

    path = write("canary.yaml", SEED_CANARY.replace("threshold: 5", "threshhold: 5"))
    assert main(["demo", "-f", path]) == 2
    assert "spec.analysis.threshhold: unknown field; did you mean threshold?" in capsys.readouterr().err


def test_the_keymap_follows_validate(tmp_path: object) -> None:
    from pathlib import Path

    from canarylab.errors import UserError
    from canarylab.keymap import load_keymap

    path = Path(str(tmp_path)) / "keymap.yaml"
    path.write_text("bump: ctrl+b\nrollbak: ctrl+r\n")
    env = {"CANARYLAB_KEYMAP": str(path)}
    with pytest.raises(UserError, match=r"unknown binding id 'rollbak'; did you mean rollback\?"):
        load_keymap(env)
    notes: list[str] = []
    assert load_keymap(env, validate="warn", warnings=notes) == {"canarylab.bump": "ctrl+b"}
    assert len(notes) == 1 and "rollbak" in notes[0] and "--validate=warn" in notes[0]
    path.write_text("bump: [ctrl+b\n")
    with pytest.raises(UserError, match=r"^keymap .*keymap\.yaml: line 2, column 1: is not valid YAML"):
        load_keymap(env)


@pytest.mark.parametrize("kind, meant", [("Deploymnet", "Deployment"), ("canary", "Canary")])
def test_a_misspelled_kind_names_the_kind_meant(simulate: Simulate, write: Write, kind: str, meant: str) -> None:
    run = simulate("-f", write("x.yaml", f"apiVersion: v1\nkind: {kind}\nmetadata: {{name: x, namespace: test}}\n"))
    assert run.code == 2 and f"kind {kind!r} is not supported by the simulated lab; did you mean {meant}?" in run.err


@pytest.mark.parametrize("change, expected", [
    ("  replicas: 3\n", "spec.replicas: unknown field"),
    ("  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0}}\n",
     "spec.updateStrategy.rollingUpdate.maxUnavailable: may not be 0 when `maxSurge` is 0"),
    ("  updateStrategy: {type: Canary}\n", "spec.updateStrategy.type: must be RollingUpdate or OnDelete"),
])  # fmt: skip
def test_a_daemonset_is_validated_like_the_api_server_does(simulate: Simulate, write: Write, change: str,
                                                           expected: str) -> None:
    daemon = textwrap.dedent("""\
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: agent, namespace: test}
        spec:
          selector: {matchLabels: {app: agent}}
          template:
            metadata: {labels: {app: agent}}
            spec: {containers: [{name: agent, image: stefanprodan/podinfo:3.1.0}]}
        """)
    assert simulate("-f", write("ds.yaml", daemon)).code == 0
    run = simulate("-f", write("ds.yaml", daemon + change))
    assert run.code == 2 and one_paragraph(run.err) and f"(DaemonSet agent): {expected}" in run.err, run.err


def test_every_bad_document_is_named_in_the_one_paragraph(simulate: Simulate, write: Write) -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: test}\n" \
              "spec: {selector: [app], ports: [{port: 80}]}\n"
    path = write("two.yaml", deployment(minReadySeconds="abc") + "---\n" + service)
    run = simulate("-f", path)
    assert run.code == 2 and one_paragraph(run.err)
    assert f'{path}: document 1 (Deployment podinfo): spec.minReadySeconds: must be an integer (got "abc").' in run.err
    assert f'{path}: document 2 (Service web): spec.selector: must be a mapping (got ["app"]).' in run.err
    many = simulate("-f", write("many.yaml", "---\n".join([service] * 13)))
    assert many.code == 2 and one_paragraph(many.err) and "(3 more documents have problems too.)" in many.err
