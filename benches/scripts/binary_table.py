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


def fathom_table(run, title, stem, variants, with_rerank):
    """One table over `stem.format(v)` for every variant v (bits per dim)."""
    print(f"\n**{title}** (`{stem.format('<u>')}.jsonl`)\n")
    extra = "| rerank " if with_rerank else ""
    print(f"| bits | max_postings {extra}| recall@10 | QPS | mean ms | p99 ms | reads/q | KiB/q | disk B/vector | index MiB |")
    print("|---" * (10 + with_rerank) + "|")
    for u in variants:
        name = stem.format(u)
        b = rows(f"{run}/{name.split('-vs-')[0]}-build.json")
        disk = b[0]["disk_bytes"] / b[0]["vectors"] if b else float("nan")
        for r in rows(f"{run}/{name}.jsonl"):
            st = r["settings"]
            rr = f"| {st['rerank']} " if with_rerank else ""
            print(f"| {u} | {st['max_postings']} {rr}| {r['recall']:.4f} | {r['qps']:.0f} | {r['mean_ms']:.3f} | "
                  f"{r['p99_ms']:.3f} | {r['reads']:.1f} | {r['bytes'] / 1024:.0f} | {disk:.0f} | "
                  f"{r['index_resident_bytes'] / 2**20:.1f} |")


def main():
    run, s = sys.argv[1], sys.argv[2]
    fathom_table(run, f"{s}: float collection, binary first-stage codes, exact rerank from disk", s + "-bin{}",
                 (1, 2, 4), True)
    fathom_table(run, f"{s}: binary collection encoded from floats (codes only, symmetric distance, no rerank)",
                 s + "-enc{}", (1, 2, 4), False)
    for truth in ("hamming", "float"):
        fathom_table(run, f"{s}: raw 1-bit collection (the faiss codes, Hamming), recall against {truth} truth",
                     s + "-raw{}-vs-" + truth, (1,), False)
    peers = [r for r in rows(f"{run}/{s}-faiss-binary.jsonl") if "recall" in r]
    if peers:
        print(f"\n**{s}: faiss binary indexes, 1-bit codes in RAM, numpy rerank with floats in RAM** "
              f"(`{s}-faiss-binary.jsonl`; Hamming recall counts ties as hits)\n")
        print("| system | nprobe / efSearch | rerank | recall@10 (float truth) | recall@10 (Hamming truth) | QPS (batched, 1 thread) |")
        print("|---|---|---|---|---|---|")
        for r in peers:
            h = f"{r['recall_hamming']:.4f}" if "recall_hamming" in r else ""
            print(f"| {r['system']} | {r['param']} | {r['rerank']} | {r['recall']:.4f} | {h} | {r['qps']:.0f} |")


if __name__ == "__main__":
    main()
