#!/usr/bin/env python3
"""Ratios from a before_after.sh run: for each round, each build's best QPS
at or above recall 0.90 and 0.95 (its grid's points), DiskANN's QPS there
(interpolated between its L points, same round), their ratio, and after's
QPS over before's; the median and range over rounds. Also the default
point's recall, both builds' resident bytes, and latency at the best points.

Usage: before_after.py OUT_DIR SET
"""
import json
import statistics
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def best(points, target):
    """Highest QPS among points with recall >= target (None if none)."""
    ok = [p for p in points if p["recall"] >= target]
    return max(ok, key=lambda p: p["qps"]) if ok else None


def interpolated(points, target):
    """QPS where the sorted-by-recall curve crosses target (linear)."""
    pts = sorted((p["recall"], p["qps"]) for p in points)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 + (q1 - q0) * (target - r0) / max(r1 - r0, 1e-12)
    return None


def spread(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    return f"{statistics.median(xs):.2f}x ({min(xs):.2f}-{max(xs):.2f})"


def main():
    out, name = sys.argv[1:3]
    fathom = [r for r in rows(f"{out}/{name}-fathom.jsonl") if "recall" in r]
    disk = [r for r in rows(f"{out}/{name}-diskann.jsonl") if "recall" in r]
    rounds = sorted({r["round"] for r in fathom})
    print(f"### {name}: {len(rounds)} interleaved rounds\n")
    print("| target | before / DiskANN | after / DiskANN | after / before |")
    print("| ---: | ---: | ---: | ---: |")
    for target in (0.90, 0.95):
        vs = {"before": [], "after": []}
        ab = []
        for r in rounds:
            d = interpolated([p for p in disk if p["round"] == r], target)
            got = {}
            for who in ("before", "after"):
                b = best([p for p in fathom if p["round"] == r and p["who"] == who], target)
                got[who] = b["qps"] if b else None
                vs[who].append(got[who] / d if got[who] and d else None)
            if got["before"] and got["after"]:
                ab.append(got["after"] / got["before"])
        print(f"| {target:.2f} | {spread(vs['before'])} | {spread(vs['after'])} | {spread(ab)} |")
    print("\nPer round, best point at or above 0.95 (QPS, mean / p99 ms, reads/q) and DiskANN's QPS there:\n")
    print("| round | before | after | DiskANN |")
    print("| ---: | --- | --- | ---: |")
    for r in rounds:
        cells = []
        for who in ("before", "after"):
            b = best([p for p in fathom if p["round"] == r and p["who"] == who], 0.95)
            s = b and b["settings"]
            cells.append(
                f"{b['qps']:,.0f} at {b['recall']:.3f} (mp {s['max_postings']}, rr {s['rerank']}; "
                f"{b['mean_ms']:.3f} / {b['p99_ms']:.3f}; {b['reads']:.1f})" if b else "none")
        d = interpolated([p for p in disk if p["round"] == r], 0.95)
        print(f"| {r} | {cells[0]} | {cells[1]} | {d:,.0f} |" if d else f"| {r} | {cells[0]} | {cells[1]} | n/a |")
    res = {who: next((p.get("index_resident_bytes") for p in fathom if p["who"] == who), None) for who in ("before", "after")}
    rss = [p.get("rss_over_baseline_bytes") for p in disk]
    print(f"\nResident: before {res['before'] / 2**20:.1f} MiB, after {res['after'] / 2**20:.1f} MiB; "
          f"DiskANN over its baseline {max(x for x in rss if x is not None) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
