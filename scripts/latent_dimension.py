#!/usr/bin/env python3
"""How many numbers per row a table needs: a linear yardstick for the fixed-rate latent count.

Usage: python scripts/latent_dimension.py [TABLE.npz ...] [--latents 8,10,12,...]
       (default: examples/data/hzz.npz, and ../shared/data/dev_delphes_ttbar.npz when present)

For each table it finds the discrete columns as `baler train --exact-columns auto` does (at
most 64 distinct finite values, and at most one per 8 rows), which the fixed-rate stream codes
exactly (error 0), standardizes the other columns, and reconstructs them from their first k
principal components (the best linear code of k numbers in the least-squares sense, fitted
on the table itself, codes unquantized). It prints, per k, the variance those components
explain and each column's max |error| / range summarized as the median over all columns (the
exact ones at 0) and the worst column: the figures `baler evaluate` reports for a fixed-rate
stream. An autoencoder can beat a linear code, but a table whose variance spreads evenly over
its components has no few directions to keep.
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("BALER_DATA_DIR", os.path.join(os.path.dirname(ROOT), "shared", "data"))


def discrete(column, rows):
    values = np.unique(column[np.isfinite(column)])
    return len(values) <= 64 and len(values) <= max(1, rows // 8)


def study(path, latents):
    with np.load(path) as z:
        x = np.asarray(z["data"], dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    rows, cols = x.shape
    exact = [c for c in range(cols) if discrete(x[:, c], rows)]
    cont = [c for c in range(cols) if c not in exact]
    y = x[:, cont]
    mean, spread = y.mean(axis=0), y.std(axis=0)
    spread[spread == 0] = 1
    z = (y - mean) / spread
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    explained = np.cumsum(s**2) / np.sum(s**2)
    span = x.max(axis=0) - x.min(axis=0)
    span[span == 0] = 1
    print(f"\n{os.path.basename(path)}: {rows} rows x {cols} columns, {len(exact)} discrete "
          f"(coded exactly), {len(cont)} continuous")
    print("| numbers per row (k) | variance explained | median column max/range | worst column |")
    print("|---:|---:|---:|---:|")
    first_median_10 = None
    for k in sorted(set(latents + list(range(1, len(cont) + 1)))):
        if k > len(cont):
            break
        back = (z @ vt[:k].T @ vt[:k]) * spread + mean
        err = np.zeros(cols)
        err[cont] = np.abs(back - y).max(axis=0) / span[cont]
        median = float(np.median(err))
        if first_median_10 is None and median <= 0.10:
            first_median_10 = k
        if k in latents:
            print(f"| {k} | {100 * explained[k - 1]:.1f}% | {100 * median:.1f}% | "
                  f"{100 * err.max():.1f}% |")
    print(f"smallest k with the median column within 10% of its range: {first_median_10}")


def main(argv):
    latents = [8, 10, 12, 14, 16, 18, 20]
    paths = []
    args = iter(argv)
    for a in args:
        if a == "--latents":
            latents = [int(v) for v in next(args).split(",")]
        else:
            paths.append(a)
    if not paths:
        paths = [os.path.join(ROOT, "examples", "data", "hzz.npz")]
        ttbar = os.path.join(DATA, "dev_delphes_ttbar.npz")
        if os.path.exists(ttbar):
            paths.append(ttbar)
        else:
            print(f"skipping dev_delphes_ttbar.npz: not found in {DATA}")
    for p in paths:
        study(p, latents)


if __name__ == "__main__":
    main(sys.argv[1:])
