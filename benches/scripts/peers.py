#!/usr/bin/env python3
"""Peers measured in the same run as Fathom: DiskANN's disk index (PyPI
diskannpy-rust), faiss IVF-Flat and hnswlib (in RAM). One JSON object per
line per search setting: recall, qps, mean_ms, p99_ms, rss bytes, and the
settings. Single-threaded search. Each system runs in its own process so
the RSS is its own.

Usage: peers.py SYSTEM BASE.fbin QUERIES.fbin GT.ibin WORKDIR [--limit N]
SYSTEM: diskann | faiss-ivf | hnsw
"""
import json
import os
import sys
import time

import numpy as np
from vecio import read_fbin, read_ibin, recall


def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def timed(search, qs):
    lat, out = [], []
    t0 = time.perf_counter()
    for q in qs:
        t = time.perf_counter()
        out.append(search(q))
        lat.append((time.perf_counter() - t) * 1e3)
    wall = time.perf_counter() - t0
    lat.sort()
    return out, len(qs) / wall, sum(lat) / len(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]


BASELINE_RSS = 0


def emit(system, settings, found, gt, qps, mean, p99, extra=None):
    now = rss()
    row = dict(system=system, settings=settings, recall=recall(found, gt), qps=qps, mean_ms=mean, p99_ms=p99,
               rss_bytes=now, rss_over_baseline_bytes=now - BASELINE_RSS)
    row.update(extra or {})
    print(json.dumps(row), flush=True)


def main():
    system, base, queries, gtp, work = sys.argv[1:6]
    limit = int(sys.argv[sys.argv.index("--limit") + 1]) if "--limit" in sys.argv else None
    os.makedirs(work, exist_ok=True)
    global BASELINE_RSS
    qs = read_fbin(queries)[:limit]
    gt = read_ibin(gtp)[: len(qs)]
    import importlib
    importlib.import_module({"diskann": "diskannpy", "faiss-ivf": "faiss", "hnsw": "hnswlib"}[system])
    # Python, numpy, the peer's module and the queries: not the index.
    BASELINE_RSS = rss()
    k = 10
    if system == "diskann":
        import diskannpy

        idx_dir = os.path.join(work, "diskann")
        t = time.time()
        if not os.path.exists(os.path.join(idx_dir, "ann_disk.index")):
            os.makedirs(idx_dir, exist_ok=True)
            x = read_fbin(base)
            pq = int(os.environ.get("DISKANN_PQ_CHUNKS", "25"))
            diskannpy.build_disk_index(x, "l2", idx_dir, complexity=100, graph_degree=64,
                                       build_memory_maximum=4.0, num_threads=0, num_of_pq_chunks=pq)
            del x
            print(json.dumps(dict(system=system, build_seconds=time.time() - t, pq_chunks=pq)), flush=True)
        ix = diskannpy.StaticDiskIndex(idx_dir, num_threads=1, beam_width=4, num_nodes_to_cache=0,
                                       distance_metric="l2", vector_dtype=np.float32)
        for L in [10, 20, 30, 40, 60, 80, 120, 160, 240]:
            found, qps, mean, p99 = timed(lambda q: ix.search(q, k, L).identifiers, qs)
            b = ix.batch_search(qs[:500], k, L, 1)
            st = getattr(b, "search_stats", None) or (b[2] if len(b) > 2 else {})
            ios = {key: float(np.mean(v)) for key, v in st.items()} if isinstance(st, dict) else None
            emit(system, dict(L=L, beam_width=4), found, gt, qps, mean, p99, dict(stats=ios))
    elif system == "faiss-ivf":
        import faiss

        faiss.omp_set_num_threads(1)
        x = read_fbin(base)
        nlist = int(4 * np.sqrt(len(x)))
        quant = faiss.IndexFlatL2(x.shape[1])
        ix = faiss.IndexIVFFlat(quant, x.shape[1], nlist)
        t = time.time()
        ix.train(x[np.random.default_rng(0).choice(len(x), min(len(x), 100 * nlist), replace=False)])
        ix.add(x)
        print(json.dumps(dict(system=system, build_seconds=time.time() - t, nlist=nlist)), flush=True)
        del x
        for nprobe in [4, 8, 16, 32, 64, 128]:
            ix.nprobe = nprobe
            found, qps, mean, p99 = timed(lambda q: ix.search(q[None, :], k)[1][0], qs)
            emit(system, dict(nlist=nlist, nprobe=nprobe), found, gt, qps, mean, p99)
    elif system == "hnsw":
        import hnswlib

        x = read_fbin(base)
        ix = hnswlib.Index(space="l2", dim=x.shape[1])
        t = time.time()
        ix.init_index(max_elements=len(x), ef_construction=200, M=16)
        ix.add_items(x, num_threads=2)
        print(json.dumps(dict(system=system, build_seconds=time.time() - t)), flush=True)
        del x
        ix.set_num_threads(1)
        for ef in [10, 20, 40, 80, 160]:
            ix.set_ef(ef)
            found, qps, mean, p99 = timed(lambda q: ix.knn_query(q, k)[0][0], qs)
            emit(system, dict(M=16, ef=ef), found, gt, qps, mean, p99)
    else:
        sys.exit(f"unknown system {system}")


if __name__ == "__main__":
    main()
