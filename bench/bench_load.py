"""Benchmark: loading and validating the YAML a user gives (``canarylab simulate -f``).

Prints, for N distinct documents (the seed's Deployment, Service, HPA and Canary, renamed per copy, in one
file): the file size, the time the safe loader takes (against PyYAML's ``CSafeLoader`` on the same text), the
time to validate every object (schemas and rules) and the whole ``lab_objects`` step; then the import-time cost
of the loader and the validation layer against importing ``kubernetes_validate`` (the alternative at run time),
each measured in a fresh interpreter. Target: a few thousand documents in a few seconds.
Run: ``.venv/bin/python bench/bench_load.py [--documents N ...]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from canarylab.loader import Limits, parse_documents
from canarylab.manifests import bootstrap_documents
from canarylab.sim.inputs import lab_objects
from canarylab.validation import validate_object


def manifests(count: int) -> str:
    """``count`` documents: Deployment, Service, HPA and Canary quadruples, each quadruple with its own name."""
    podinfo = bootstrap_documents("workloads", "podinfo.yaml")
    deployment, hpa = podinfo[0], podinfo[1]
    canary = bootstrap_documents("workloads", "podinfo-canary.yaml")[0]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "test"},
               "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 9898, "targetPort": "http"}]}}
    docs = []
    for i in range(count // 4 + 1):
        name = f"app-{i:04d}"
        for template in (deployment, service, hpa, canary):
            doc = copy.deepcopy(template)
            doc["metadata"]["name"] = name
            if doc["kind"] == "Deployment":
                doc["spec"]["selector"]["matchLabels"] = {"app": name}
                doc["spec"]["template"]["metadata"]["labels"] = {"app": name}
            elif doc["kind"] == "Service":
                doc["metadata"]["name"] = f"{name}-svc"
                doc["spec"]["selector"] = {"app": name}
            elif doc["kind"] == "HorizontalPodAutoscaler":
                doc["spec"]["scaleTargetRef"]["name"] = name
            else:
                doc["spec"]["targetRef"]["name"] = name
                doc["spec"]["autoscalerRef"]["name"] = name
            docs.append(doc)
    return yaml.safe_dump_all(docs[:count], sort_keys=False)


def best(run, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def import_ms(module: str, repeat: int = 5) -> float:
    """Median wall time of ``import module`` in a fresh interpreter, minus a bare interpreter's start."""
    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    bare = statistics.median(once("pass") for _ in range(repeat))
    return (statistics.median(once(f"import {module}") for _ in range(repeat)) - bare) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, nargs="+", default=[1000, 3000, 5000])
    args = parser.parse_args()
    limits = Limits()
    print("documents  size      loader  (CSafeLoader)  validate  lab_objects")
    for count in args.documents:
        text = manifests(count)
        loaded = best(lambda t=text: parse_documents(t, "bench.yaml", limits), 1)
        pyyaml = best(lambda t=text: list(yaml.load_all(t, Loader=yaml.CSafeLoader)), 1)
        docs = parse_documents(text, "bench.yaml", limits)
        validated = best(lambda d=docs: [validate_object(x) for x in d], 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "bench.yaml")
            path.write_text(text)
            whole = best(lambda p=str(path): lab_objects([p]), 1)
        print(f"{count:9,}  {len(text) / 1e6:5.1f} MB  {loaded:5.2f} s  ({pyyaml:5.2f} s)      {validated:5.2f} s   "
              f"{whole:5.2f} s")
    print()
    print("import cost in a fresh interpreter (median of 5):")
    for module in ("canarylab.loader", "canarylab.validation", "canarylab.sim.inputs", "kubernetes_validate"):
        try:
            print(f"  {module:24} {import_ms(module):6.0f} ms")
        except subprocess.CalledProcessError:
            print(f"  {module:24} not installed")
    start = time.perf_counter()
    code = "from canarylab.validation import _registry; _registry()"
    subprocess.run([sys.executable, "-c", code], check=True)
    print(f"  schemas loaded (Kubernetes 1.34 + Flagger CRDs + routes), whole process: "
          f"{(time.perf_counter() - start) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
