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
    print("| max_postings | threads | recall@10 | QPS | mean ms | p99 ms | postings | reads/q | KiB/q | IOPS | MB/s | index MiB | RSS MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rs:
        s = r["settings"]
        iops = r["reads"] * r["qps"]
        mbs = r["bytes"] * r["qps"] / 1e6
        print(f"| {s['max_postings']} | {r['threads']} | {r['recall']:.4f} | {r['qps']:.0f} | {r['mean_ms']:.3f} | {r['p99_ms']:.3f} | "
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


def main():
    d = sys.argv[1]
    for f in sorted(glob.glob(os.path.join(d, "*.json"))):
        print(f"\n`{os.path.basename(f)}`: `{open(f).read().strip()}`")
    for f in sorted(glob.glob(os.path.join(d, "*fathom*.jsonl")) + glob.glob(os.path.join(d, "*inproc*.jsonl")) + glob.glob(os.path.join(d, "*remote*.jsonl"))):
        fathom_table(f, os.path.basename(f).replace(".jsonl", ""))
    for f in sorted(glob.glob(os.path.join(d, "glove-*.jsonl"))):
        if "fathom" not in f:
            peer_table(f)
    fio = os.path.join(d, "fio.jsonl")
    if os.path.exists(fio):
        print("\n**fio** random reads, O_DIRECT, io_uring, QD 32\n")
        for r in rows(fio):
            print(f"- {r['bs']}: {r['iops']:.0f} IOPS, {r['bw_bytes'] / 1e6:.0f} MB/s")


if __name__ == "__main__":
    main()
