"""Scenarios for ``canarylab simulate --scenario FILE``: a YAML list of timed steps.

``at`` is an offset (``0s``, ``90s``, ``2m``) from the moment every Canary is Initialized. Steps:
``setImage``, ``fault``, ``clearFault``, ``abort``, ``promote``, ``pause``, ``resume``, ``gate``. Every
problem names the file, the step, the field and the rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from canarylab.engine.durations import parse_duration
from canarylab.engine.kinds import Obj
from canarylab.errors import UserError
from canarylab.sim.inputs import read_file

DEFAULT_NAMESPACE = "test"
DEFAULT_IMAGE = "stefanprodan/podinfo:3.1.1"

_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # action -> (required, optional) besides namespace
    # "deployment" stands for the workload: a step names a deployment or a daemonset (one of the two)
    "setImage": ({"deployment", "container", "image"}, set()),
    "fault": ({"deployment"}, {"errorRate", "latencyMs", "neverReady"}),
    "clearFault": ({"deployment"}, set()),
    "abort": ({"canary"}, set()),
    "promote": ({"canary"}, set()),
    "pause": ({"canary"}, set()),
    "resume": ({"canary"}, set()),
    "gate": ({"canary", "open"}, set()),
}


@dataclass(frozen=True)
class Step:
    """One scenario step: at ``at`` seconds after every Canary is Initialized, do ``action`` with ``args``."""

    at: float
    action: str
    namespace: str
    args: dict[str, Any] = field(default_factory=dict)
    index: int = 0

    def describe(self) -> str:
        """``step 2 (fault at 90s)``: how messages name the step."""
        return f"step {self.index} ({self.action} at {_show_seconds(self.at)})"


def default_scenario(objects: Iterable[Obj] = ()) -> list[Step]:
    """The seed's walkthrough: a new image (3.1.1) at 0s on the target of the first Canary, whatever its kind
    (podinfo's Deployment in the seed)."""
    objects = list(objects)
    canary = next((o for o in objects if o.get("kind") == "Canary"), None)
    ref = ((canary or {}).get("spec") or {}).get("targetRef") or {}
    kind = "daemonset" if ref.get("kind") == "DaemonSet" else "deployment"
    name = str(ref.get("name") or "podinfo")
    namespace = str(((canary or {}).get("metadata") or {}).get("namespace") or DEFAULT_NAMESPACE)
    container = "podinfod"
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == ref.get("kind", "Deployment") and meta.get("name") == name \
                and str(meta.get("namespace") or "default") == namespace:
            containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
            if containers and isinstance(containers[0], dict) and containers[0].get("name"):
                container = str(containers[0]["name"])
    return [Step(0.0, "setImage", namespace, {kind: name, "container": container, "image": DEFAULT_IMAGE}, 1)]


def load_scenario(path: str) -> list[Step]:
    """The steps in a scenario file, sorted by ``at`` (stable), or a :class:`UserError` naming the problem."""
    text = read_file(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}:{where} is not valid YAML: {getattr(err, 'problem', None) or err}.") from None
    return parse_steps(doc, path)


def parse_steps(doc: Any, source: str) -> list[Step]:
    """Validate a parsed scenario document (a list of steps)."""
    if isinstance(doc, dict) and isinstance(doc.get("steps"), list):
        doc = doc["steps"]
    if not isinstance(doc, list):
        raise UserError(f"{source}: a scenario is a YAML list of steps, e.g. `- at: 0s` / "
                        f"`  setImage: {{deployment: podinfo, container: podinfod, image: {DEFAULT_IMAGE}}}`.")
    steps = [_parse_step(item, f"{source}: step {i}", i) for i, item in enumerate(doc, 1)]
    return sorted(steps, key=lambda s: s.at)


def _parse_step(item: Any, where: str, index: int) -> Step:
    if not isinstance(item, dict):
        raise UserError(f"{where}: each step is a mapping with `at` and one action ({', '.join(_FIELDS)}).")
    if "at" not in item:
        raise UserError(f"{where}: field `at` is required (an offset such as 0s, 90s or 2m from the moment every "
                        "Canary is Initialized).")
    at = _offset(item["at"], f"{where}: at")
    actions = [k for k in item if k != "at"]
    unknown = [k for k in actions if k not in _FIELDS]
    if unknown:
        raise UserError(f"{where}: unknown action {unknown[0]!r}: use one of {', '.join(_FIELDS)}.")
    if len(actions) != 1:
        raise UserError(f"{where}: a step has exactly one action besides `at` (found "
                        f"{', '.join(actions) if actions else 'none'}).")
    action = actions[0]
    args = item[action] if item[action] is not None else {}
    if not isinstance(args, dict):
        raise UserError(f"{where}: {action} takes a mapping of fields (got {args!r}).")
    required, optional = _FIELDS[action]
    if "deployment" in required:
        if "deployment" in args and "daemonset" in args:
            raise UserError(f"{where}: {action} names a deployment or a daemonset, not both.")
        if "daemonset" in args:
            required = (required - {"deployment"}) | {"daemonset"}
    allowed = required | optional | {"namespace"}
    for key in args:
        if key not in allowed:
            raise UserError(f"{where}: {action}.{key} is not a field of {action} (it takes "
                            f"{', '.join(sorted(allowed))}).")
    for key in sorted(required):
        if key not in args:
            raise UserError(f"{where}: {action}.{key} is required.")
    namespace = args.get("namespace", DEFAULT_NAMESPACE)
    for key in ("namespace", "deployment", "daemonset", "container", "image", "canary"):
        if key in args and (not isinstance(args[key], str) or not args[key]):
            raise UserError(f"{where}: {action}.{key} must be a non-empty string (got {args[key]!r}).")
    if action == "fault":
        if not {"errorRate", "latencyMs", "neverReady"} & set(args):
            raise UserError(f"{where}: fault needs errorRate (share of requests answered 500, 0..1), latencyMs "
                            "(added to each response, >= 0) or neverReady (true: new pods never become ready).")
        rate = args.get("errorRate", 0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise UserError(f"{where}: fault.errorRate must be a number between 0 and 1 (got {rate!r}), "
                            "e.g. 0.3 for 30% of requests answered 500.")
        latency = args.get("latencyMs", 0)
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise UserError(f"{where}: fault.latencyMs must be a number >= 0 (got {latency!r}).")
        if not isinstance(args.get("neverReady", False), bool):
            raise UserError(f"{where}: fault.neverReady must be true or false (got {args['neverReady']!r}).")
    if action == "gate" and not isinstance(args["open"], bool):
        raise UserError(f"{where}: gate.open must be true or false (got {args['open']!r}).")
    return Step(at, action, str(namespace), {k: v for k, v in args.items() if k != "namespace"}, index)


def _offset(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise UserError(f"{where} must be a duration such as 0s, 90s or 2m (got {value!r}).")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(str(value))
        except ValueError:
            raise UserError(f"{where} must be a duration such as 0s, 90s or 2m (got {value!r}).") from None
    if seconds < 0:
        raise UserError(f"{where} must not be negative (got {value!r}).")
    return seconds


def check_against_lab(steps: Iterable[Step], objects: Iterable[Obj], source: str) -> None:
    """Every Deployment, DaemonSet, container and Canary a step names exists in the lab."""
    workloads: dict[str, dict[tuple[str, str], Obj]] = {"Deployment": {}, "DaemonSet": {}}
    canaries: set[tuple[str, str]] = set()
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        if obj.get("kind") in workloads:
            workloads[str(obj["kind"])][key] = obj
        elif obj.get("kind") == "Canary":
            canaries.add(key)
    for step in steps:
        where = f"{source}: {step.describe()}"
        for name, kind in (("deployment", "Deployment"), ("daemonset", "DaemonSet")):
            if name not in step.args:
                continue
            known_objects = workloads[kind]
            key = (step.namespace, step.args[name])
            if key not in known_objects:
                known = ", ".join(f"{n}.{ns}" for ns, n in sorted(known_objects)) or "none"
                raise UserError(f"{where}: {step.action}.{name}: {kind} {key[1]} does not exist in namespace "
                                f"{key[0]} (the lab has {known}).")
            if "container" in step.args:
                containers = [c.get("name") for c in
                              (((known_objects[key].get("spec") or {}).get("template") or {}).get("spec") or {})
                              .get("containers") or []]
                if step.args["container"] not in containers:
                    raise UserError(f"{where}: {step.action}.container: {kind} {key[1]}.{key[0]} has no container "
                                    f"{step.args['container']!r} (it has {', '.join(map(str, containers))}).")
        if "canary" in step.args:
            key = (step.namespace, step.args["canary"])
            if key not in canaries:
                known = ", ".join(f"{n}.{ns}" for ns, n in sorted(canaries)) or "none"
                raise UserError(f"{where}: {step.action}.canary: Canary {key[1]} does not exist in namespace {key[0]} "
                                f"(the lab has {known}).")


def _show_seconds(seconds: float) -> str:
    if seconds == int(seconds):
        whole = int(seconds)
        return f"{whole // 60}m{whole % 60}s" if whole >= 60 and whole % 60 else (
            f"{whole // 60}m" if whole >= 60 else f"{whole}s")
    return f"{seconds}s"
