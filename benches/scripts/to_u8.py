"""Streams an .fbin to .u8bin with one affine map for every coordinate
(x -> round((x - lo) * 255 / (hi - lo)), clamped), lo and hi the 0.1% and
99.9% quantiles of a sample of the base: how the u8 billion-scale sets
(BIGANN, SPACEV) store their vectors. Queries get the same map.

usage: to_u8.py BASE.fbin QUERIES.fbin OUT_PREFIX  -> OUT_PREFIX.u8bin, OUT_PREFIX.queries.u8bin
"""
import sys

import numpy as np


def convert(src, dst, lo, hi, chunk=1 << 20):
    n, d = np.fromfile(src, dtype=np.int32, count=2)
    x = np.memmap(src, dtype=np.float32, mode="r", offset=8, shape=(n, d))
    with open(dst, "wb") as f:
        np.array([n, d], dtype=np.int32).tofile(f)
        for s in range(0, n, chunk):
            y = np.rint((x[s : s + chunk] - lo) * (255.0 / (hi - lo)))
            np.clip(y, 0, 255).astype(np.uint8).tofile(f)


def main():
    base, queries, out = sys.argv[1:4]
    n, d = np.fromfile(base, dtype=np.int32, count=2)
    x = np.memmap(base, dtype=np.float32, mode="r", offset=8, shape=(n, d))
    sample = np.asarray(x[:: max(1, n // 100_000)])
    lo, hi = np.quantile(sample, [0.001, 0.999])
    convert(base, out + ".u8bin", lo, hi)
    convert(queries, out + ".queries.u8bin", lo, hi)
    print(f"{out}.u8bin: {n} x {d}, map [{lo:.3f}, {hi:.3f}] -> [0, 255]")


if __name__ == "__main__":
    main()
