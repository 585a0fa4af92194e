#!/usr/bin/env python3
"""The Helm chart's commands, run for real: renders deploy/helm/fathom with
the 3 shards x 2 replicas value set, takes every container's command, args
and environment from the manifests, and runs them as processes on loopback
with the ports the manifests say. Each pod gets its own loopback address
(127.0.0.x) standing for its pod IP; each volume mount a directory standing
for the volume (paths in commands and environment are mapped like mounts);
the router's pod DNS names resolve to those addresses. Then: the build Job's
completions, the shard pods' init container, servers and sync sidecars, the
router; the probes' endpoints; a query through the router; and a rollout of
a new index version (a new build Job, the version ConfigMap changed in
place) under load, with no failed query.

Usage: test_chart.py PATH/TO/fathom
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "deploy", "helm"))
from check import render  # noqa: E402
from test_grpc import stubs  # noqa: E402

import yaml  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N, DIM, SHARDS, REPLICAS = 3000, 16, 3, 2
FIRST_ID = 1 << 40
# Build v2 is of the same vectors under other ids: an answer says which build it came from.
FIRST_ID_V2 = 1 << 41


def values(version):
    v = yaml.safe_load(open(os.path.join(ROOT, "deploy/helm/fathom/ci/3x2-values.yaml")))
    v["collection"]["version"] = version
    v["build"]["ids"] = f"/input/ids-{version}.u64bin"
    # Faster polling than production: the test waits for swaps.
    v.setdefault("shard", {}).update({"syncIntervalSeconds": 1, "indexWatchMs": 300})
    return v


class Pod:
    """One pod's containers as processes: its address, its mounts."""

    def __init__(self, name, ip, spec, work, shared):
        self.name, self.ip, self.spec, self.procs = name, ip, spec, []
        self.dirs = {}
        for vol in spec.get("volumes", []):
            kind = "configMap" if "configMap" in vol else vol["name"]
            if vol["name"] in shared:
                self.dirs[vol["name"]] = shared[vol["name"]]
            elif kind == "configMap":
                self.dirs[vol["name"]] = shared[vol["configMap"]["name"]]
            else:
                self.dirs[vol["name"]] = os.path.join(work, "pods", name, vol["name"])
        # volumeClaimTemplates: the pod's own volume.
        self.dirs.setdefault("data", os.path.join(work, "pods", name, "data"))
        for d in self.dirs.values():
            os.makedirs(d, exist_ok=True)

    def mapper(self, container):
        pairs = sorted(((m["mountPath"], self.dirs[m["name"]]) for m in container.get("volumeMounts", [])), key=lambda p: -len(p[0]))

        hosts = dict(pairs)
        # One pass, longest mount first, whole path heads only.
        pattern = re.compile(r"(?<![\w/.-])(" + "|".join(re.escape(m) for m, _ in pairs) + r")(?=[/\"'\s]|$)") if pairs else None

        def fix(s):
            if pattern:
                s = pattern.sub(lambda m: hosts[m.group(1)], s)
            return s.replace("0.0.0.0", self.ip)

        return fix

    def run(self, container, env_extra=None, wait=False, dns=None):
        fix = self.mapper(container)
        # No command: the image's entrypoint, the binary under test (its own
        # path is not the manifest's and is not mapped).
        entry = [fix(c) for c in container["command"]] if "command" in container else [FATHOM]
        cmd = entry + [fix(a) for a in container.get("args", [])]
        if dns:
            cmd = [dns(c) for c in cmd]
        env = dict(os.environ, HOSTNAME=self.name, PATH=os.path.dirname(FATHOM) + ":" + os.environ["PATH"])
        for e in container.get("env", []):
            env[e["name"]] = fix(str(e["value"]))
        env.update(env_extra or {})
        log = open(os.path.join(WORK, f"{self.name}-{container['name']}.log"), "w")
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            assert p.wait(timeout=300) == 0, f"{self.name}/{container['name']} failed: see {log.name}"
        else:
            self.procs.append(p)
        return p

    def port(self, container, ref):
        if isinstance(ref, int):
            return ref
        return next(p["containerPort"] for p in container["ports"] if p["name"] == ref)


def grpc_health(addr, service):
    with grpc.insecure_channel(addr) as ch:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        return r.status == health_pb2.HealthCheckResponse.SERVING


