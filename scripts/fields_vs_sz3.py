#!/usr/bin/env python3
"""Ratios of baler's error-bounded fields against SZ3 (pysz) on the shared fields, one run.

    python scripts/fields_vs_sz3.py [--baler target/release/baler]

For each shared field (the CFD frames, the monthly wind field, the COLPEX temperatures, the
sparse ash field) and each bound R in 1e-2, 1e-3, 1e-4 x the whole array's range: the ratio
of `baler compress --rel-error-bound R` (default settings: the predictor chosen by
`--use-model auto`, named in the table), SZ3's with its default algorithm and with its own
interpolation (`INTERP`), all on the same float64 array, SZ3 with the absolute bound R x range
and OpenMP off. Then the same for single 2-D frames cut from them (as `(1, h, w)` arrays) and
for a generated smooth series. Ratio = raw float64 bytes / compressed bytes. Every decoded
baler value is checked against its bound. Prints Markdown.
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("BALER_DATA_DIR", ROOT.parent / "shared" / "data"))
BOUNDS = (1e-2, 1e-3, 1e-4)
FIELDS = ["CFD_animation", "dev_um_u_monthly", "dev_colpex_theta", "dev_name_ash"]


def sz3_bytes(a, eb, algo=None):
    from pysz import sz, szAlgorithm, szConfig, szErrorBoundMode

    c = szConfig(a.shape)
    c.errorBoundMode = szErrorBoundMode.ABS
    c.absErrorBound = float(eb)
    c.openmp = False
    if algo:
        c.cmprAlgo = getattr(szAlgorithm, algo)
    return sz.compress(np.ascontiguousarray(a), c)[0].nbytes


def baler(exe, a, rel, tmp):
    src, out, back = (os.path.join(tmp, n) for n in ("in.npy", "out.baler", "back.npy"))
    np.save(src, a)
    p = subprocess.run([exe, "compress", "--input", src, "--output", out,
                        "--rel-error-bound", repr(rel)], capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"error: baler compress failed: {p.stderr.strip()}")
    said = p.stdout + p.stderr
    chosen = next((name for phrase, name in [
        ("interpolation, model-free", "interpolation"),
        ("learned field predictor", "learned"),
        ("learned within each frame", "learned in frame"),
    ] if phrase in said), "model-free")
    subprocess.run([exe, "decompress", "--input", out, "--output", back], check=True,
                   capture_output=True)
    rec = np.load(back)
    eb = rel * float(a.max() - a.min())
    if rec.shape != a.shape or not np.all(np.abs(rec - a) <= eb):
        sys.exit("error: baler decoded values outside the bound")
    return os.path.getsize(out), chosen


def row(exe, name, a, tmp, sz_shape=None):
    cells = []
    for rel in BOUNDS:
        eb = rel * float(a.max() - a.min())
        size, chosen = baler(exe, a, rel, tmp)
        plain = a.reshape(sz_shape) if sz_shape else a
        cells.append(f"{a.nbytes / size:.1f} ({chosen}) / {a.nbytes / sz3_bytes(plain, eb):.1f} / "
                     f"{a.nbytes / sz3_bytes(plain, eb, 'INTERP'):.1f}")
    print(f"| {name} | {' | '.join(cells)} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baler", default=str(ROOT / "target" / "release" / "baler"))
    args = ap.parse_args()
    missing = [f for f in FIELDS if not (DATA / f"{f}.npz").exists()]
    if missing:
        print(f"SKIPPED: {', '.join(missing)} absent from {DATA} (set BALER_DATA_DIR)")
        return
    print("baler (its predictor) / SZ3 / SZ3 INTERP, ratio of raw float64 bytes:\n")
    print("| data | R = 1e-2 | 1e-3 | 1e-4 |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {f: np.load(DATA / f"{f}.npz")["data"] for f in FIELDS}
        for f, a in arrays.items():
            row(args.baler, f"{f} {tuple(a.shape)}", a, tmp)
        for f, a in arrays.items():
            frame = a[len(a) // 2:len(a) // 2 + 1] if f == "CFD_animation" else a[:1]
            row(args.baler, f"{f}, one frame {tuple(frame.shape[1:])}", frame, tmp,
                sz_shape=frame.shape[1:])
        x = np.arange(200_000)
        noise = np.random.default_rng(1).standard_normal(len(x)).cumsum() / 100
        series = np.sin(x * 0.001) + 0.3 * np.sin(x * 0.0137) + 0.05 * noise
        row(args.baler, "smooth series (200,000)", series, tmp)


if __name__ == "__main__":
    main()
