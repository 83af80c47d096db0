"""``canarylab doctor``: grouped preflight checks in the manner of ``linkerd check``.

Each check has a result mark (√ passed, × failed, ‼ warning), a one-line hint, and says whether it is fatal.
``canarylab up`` runs the same checks as its first step and stops on a fatal one.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from canarylab.errors import UserError
from canarylab.lab.runner import CommandFailed, Runner, cmd
from canarylab.lab.state import context_of, created_contexts
from canarylab.lab.versions import TOOLS, Versions, parse_version, supported
from canarylab.manifests import bootstrap_file

GIB = 1024**3


class Outcome(Enum):
    """How a check went, with the mark ``linkerd check`` uses."""

    OK = "√"
    FAIL = "×"
    WARN = "‼"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    group: str
    title: str
    outcome: Outcome
    hint: str = ""
    """One line: what to do about it (empty when it passed)."""

    @property
    def fatal(self) -> bool:
        """A failed check stops ``canarylab up``; a warning does not."""
        return self.outcome is Outcome.FAIL


GROUPS = ("Docker", "Tools", "System", "Cluster")


@dataclass
class Probe:
    """The machine the checks look at; tests swap the file paths and the port test."""

    runner: Runner
    versions: Versions
    name: str = "canarylab"
    proc_inotify: Path = Path("/proc/sys/fs/inotify")
    kind_config: Path | None = None
    port_free: Callable[[str, int], bool] | None = None

    def run(self, *argv: str) -> tuple[int, str]:
        """Exit code and stdout+stderr of a read-only command; a missing tool is exit code 127."""
        try:
            result = self.runner.run(cmd(*argv), check=False, timeout=30)
        except UserError as err:  # ToolMissing
            return 127, str(err)
        except CommandFailed as err:  # a runner that raises anyway
            return err.result.exit_code, err.result.output_tail()
        return result.exit_code, (result.stdout + result.stderr)


def _docker(probe: Probe) -> tuple[list[Check], bool]:
    g = "Docker"
    code, out = probe.run("docker", "info", "--format", "{{json .}}")
    if code == 127:
        return [Check(g, "docker CLI is installed", Outcome.FAIL,
                      "install Docker (https://docs.docker.com/get-docker/); kind runs the cluster in "
                      "containers. No Docker? `canarylab up --runtime kwok` runs a lab without it")], False
    info: dict[str, Any] = {}
    for line in out.splitlines():  # `docker info` prints JSON on one line, warnings around it
        if line.strip().startswith("{"):
            try:
                info = json.loads(line)
            except ValueError:
                continue
    errors = info.get("ServerErrors") or []
    if code != 0 or errors or not info.get("NCPU"):
        why = (errors[0] if errors else out.strip().splitlines()[-1] if out.strip() else f"exit code {code}")
        return [Check(g, "Docker daemon is reachable", Outcome.FAIL,
                      f"start Docker (Docker Desktop, or `sudo systemctl start docker`), then `docker info` "
                      f"must work; it said: {str(why)[:160]}")], False
    checks = [Check(g, "Docker daemon is reachable", Outcome.OK)]
    pre = probe.versions.section("preflight")
    cpus = int(info.get("NCPU", 0))
    want_cpus = int(pre.get("min_cpus", 2))
    checks.append(Check(g, f"Docker has {cpus} CPUs (want {want_cpus})",
                        Outcome.OK if cpus >= want_cpus else Outcome.WARN,
                        "" if cpus >= want_cpus else "give Docker more CPUs (Docker Desktop: Settings → Resources); "
                        "the lab will be slow"))
    mem = float(info.get("MemTotal", 0)) / GIB
    warn_at = float(pre.get("min_memory_gib", 4))
    fatal_at = float(pre.get("fatal_memory_gib", 2))
    title = f"Docker has {mem:.1f} GiB memory (want {warn_at:g})"
    if mem < fatal_at:
        checks.append(Check(g, title, Outcome.FAIL, f"Linkerd and podinfo need at least {fatal_at:g} GiB; "
                                                     "give Docker more memory (Settings → Resources)"))
    elif mem < warn_at:
        checks.append(Check(g, title, Outcome.WARN, "pods may be evicted under load; give Docker more memory"))
    else:
        checks.append(Check(g, title, Outcome.OK))
    return checks, True


_VERSION_ARGS = {
    "kind": ("kind", "version"),
    "kubectl": ("kubectl", "version", "--client", "-o", "json"),
    "linkerd": ("linkerd", "version", "--client", "--short"),
    "helm": ("helm", "version", "--short"),
}


def _tools(probe: Probe) -> list[Check]:
    checks = []
    for tool in TOOLS:
        pin = probe.versions.tools[tool]
        code, out = probe.run(*_VERSION_ARGS[tool])
        if code == 127:
            checks.append(Check("Tools", f"{tool} is installed", Outcome.FAIL,
                                f"run `canarylab tools install` (downloads {tool} {pin.version}) or install it "
                                "yourself"))
            continue
        version = parse_version(tool, out) if code == 0 else None
        if version is None:
            checks.append(Check("Tools", f"{tool} reports its version", Outcome.FAIL,
                                f"`{' '.join(_VERSION_ARGS[tool])}` failed or printed no version; reinstall with "
                                "`canarylab tools install`"))
        elif not supported(tool, version, pin.min_version):
            checks.append(Check("Tools", f"{tool} {version} is supported", Outcome.FAIL,
                                f"the lab needs {tool} {pin.min_version} or newer (pinned: {pin.version}); "
                                "run `canarylab tools install`"))
        else:
            checks.append(Check("Tools", f"{tool} {version} is supported (≥ {pin.min_version})", Outcome.OK))
    return checks


def _system(probe: Probe) -> list[Check]:
    g = "System"
    limits = probe.versions.section("preflight").get("inotify") or {}
    if not probe.proc_inotify.is_dir():
        return [Check(g, "inotify limits (not Linux: Docker's VM sets them)", Outcome.OK)]
    checks = []
    for key, want in limits.items():
        try:
            have = int((probe.proc_inotify / key).read_text().strip())
        except (OSError, ValueError):
            checks.append(Check(g, f"fs.inotify.{key} is readable", Outcome.WARN, f"could not read "
                                f"{probe.proc_inotify / key}; kind needs fs.inotify.{key} ≥ {want}"))
            continue
        ok = have >= int(want)
        checks.append(Check(g, f"fs.inotify.{key} = {have} (want ≥ {want})", Outcome.OK if ok else Outcome.WARN,
                            "" if ok else f"pods may fail with 'too many open files': "
                            f"`sudo sysctl fs.inotify.{key}={want}`"))
    return checks


def host_ports(config_path: Path) -> list[tuple[str, int]]:
    """Host ports the kind config binds: ``extraPortMappings[].hostPort`` and a fixed ``apiServerPort``."""
    try:
        config = yaml.safe_load(config_path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    ports: list[tuple[str, int]] = []
    net = config.get("networking") or {}
    if int(net.get("apiServerPort") or 0) > 0:
        ports.append((str(net.get("apiServerAddress") or "127.0.0.1"), int(net["apiServerPort"])))
    for node in config.get("nodes") or []:
        for mapping in node.get("extraPortMappings") or []:
            if mapping.get("hostPort"):
                ports.append((str(mapping.get("listenAddress") or "0.0.0.0"), int(mapping["hostPort"])))
    return ports


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def _cluster(probe: Probe, docker_ok: bool) -> list[Check]:
    g = "Cluster"
    checks: list[Check] = []
    context = context_of(probe.name)
    ours = context in created_contexts()
    if not docker_ok:
        checks.append(Check(g, f"cluster name {probe.name!r} is free", Outcome.WARN,
                            "not checked: needs a reachable Docker daemon (see above)"))
    else:
        code, out = probe.run("kind", "get", "clusters")
        if code == 127:
            checks.append(Check(g, f"cluster name {probe.name!r} is free", Outcome.WARN, "not checked: needs kind"))
        elif code != 0:
            checks.append(Check(g, f"cluster name {probe.name!r} is free", Outcome.WARN,
                                f"`kind get clusters` failed: {out.strip()[:120]}"))
        elif probe.name in out.split():
            if ours:
                checks.append(Check(g, f"cluster {probe.name!r} exists and canarylab made it (up resumes it)",
                                    Outcome.OK))
            else:
                checks.append(Check(g, f"cluster name {probe.name!r} is free", Outcome.FAIL,
                                    f"a kind cluster {probe.name!r} exists that canarylab did not create; pick "
                                    "another name (`--name lab2`) or delete it: "
                                    f"`kind delete cluster --name {probe.name}`"))
        else:
            checks.append(Check(g, f"cluster name {probe.name!r} is free", Outcome.OK))
    ports = host_ports(probe.kind_config or bootstrap_file("kind.yaml"))
    if not ports:
        checks.append(Check(g, "host ports: none fixed (API server on a random 127.0.0.1 port)", Outcome.OK))
    elif ours:
        checks.append(Check(g, "host ports belong to the existing lab", Outcome.OK))
    else:
        free = probe.port_free or _port_free
        for address, port in ports:
            ok = free(address, port)
            checks.append(Check(g, f"port {address}:{port} is free", Outcome.OK if ok else Outcome.FAIL,
                                "" if ok else f"something listens on {address}:{port}; stop it or change "
                                "extraPortMappings in the kind config"))
    return checks


def run_checks(probe: Probe) -> list[Check]:
    """Every check, in report order."""
    docker_checks, docker_ok = _docker(probe)
    return [*docker_checks, *_tools(probe), *_system(probe), *_cluster(probe, docker_ok)]


def render(checks: list[Check]) -> str:
    """The report, grouped, with a verdict line at the end."""
    lines: list[str] = []
    for group in GROUPS:
        items = [c for c in checks if c.group == group]
        if not items:
            continue
        lines += ["", group, "-" * len(group)]
        for c in items:
            lines.append(f"{c.outcome.value} {c.title}")
            if c.hint:
                lines.append(f"    {'fatal' if c.fatal else 'warning'}: {c.hint}")
    fatal = sum(c.fatal for c in checks)
    warnings = sum(c.outcome is Outcome.WARN for c in checks)
    lines.append("")
    if fatal:
        lines.append(f"Status check results are × ({fatal} fatal, {warnings} warnings): fix the × lines, then "
                     "run `canarylab doctor` again.")
    else:
        lines.append(f"Status check results are √ ({warnings} warnings): ready for `canarylab up`.")
    return "\n".join(lines).lstrip("\n")


def doctor(runner: Runner, versions: Versions, name: str) -> tuple[str, bool]:
    """The report text and whether ``up`` may go on."""
    checks = run_checks(Probe(runner, versions, name=name))
    return render(checks), not any(c.fatal for c in checks)


__all__ = ["GROUPS", "Check", "Outcome", "Probe", "doctor", "host_ports", "render", "run_checks"]