def until(what, check, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def probe(pod, container, p):
    """Runs a probe as the kubelet would: gRPC health or HTTP GET."""
    if "grpc" in p:
        return grpc_health(f"{pod.ip}:{p['grpc']['port']}", p["grpc"].get("service", ""))
    get = p["httpGet"]
    url = f"http://{pod.ip}:{pod.port(container, get['port'])}{get['path']}"
    return urllib.request.urlopen(url, timeout=2).status == 200


def run_job(objs, pods_work, shared):
    job = next(o for o in objs if o["kind"] == "Job")
    spec = job["spec"]["template"]["spec"]
    for i in range(job["spec"]["completions"]):
        pod = Pod(f"{job['metadata']['name']}-{i}", "127.0.0.9", spec, pods_work, shared)
        pod.run(spec["containers"][0], {"JOB_COMPLETION_INDEX": str(i)}, wait=True)


def write_configmaps(objs, shared):
    for o in objs:
        if o["kind"] == "ConfigMap":
            d = shared.setdefault(o["metadata"]["name"], os.path.join(WORK, "cm", o["metadata"]["name"]))
            os.makedirs(d, exist_ok=True)
            for k, v in o["data"].items():
                # The kubelet swaps a ConfigMap's files atomically.
                with open(os.path.join(d, f".{k}.tmp"), "w") as f:
                    f.write(v)
                os.replace(os.path.join(d, f".{k}.tmp"), os.path.join(d, k))


def main():
    global FATHOM, WORK
    FATHOM = os.path.abspath(sys.argv[1])
    WORK = tempfile.mkdtemp(prefix="fathom-chart-")
    os.makedirs(os.path.join(WORK, "stubs"))
    pb, pbg = stubs(os.path.join(WORK, "stubs"))
    pods = []
    try:
        # Volumes: the input and the builds volume are shared.
        shared = {"input": os.path.join(WORK, "input"), "builds": os.path.join(WORK, "builds")}
        for d in shared.values():
            os.makedirs(d)
        subprocess.run([FATHOM, "synth", "--n", str(N), "--dim", str(DIM), "--clusters", "30",
                        "--out", os.path.join(shared["input"], "base.fbin"), "--queries", "20"], check=True, capture_output=True)
        for version, first in (("v1", FIRST_ID), ("v2", FIRST_ID_V2)):
            with open(os.path.join(shared["input"], f"ids-{version}.u64bin"), "wb") as f:
                f.write(struct.pack("<II", N, 1) + b"".join(struct.pack("<Q", first + i) for i in range(N)))
        objs = render(values("v1"))
        write_configmaps(objs, shared)
        run_job(objs, WORK, shared)
        for i in range(SHARDS):
            assert os.path.isfile(os.path.join(shared["builds"], "v1", f"shard-{i}", "manifest.json"))

        # Shard pods: init container to completion, then server and sidecar.
        ip = 10
        for sts in [o for o in objs if o["kind"] == "StatefulSet"]:
            spec = sts["spec"]["template"]["spec"]
            for ordinal in range(sts["spec"]["replicas"]):
                pod = Pod(f"{sts['metadata']['name']}-{ordinal}", f"127.0.0.{ip}", spec, WORK, shared)
                ip += 1
                for c in spec["initContainers"]:
                    pod.run(c, wait=True)
                for c in spec["containers"]:
                    pod.run(c)
                pods.append(pod)
        names = {f"{p.name}.fathom-shards.search.svc": p.ip for p in pods}

        def dns(s):
            for name, addr in names.items():
                s = s.replace(name, addr)
            return s

        router_obj = next(o for o in objs if o["kind"] == "Deployment")
        rspec = router_obj["spec"]["template"]["spec"]
        router = Pod("fathom-router-0", "127.0.0.50", rspec, WORK, shared)
        router.run(rspec["containers"][0], dns=dns)
        pods.append(router)

        # The probes, as the manifests state them.
        for pod in pods:
            for c in pod.spec["containers"]:
                for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if kind in c:
                        until(f"{pod.name} {c['name']} {kind}", lambda: probe(pod, c, c[kind]))
        rc = router.spec["containers"][0]
        addr = f"{router.ip}:{router.port(rc, 'grpc')}"
        until("router SERVING", lambda: grpc_health(addr, "fathom.v1.Fathom"))
        ch = grpc.insecure_channel(addr)
        stub = pbg.FathomStub(ch)
        info = stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=5)
        assert (info.vector_count, info.shard_count, info.dimension) == (N, SHARDS, DIM), info
        assert info.index_version == "v1,v1,v1", info.index_version
        q = pb.Vector(floats=pb.FloatVector(values=[0.1] * DIM))
        r = stub.Search(pb.SearchRequest(vector=q, k=10), timeout=5)
        assert len(r.neighbors) == 10 and all(FIRST_ID <= n.id < FIRST_ID_V2 for n in r.neighbors), r
        assert r.coverage.shards_answered == SHARDS, r.coverage
        print(f"chart: {len(pods) - 1} shard pods and a router from the manifests; query through the router OK")

        # Roll out v2: a new build Job, then the version ConfigMap changes
        # in place; sidecars copy, servers swap. Every answer covers every
        # shard and comes from one build; none fails.
        stop, failures, answered = threading.Event(), [], [0]
        builds = set()

        def load():
            while not stop.is_set():
                try:
                    r = stub.Search(pb.SearchRequest(vector=q, k=10), timeout=5)
                    answered[0] += 1
                    which = {"v2" if n.id >= FIRST_ID_V2 else "v1" for n in r.neighbors}
                    if len(which) != 1 or r.coverage.shards_answered != SHARDS:
                        failures.append(f"builds {which}, coverage {r.coverage}")
                    builds.update(which)
                except grpc.RpcError as e:
                    failures.append(f"{e.code()}: {e.details()}")

        t = threading.Thread(target=load)
        t.start()
        objs2 = render(values("v2"))
        run_job(objs2, WORK, shared)
        write_configmaps(objs2, shared)
        until("every shard on v2", lambda: stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=5).index_version == "v2,v2,v2", 120)
        # The router moves its answers to v2 at its next health round (every
        # health_interval_ms, 1 s): until then every shard still answers v1
        # (its previous index). Wait for that round, not a fixed 0.5 s.
        until("answers from v2", lambda: "v2" in builds, 10)
        time.sleep(0.2)
        stop.set()
        t.join()
        assert not failures, failures[:5]
        assert answered[0] > 10 and builds == {"v1", "v2"}, (answered[0], builds)
        print(f"chart: rolled out v2 under load: {answered[0]} queries, none failed")
    finally:
        for pod in pods:
            for p in pod.procs:
                p.terminate()
        for pod in pods:
            for p in pod.procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(WORK, ignore_errors=True)
        else:
            print("kept", WORK)


if __name__ == "__main__":
    main()
