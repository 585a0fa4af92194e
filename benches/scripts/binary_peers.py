#!/usr/bin/env python3
"""faiss binary indexes on 1-bit codes of float embeddings, for the binary
benchmark: IndexBinaryIVF and IndexBinaryHNSW over sign(R (x - mean)) (the
same 1-bit code Fathom's codec makes), optional exact float rerank of the
top R Hamming candidates (numpy, vectors in RAM). Single thread, batched
queries (faiss's best case). One JSON row per setting on stdout.

With --write-bits DIR it first writes those codes as DIR/<name>.base.u8bin
and .queries.u8bin (for Fathom's raw-bit collection and `fathom gt --metric
hamming`); with --hamming-gt GT it also reports, for rows without rerank,
recall against exact Hamming neighbours, counting ties as hits (a result no
farther than the true 10th neighbour).

Usage: binary_peers.py BASE.fbin QUERIES.fbin GT.ibin [--limit N]
           [--write-bits DIR --name NAME] [--hamming-gt GT.ibin]
"""
import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import faiss  # noqa: E402
import numpy as np  # noqa: E402
from vecio import read_fbin, read_ibin, recall, write_bin  # noqa: E402

K = 10


def codes(x, mean, rot):
    return np.packbits((x - mean) @ rot.T >= 0, axis=1, bitorder="little")


def rerank(base, q, cand, depth):
    if depth <= K:
        return cand[:, :K]
    v = base[cand]  # nq x depth x d
    d = ((v - q[:, None, :]) ** 2).sum(-1)
    d[cand < 0] = np.inf
    order = np.argsort(d, axis=1)[:, :K]
    return np.take_along_axis(cand, order, axis=1)


def hamming(a, b):
    return np.unpackbits(np.bitwise_xor(a, b), axis=-1).sum(-1)


def run(name, index, params, base, q, qc, gt, set_param, kth=None):
    for p in params:
        set_param(p)
        for depth in (K, 40, 100):
            dt = float("inf")
            for _ in range(3):  # best of three: the machine is shared
                t = time.perf_counter()
                dist, cand = index.search(qc, depth)
                found = rerank(base, q, cand, depth)
                dt = min(dt, time.perf_counter() - t)
            row = dict(system=name, param=p, rerank=depth if depth > K else 0, recall=recall(found, gt),
                       qps=len(q) / dt, code_bytes=qc.shape[1], queries=len(q))
            if kth is not None and depth == K:
                row["recall_hamming"] = float(np.mean(dist[:, :K] <= kth[:, None]))
            print(json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("queries")
    ap.add_argument("gt")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--write-bits")
    ap.add_argument("--name", default="bits")
    ap.add_argument("--hamming-gt")
    ap.add_argument("--write-only", action="store_true", help="write the codes (--write-bits) and stop")
    a = ap.parse_args()
    faiss.omp_set_num_threads(1)
    base = read_fbin(a.base)
    q = read_fbin(a.queries)[: a.limit]
    gt = read_ibin(a.gt)[: a.limit]
    d = base.shape[1]
    mean = base.mean(0)
    rot, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((d, d)))
    bc, qc = codes(base, mean, rot), codes(q, mean, rot)
    bits = bc.shape[1] * 8
    if a.write_bits:
        allq = codes(read_fbin(a.queries), mean, rot)
        for part, c in (("base", bc), ("queries", allq)):
            write_bin(os.path.join(a.write_bits, f"{a.name}.{part}.u8bin"), c, np.uint8)
        if a.write_only:
            return
    kth = None
    if a.hamming_gt:
        hgt = read_ibin(a.hamming_gt)[: a.limit]
        kth = hamming(qc, bc[hgt[:, K - 1]])

    nlist = 1024
    ivf = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)
    t = time.perf_counter()
    ivf.train(bc)
    ivf.add(bc)
    print(json.dumps(dict(system="faiss-binary-ivf", build_seconds=time.perf_counter() - t, nlist=nlist)), flush=True)
    run("faiss-binary-ivf", ivf, [4, 8, 16, 32, 64], base, q, qc, gt, lambda p: setattr(ivf, "nprobe", p), kth)

    hnsw = faiss.IndexBinaryHNSW(bits, 32)
    t = time.perf_counter()
    hnsw.add(bc)
    print(json.dumps(dict(system="faiss-binary-hnsw", build_seconds=time.perf_counter() - t, M=32)), flush=True)
    run("faiss-binary-hnsw", hnsw, [16, 32, 64, 128, 256], base, q, qc, gt,
        lambda p: setattr(hnsw.hnsw, "efSearch", p), kth)


if __name__ == "__main__":
    main()
