#!/usr/bin/env python3
"""Fixed-rate fidelity, column by column: a trained model's reconstruction against SZ3 (pysz)
and baler's own error-bounded mode at the same total size, in one run.

Usage: python scripts/fixed_rate_vs_sz3.py [TABLE.npz] [-- extra `baler train` arguments]
       (default: examples/data/hzz.npz and the default model)

It trains the model (`baler train`), compresses and decompresses the table, then finds the
range-relative bound R (one R for every column, each column bounded by R x its range) at which
SZ3 fits in the same bytes as the fixed-rate stream plus its model, and again in the stream's
bytes alone (what counts when one model serves many files). baler's error-bounded mode at the
same sizes comes from `baler evaluate --compressed`. It prints per column NRMSE (RMSE / range)
and max |error| / range for each, and the worst and median columns. Without pysz it says so and
shows baler's error-bounded mode only.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BALER = os.path.join(ROOT, "target", "release", "baler")


def run(*args):
    return subprocess.run([BALER, *args], check=True, capture_output=True, text=True).stdout


def sz3_at(data, target):
    """SZ3 (ABS, one call per column, bound R x that column's range) at the finest R whose
    streams fit in `target` bytes; returns (R, bytes, reconstruction)."""
    from pysz import sz, szConfig, szErrorBoundMode

    ranges = data.max(axis=0) - data.min(axis=0)
    columns = [np.ascontiguousarray(data[:, j]) for j in range(data.shape[1])]

    def code(rel):
        comps, recs = [], []
        for a, r in zip(columns, ranges):
            cfg = szConfig(a.shape)
            cfg.errorBoundMode = szErrorBoundMode.ABS
            cfg.absErrorBound = float(max(rel * r, 1e-300))
            cfg.openmp = False
            c = sz.compress(a, cfg)[0]
            comps.append(c)
            recs.append(sz.decompress(c, np.float64, a.shape)[0])
        return sum(c.nbytes for c in comps), np.stack(recs, axis=1)

    fine, coarse = np.log(1e-6), np.log(0.5)
    best = (np.exp(coarse), *code(np.exp(coarse)))
    for _ in range(20):
        middle = 0.5 * (fine + coarse)
        size, rec = code(np.exp(middle))
        if size <= target:
            coarse, best = middle, (np.exp(middle), size, rec)
        else:
            fine = middle
    return best


def column_errors(data, rec):
    ranges = data.max(axis=0) - data.min(axis=0)
    ranges = np.where(ranges > 0, ranges, 1.0)
    err = rec - data
    return np.sqrt((err**2).mean(axis=0)) / ranges, np.abs(err).max(axis=0) / ranges


def main():
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[: args.index("--")] if "--" in args else args
    path = args[0] if args else os.path.join(ROOT, "examples", "data", "hzz.npz")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "baler-cli"], cwd=ROOT, check=True)
    z = np.load(path)
    data = z["data"].astype(np.float64)
    names = [str(n) for n in z["names"]] if "names" in z else [f"column_{j}" for j in range(data.shape[1])]
    with tempfile.TemporaryDirectory() as tmp:
        model, stream, out = (os.path.join(tmp, f) for f in ("m.blob", "s.baler", "r.npz"))
        print(run("train", "--input", path, "--output", model, *extra).strip().splitlines()[-2])
        run("compress", "--model", model, "--input", path, "--output", stream)
        run("decompress", "--model", model, "--input", stream, "--output", out)
        view = json.loads(run("evaluate", "--original", path, "--reconstructed", out, "--json",
                              "--compressed", stream, "--model", model))["same_size"]
        rec = np.load(out)["data"].astype(np.float64)
    total, alone = view["total_bytes"], view["stream_bytes"]
    print(f"{path}: {data.shape[0]} rows x {data.shape[1]} columns, {data.nbytes} raw bytes; "
          f"fixed rate {alone} + model {view['model_bytes']} = {total} bytes "
          f"(ratio {data.nbytes / alone:.2f}, {data.nbytes / total:.2f} with the model)")
    rows = {"fixed rate": column_errors(data, rec)}
    legend = []
    for run_info in view["bounded"]:
        key = "bounded_" + run_info["size"].replace(" ", "_")
        legend.append(f"baler EB {run_info['size']}: R {run_info['bound']:.3g}, {run_info['bytes']} B")
        rows[f"baler EB, {run_info['size']}"] = (
            np.array([c[key]["nrmse"] for c in view["columns"]]),
            np.array([c[key]["max_relative_to_range"] for c in view["columns"]]))
    try:
        for label, target in (("with the model", total), ("stream alone", alone)):
            rel, size, sz_rec = sz3_at(data, target)
            legend.append(f"SZ3 {label}: R {rel:.3g}, {size} B")
            rows[f"SZ3, {label}"] = column_errors(data, sz_rec)
    except ImportError:
        print("pysz is not installed: no SZ3 rows (pip install pysz)")
    print("same size, one range-relative bound R for every column: " + "; ".join(legend))
    width = max(len(n) for n in names)
    print(f"\n{'':{width}}  " + "  ".join(f"{k[:34]:>34}" for k in rows))
    print(f"{'column':{width}}  " + "  ".join(f"{'NRMSE':>16} {'max/range':>17}" for _ in rows))
    for j, name in enumerate(names):
        cells = "  ".join(f"{100 * n[j]:>15.3f}% {100 * m[j]:>16.3f}%" for n, m in rows.values())
        print(f"{name:{width}}  {cells}")
    for what, f in (("worst", np.max), ("median", np.median)):
        cells = "  ".join(f"{100 * f(n):>15.3f}% {100 * f(m):>16.3f}%" for n, m in rows.values())
        print(f"{what:{width}}  {cells}")


if __name__ == "__main__":
    main()
