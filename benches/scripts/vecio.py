"""The big-ann-benchmarks binary files the benchmark scripts share:
.fbin / .u8bin (i32 rows, i32 dim, then rows) and .ibin ground truth."""
import numpy as np


def read_fbin(p):
    n, d = np.fromfile(p, dtype=np.int32, count=2)
    return np.fromfile(p, dtype=np.float32, offset=8).reshape(n, d)


def read_ibin(p):
    n, k = np.fromfile(p, dtype=np.int32, count=2)
    return np.fromfile(p, dtype=np.int32, offset=8).reshape(n, k)


def write_bin(path, x, dtype=np.float32):
    """Rows of `x` as .fbin (float32) or .u8bin (uint8)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    with open(path, "wb") as f:
        np.array(x.shape, dtype=np.int32).tofile(f)
        x.tofile(f)


def recall(found, gt, k=10):
    return float(np.mean([len(set(f[:k]) & set(g[:k])) / k for f, g in zip(found, gt)]))
