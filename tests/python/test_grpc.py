#!/usr/bin/env python3
"""A client no one here wrote: Python grpcio with stubs generated from
proto/fathom.proto by grpcio-tools. Calls Search, BatchSearch, GetIndexInfo
and the standard health check against `fathom serve`, checks the answers
equal the Rust client's (`fathom search`), and parses /metrics with the
Prometheus text parser, checking the counters move with traffic.

Usage: test_grpc.py PATH/TO/fathom
"""
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_tools import protoc
from prometheus_client.parser import text_string_to_metric_families

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stubs(out):
    rc = protoc.main(["protoc", f"-I{ROOT}/proto", f"--python_out={out}", f"--grpc_python_out={out}", "fathom.proto"])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, out)
    import fathom_pb2
    import fathom_pb2_grpc

    return fathom_pb2, fathom_pb2_grpc


def read_fbin(path):
    with open(path, "rb") as f:
        n, d = struct.unpack("<ii", f.read(8))
        data = struct.unpack(f"<{n * d}f", f.read(4 * n * d))
    return [list(data[i * d:(i + 1) * d]) for i in range(n)]


def metric_samples(url):
    text = urllib.request.urlopen(url).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def main():
    fathom = sys.argv[1]
    work = tempfile.mkdtemp(prefix="fathom-py-")
    pb, pbg = stubs(work)
    base = os.path.join(work, "base.fbin")
    subprocess.run([fathom, "synth", "--n", "20000", "--dim", "24", "--clusters", "50", "--queries", "20", "--out", base], check=True)
    idx = os.path.join(work, "idx")
    subprocess.run([fathom, "build", "--input", base, "--metric", "l2", "--out", idx, "--quiet"], check=True)
    srv, ch, grpc_addr, metrics_addr = serve(fathom, idx)
    try:
        services = ProtoReflectionDescriptorDatabase(ch).get_services()
        assert "fathom.v1.Fathom" in services and "grpc.health.v1.Health" in services, services
        stub = pbg.FathomStub(ch)
        info = stub.GetIndexInfo(pb.GetIndexInfoRequest())
        assert (info.dimension, info.vector_count, info.metric) == (24, 20000, "l2"), info
        before = metric_samples(f"http://{metrics_addr}/metrics")

        queries = read_fbin(os.path.join(work, "base.queries.fbin"))
        py = []
        for q in queries:
            r = stub.Search(pb.SearchRequest(vector=pb.Vector(floats=pb.FloatVector(values=q)), k=10))
            py.append([n.id for n in r.neighbors])
        batch = stub.BatchSearch(pb.BatchSearchRequest(vectors=[pb.Vector(floats=pb.FloatVector(values=q)) for q in queries], k=10))
        assert [[n.id for n in r.neighbors] for r in batch.results] == py, "batch differs from single searches"

        rust = subprocess.run([fathom, "search", "--addr", f"http://{grpc_addr}", "--query", os.path.join(work, "base.queries.fbin"), "--k", "10"],
                              check=True, capture_output=True, text=True).stdout.splitlines()
        assert [json.loads(l)["ids"] for l in rust] == py, "Python and Rust clients disagree"

        try:
            stub.Search(pb.SearchRequest(vector=pb.Vector(floats=pb.FloatVector(values=[1.0])), k=10))
            raise AssertionError("wrong dimension accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
            assert "dimension" in e.details(), e.details()

        after = metric_samples(f"http://{metrics_addr}/metrics")
        key = ("fathom_requests_total", (("code", "OK"), ("method", "Search")))
        moved = after.get(key, 0) - before.get(key, 0)
        assert moved >= 2 * len(queries), f"Search OK counter moved by {moved}"
        assert after[("fathom_reads_total", ())] > before.get(("fathom_reads_total", ()), 0)
        bad = ("fathom_requests_total", (("code", "INVALID_ARGUMENT"), ("method", "Search")))
        assert after.get(bad, 0) >= 1
        # Bytes that are not a SearchRequest, and a message over the size
        # limit: the codes the API promises, counted in the metrics.
        raw = ch.unary_unary("/fathom.v1.Fathom/Search", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        for payload, want in ((b"\xff\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT), (b"\x0a" + b"\x00" * (17 << 20), grpc.StatusCode.RESOURCE_EXHAUSTED)):
            try:
                raw(payload, timeout=10)
                raise AssertionError("a malformed request was answered")
            except grpc.RpcError as e:
                assert e.code() == want, (e.code(), e.details())
        wire = metric_samples(f"http://{metrics_addr}/metrics")
        exhausted = ("fathom_requests_total", (("code", "RESOURCE_EXHAUSTED"), ("method", "Search")))
        assert wire.get(bad, 0) >= after.get(bad, 0) + 1 and wire.get(exhausted, 0) >= 1, "wire errors are counted"
        print(f"python grpc client OK: {len(queries)} queries agree with the Rust client; metrics parse and move")
    finally:
        srv.terminate()
        code = srv.wait(timeout=15)
    assert code == 0, f"server exited {code} on SIGTERM, expected 0"
    try:
        check_raw_bits(fathom, work, pb, pbg)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def serve(fathom, idx):
    """Starts `fathom serve` and waits until health says SERVING."""
    srv = subprocess.Popen([fathom, "serve", "--index", idx, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
                           stderr=subprocess.PIPE, text=True)
    line = ""
    while "fathom serving on" not in line:
        line = srv.stderr.readline()
        assert line, "server exited"
    grpc_addr, metrics_addr = re.search(r"serving on (\S+) \(metrics (\S+)\)", line).groups()
    ch = grpc.insecure_channel(grpc_addr)
    health = health_pb2_grpc.HealthStub(ch)
    for _ in range(100):
        st = health.Check(health_pb2.HealthCheckRequest(service="fathom.v1.Fathom")).status
        if st == health_pb2.HealthCheckResponse.SERVING:
            break
        time.sleep(0.1)
    assert st == health_pb2.HealthCheckResponse.SERVING, st
    return srv, ch, grpc_addr, metrics_addr


def check_raw_bits(fathom, work, pb, pbg):
    """A Hamming collection of 128-bit vectors written here: packed BITS
    queries find their own row at distance 0 and report true Hamming
    distances; float queries and GetCodec are refused."""
    rng = random.Random(5)
    n, width = 2000, 16
    rows = [bytes(rng.getrandbits(8) for _ in range(width)) for _ in range(n)]
    path = os.path.join(work, "bits.u8bin")
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", n, width))
        f.write(b"".join(rows))
    idx = os.path.join(work, "bits-idx")
    subprocess.run([fathom, "build", "--input", path, "--bits", "128", "--out", idx, "--quiet"], check=True)
    srv, ch, _, _ = serve(fathom, idx)
    try:
        stub = pbg.FathomStub(ch)
        info = stub.GetIndexInfo(pb.GetIndexInfoRequest())
        assert (info.metric, info.code, info.code_bytes) == ("hamming", "bits", 16), info
        for i in (0, 7, 1999):
            packed = pb.PackedVector(element_type=pb.ELEMENT_TYPE_BITS, data=rows[i])
            r = stub.Search(pb.SearchRequest(vector=pb.Vector(packed=packed), k=10))
            assert (r.neighbors[0].id, r.neighbors[0].distance) == (i, 0.0), r.neighbors[0]
            for nb in r.neighbors:
                want = bin(int.from_bytes(rows[i], "little") ^ int.from_bytes(rows[nb.id], "little")).count("1")
                assert nb.distance == want, (nb, want)
        for call in (lambda: stub.Search(pb.SearchRequest(vector=pb.Vector(floats=pb.FloatVector(values=[0.5] * 128)), k=5)),
                     lambda: stub.GetCodec(pb.GetCodecRequest())):
            try:
                call()
                raise AssertionError("accepted")
            except grpc.RpcError as e:
                assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION), e.code()
                assert "packed bits" in e.details(), e.details()
        print("python grpc client OK: packed BITS queries on a Hamming collection")
    finally:
        srv.terminate()
        assert srv.wait(timeout=15) == 0


if __name__ == "__main__":
    main()
