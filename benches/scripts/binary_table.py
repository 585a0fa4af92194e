#!/usr/bin/env python3
"""Markdown tables of the binary benchmark (benches/run.sh binary).

Usage: binary_table.py RUN_DIR SET   (SET = minilm or glove50)
"""
import json
import os
import sys


def rows(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.startswith("{")]


def main():
    run, s = sys.argv[1], sys.argv[2]
    print(f"\n**{s}: float collection, binary first-stage codes, exact rerank from disk** (`{s}-bin<u>.jsonl`)\n")
    print("| bits | max_postings | rerank | recall@10 | QPS | mean ms | p99 ms | reads/q | KiB/q | disk B/vector | index MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for u in (1, 2, 4):
        b = rows(f"{run}/{s}-bin{u}-build.json")
        for r in rows(f"{run}/{s}-bin{u}.jsonl"):
            st = r["settings"]
            disk = b[0]["disk_bytes"] / b[0]["vectors"] if b else float("nan")
            print(f"| {u} | {st['max_postings']} | {st['rerank']} | {r['recall']:.4f} | {r['qps']:.0f} | "
                  f"{r['mean_ms']:.3f} | {r['p99_ms']:.3f} | {r['reads']:.1f} | {r['bytes'] / 1024:.0f} | "
                  f"{disk:.0f} | {r['index_resident_bytes'] / 2**20:.1f} |")
    print(f"\n**{s}: binary collection (codes only, symmetric distance, no rerank)** (`{s}-enc<u>.jsonl`)\n")
    print("| bits | max_postings | recall@10 | QPS | mean ms | p99 ms | reads/q | KiB/q | disk B/vector | index MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for u in (1, 2, 4):
        b = rows(f"{run}/{s}-enc{u}-build.json")
        for r in rows(f"{run}/{s}-enc{u}.jsonl"):
            st = r["settings"]
            disk = b[0]["disk_bytes"] / b[0]["vectors"] if b else float("nan")
            print(f"| {u} | {st['max_postings']} | {r['recall']:.4f} | {r['qps']:.0f} | {r['mean_ms']:.3f} | "
                  f"{r['p99_ms']:.3f} | {r['reads']:.1f} | {r['bytes'] / 1024:.0f} | {disk:.0f} | "
                  f"{r['index_resident_bytes'] / 2**20:.1f} |")
    peers = [r for r in rows(f"{run}/{s}-faiss-binary.jsonl") if "recall" in r]
    if peers:
        print(f"\n**{s}: faiss binary indexes, 1-bit codes in RAM, numpy rerank with floats in RAM** "
              f"(`{s}-faiss-binary.jsonl`)\n")
        print("| system | nprobe / efSearch | rerank | recall@10 | QPS (batched, 1 thread) |")
        print("|---|---|---|---|---|")
        for r in peers:
            print(f"| {r['system']} | {r['param']} | {r['rerank']} | {r['recall']:.4f} | {r['qps']:.0f} |")


if __name__ == "__main__":
    main()
