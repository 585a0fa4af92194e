#!/usr/bin/env python3
"""Checks the Helm chart offline: `helm lint` (strict) and a render for every
value set in deploy/helm/fathom/ci/ (and the defaults), then every rendered
object validated against the Kubernetes schemas with kubernetes-validate
(strict: unknown or mistyped fields fail), and the chart's own promises
(one StatefulSet per replica set with one pod per shard, the router given
every shard, probes, non-root read-only containers).

Tools (PyPI): helm-python-sdk (the Helm Go SDK, no helm binary),
kubernetes-validate, PyYAML. Usage: check.py [KUBE_VERSION...]  (default 1.30 1.34)
"""
import glob
import importlib.metadata
import os
import re
import sys

import helm_python
import kubernetes_validate
import yaml

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fathom")
KUBES = sys.argv[1:] or ["1.30", "1.34"]
# Custom resources: kubernetes-validate has no schema for them.
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def render(values, namespace="search"):
    """The chart's objects for `values`, as dicts."""
    chart = helm_python.Chart.load(CHART)
    out = chart.render(values, name="fathom", namespace=namespace)
    objs = []
    for path, text in sorted(out.items()):
        for doc in yaml.safe_load_all(text):
            if doc:
                objs.append(doc)
    return objs


def merged(values):
    base = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))

    def merge(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v
        return a

    return merge(base, values)


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def check_promises(objs, values):
    v = merged(values)
    shards, replicas = v["collection"]["shards"], v["collection"]["replicasPerShard"]
    sts = [o for o in objs if o["kind"] == "StatefulSet"]
    assert len(sts) == replicas, f"{len(sts)} StatefulSets for {replicas} replicas per shard"
    for s in sts:
        assert s["spec"]["replicas"] == shards
        pod = s["spec"]["template"]["spec"]
        server = next(c for c in pod["containers"] if c["name"] == "server")
        for probe in ("startupProbe", "readinessProbe"):
            assert server[probe]["grpc"]["service"] == "fathom.v1.Fathom", probe
        assert server["livenessProbe"]["httpGet"]["path"] == "/livez"
        grace = pod["terminationGracePeriodSeconds"]
        drain_s = v["shard"]["config"]["drain_timeout_ms"] / 1000
        assert grace > drain_s + v["shard"]["preStopSleepSeconds"], "grace period covers preStop and drain"
    router = next(o for o in objs if o["kind"] == "Deployment")
    args = router["spec"]["template"]["spec"]["containers"][0]["args"]
    spec = args[args.index("--shards") + 1]
    assert len(spec.split(",")) == shards and all(len(s.split("|")) == replicas for s in spec.split(","))
    for o in objs:
        if o["kind"] in ("StatefulSet", "Deployment", "Job"):
            pod = o["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            for c in containers(pod):
                sc = c["securityContext"]
                assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"], c["name"]
    jobs = [o for o in objs if o["kind"] == "Job"]
    if v["build"]["enabled"]:
        assert jobs and jobs[0]["spec"]["completionMode"] == "Indexed" and jobs[0]["spec"]["completions"] == shards
    else:
        assert not jobs


def check_containerfile():
    """What can be checked of deploy/Containerfile without a container
    engine: every path it copies from the repository exists, and it builds
    with the release build of the workspace that CI tests."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(repo, "deploy", "Containerfile")).read()
    problems = []
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            for src in parts[1:-1]:
                if not os.path.exists(os.path.join(repo, src)):
                    problems.append(f"Containerfile copies {src}, which does not exist")
    if "cargo build --release --locked" not in text:
        problems.append("Containerfile does not run cargo build --release --locked")
    members = re.search(r"members\s*=\s*\[([^\]]*)\]", open(os.path.join(repo, "Cargo.toml")).read()).group(1)
    for m in re.findall(r'"([^"]+)"', members):
        top = m.split("/")[0]
        if f"COPY {top} {top}" not in text:
            problems.append(f"Containerfile does not copy workspace member {m}")
    if 'ENTRYPOINT ["/usr/local/bin/fathom"]' not in text or "USER 10001" not in text:
        problems.append("Containerfile must run the binary as entrypoint as user 10001")
    return problems


def main():
    sets = [("defaults", {})] + [
        (os.path.basename(p), yaml.safe_load(open(p)) or {}) for p in sorted(glob.glob(os.path.join(CHART, "ci", "*-values.yaml")))
    ]
    failed = 0
    for (name, values), kube in [(s, k) for s in sets for k in KUBES]:
        lint = helm_python.lint(CHART, values, strict=True, kube_version=f"v{kube}.0")
        problems = [m for m in lint["messages"] if m["severity"] >= 2] + [{"error": e} for e in lint["errors"]]
        objs = render(values)
        kinds = {}
        for o in objs:
            kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
            if (o["apiVersion"], o["kind"]) in CRDS:
                assert o["spec"]["endpoints"] and o["spec"]["selector"], "ServiceMonitor shape"
                continue
            try:
                kubernetes_validate.validate(o, kube, strict=True)
            except Exception as e:  # noqa: BLE001 - report every object
                problems.append({"error": f"{o['kind']} {o['metadata']['name']}: {e}"})
        try:
            check_promises(objs, values)
        except AssertionError as e:
            problems.append({"error": f"chart promise: {e}"})
        status = "ok" if not problems else "FAILED"
        print(f"{name} (Kubernetes {kube}): {status}: {len(objs)} objects {dict(sorted(kinds.items()))}")
        for p in problems:
            print(f"  {p}")
        failed += bool(problems)
    problems = check_containerfile()
    print(f"Containerfile: {'ok' if not problems else 'FAILED'}")
    for p in problems:
        print(f"  {p}")
    failed += bool(problems)
    print(f"helm SDK {helm_python.helm_sdk_version()}, kubernetes-validate {importlib.metadata.version('kubernetes-validate')}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
