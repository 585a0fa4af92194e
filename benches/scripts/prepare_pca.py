#!/usr/bin/env python3
"""A lower-dimensional real set from a real one: the base's principal
components (fitted on the base, as a deployment reducing its embeddings
would), base and queries projected onto the first D and normalised.

Usage: prepare_pca.py DATA_DIR SET D   (reads SET.base.fbin / SET.queries.fbin,
writes SET-pcaD.base.fbin / SET-pcaD.queries.fbin)
"""
import os
import sys

import numpy as np
from vecio import read_fbin, write_bin


def main():
    data, name, dim = sys.argv[1], sys.argv[2], int(sys.argv[3])
    base = read_fbin(os.path.join(data, f"{name}.base.fbin")).astype(np.float64)
    queries = read_fbin(os.path.join(data, f"{name}.queries.fbin")).astype(np.float64)
    mean = base.mean(axis=0)
    # Right singular vectors of the centred base: its principal axes.
    _, _, vt = np.linalg.svd(base - mean, full_matrices=False)
    axes = vt[:dim].T
    for part, x in (("base", base), ("queries", queries)):
        y = (x - mean) @ axes
        y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
        write_bin(os.path.join(data, f"{name}-pca{dim}.{part}.fbin"), y)


if __name__ == "__main__":
    main()
