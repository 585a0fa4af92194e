#!/usr/bin/env python3
"""Markdown tables from a benches/runs/<run>/ directory (for RESULTS.md).

Usage: summarize.py RUN_DIR
"""
import glob
import json
import os
import sys


def rows(path):
    out = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def mib(b):
    return f"{b / 2**20:.1f}"


def fathom_table(path, title):
    rs = [r for r in rows(path) if "recall" in r]
    if not rs:
        return
    print(f"\n**{title}** (`{os.path.basename(path)}`)\n")
    print("| max_postings | rerank | threads | recall@10 | QPS | mean ms | p99 ms | postings | reads/q | KiB/q | IOPS | MB/s | index MiB | RSS MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rs:
        s = r["settings"]
        iops = r["reads"] * r["qps"]
        mbs = r["bytes"] * r["qps"] / 1e6
        print(f"| {s['max_postings']} | {s['rerank']} | {r['threads']} | {r['recall']:.4f} | {r['qps']:.0f} | {r['mean_ms']:.3f} | {r['p99_ms']:.3f} | "
              f"{r['postings']:.1f} | {r['reads']:.1f} | {r['bytes'] / 1024:.0f} | {iops:.0f} | {mbs:.0f} | {mib(r['index_resident_bytes'])} | {mib(r['process_rss_bytes'])} |")


def peer_table(path):
    rs = rows(path)
    meta = [r for r in rs if "recall" not in r]
    rs = [r for r in rs if "recall" in r]
    if not rs:
        return
    print(f"\n**{rs[0]['system']}** (`{os.path.basename(path)}`) {json.dumps(meta[0]) if meta else ''}\n")
    print("| settings | recall@10 | QPS | mean ms | p99 ms | RSS MiB | RSS over baseline MiB | extra |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rs:
        extra = r.get("stats") or ""
        if isinstance(extra, dict):
            extra = ", ".join(f"{k} {v:.1f}" for k, v in extra.items())
        print(f"| {json.dumps(r['settings'])} | {r['recall']:.4f} | {r['qps']:.0f} | {r['mean_ms']:.3f} | {r['p99_ms']:.3f} | "
              f"{mib(r['rss_bytes'])} | {mib(r.get('rss_over_baseline_bytes', 0))} | {extra} |")


def frontier_qps(rs, target):
    """Best QPS among measured points with recall >= target."""
    ok = [r["qps"] for r in rs if r["recall"] >= target]
    return max(ok) if ok else None


def interpolated_qps(rs, target):
    """A peer's QPS at `target` on the line between its measured points
    around it (generous to the peer: it may have no such setting); its
    fastest point when every point is above the target."""
    pts = sorted((r["recall"], r["qps"]) for r in rs)
    if not pts or pts[-1][0] < target:
        return None
    if pts[0][0] >= target:
        return max(q for rc, q in pts if rc >= target)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 + (q1 - q0) * (target - r0) / max(r1 - r0, 1e-9)
    return None


def ratios(d, name):
    """Fathom (single thread, its best measured point at >= each recall)
    against each peer of the same set, as ratios. `SET+variant` names a
    non-default Fathom configuration on SET (e.g. glove50+mem)."""
    peer_set, _, variant = name.partition("+")
    fathom = [r for f in glob.glob(os.path.join(d, f"{name}-fathom-*.jsonl")) if "cold" not in f and "disk" not in f
              for r in rows(f) if "recall" in r and r.get("threads") == 1]
    if not fathom:
        return
    index = f"the {variant} configuration" if variant else "defaults' index"
    print(f"\n**{name}: Fathom (1 thread, {index}) against each peer, QPS at equal recall@10**\n")
    print("| recall@10 | Fathom QPS | peer | peer QPS (interpolated) | ratio |")
    print("| ---: | ---: | --- | ---: | ---: |")
    for target in (0.90, 0.95, 0.98):
        fq = frontier_qps(fathom, target)
        for peer in ("diskann", "faiss-ivf", "hnsw"):
            f = os.path.join(d, f"{peer_set}-{peer}.jsonl")
            if not os.path.exists(f) or fq is None:
                continue
            pq = interpolated_qps([r for r in rows(f) if "recall" in r], target)
            if pq:
                print(f"| {target:.2f} | {fq:.0f} | {peer} | {pq:.0f} | {fq / pq:.2f}x |")


def main():
    d = sys.argv[1]
    for f in sorted(glob.glob(os.path.join(d, "*.json"))):
        print(f"\n`{os.path.basename(f)}`: `{open(f).read().strip()}`")
    for f in sorted(glob.glob(os.path.join(d, "*fathom*.jsonl")) + glob.glob(os.path.join(d, "*inproc*.jsonl")) + glob.glob(os.path.join(d, "*remote*.jsonl"))):
        fathom_table(f, os.path.basename(f).replace(".jsonl", ""))
    for f in sorted(glob.glob(os.path.join(d, "*-diskann.jsonl")) + glob.glob(os.path.join(d, "*-faiss-ivf.jsonl"))
                    + glob.glob(os.path.join(d, "*-hnsw.jsonl"))):
        peer_table(f)
    for name in sorted({os.path.basename(f).split("-fathom")[0] for f in glob.glob(os.path.join(d, "*-fathom-*.jsonl"))}):
        ratios(d, name)
    fio = os.path.join(d, "fio.jsonl")
    if os.path.exists(fio):
        print("\n**fio** random reads, O_DIRECT, io_uring, QD 32\n")
        for r in rows(fio):
            print(f"- {r['bs']}: {r['iops']:.0f} IOPS, {r['bw_bytes'] / 1e6:.0f} MB/s")


if __name__ == "__main__":
    main()
