"""Per-value relative precision on event tables: baler's pointwise bound against what the LHC
experiments do (NanoAOD-style rounding of the float32 mantissa to N bits, then LZMA -9e or
zstd -19 per column) and against SZ3 given, per column, the tightest absolute bound that keeps
the same promise. One run, Markdown out:

    python scripts/compare_pointwise.py [--bits 10,12] [--events 50000]

Tables: the shipped hzz events, the synthetic event table (scripts/synthetic_events.py,
written to a temporary file), and the event tables of ../shared/data when present. Ratio =
raw float64 bytes / compressed bytes (all columns). The promise at N bits is
|x' - x| <= 2^-(N+1) |x| for every value; integer-valued columns are kept exactly by every
method (NanoAOD stores them as integers). "worst" is the largest |x' - x| / |x| measured over
the non-zero values, "zeros" whether every zero came back as zero.

Notes: NanoAOD's rounding starts from float32, which adds up to 2^-24 relative error before
the mantissa is rounded. SZ3 (pysz, absolute mode, each column alone as a 1-D array) gets
bound R x the column's smallest non-zero |x| (and 0.49 for integer columns); it does not keep
zeros exactly zero, and it is reported as given.
"""

import argparse
import lzma
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

import baler_rs

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def round_mantissa(x32, bits):
    """NanoAOD's rounding of float32 values to `bits` mantissa bits (round half up on the
    dropped bits, as ROOT's and NanoAOD's helpers do)."""
    u = x32.view(np.uint32).astype(np.uint64)
    drop = 23 - bits
    u = (u + (1 << (drop - 1))) & ~np.uint64((1 << drop) - 1)
    return u.astype(np.uint32).view(np.float32)


def integer_columns(x):
    return [bool(np.all(x[:, c] == np.round(x[:, c])) and np.all(np.abs(x[:, c]) < 2**31))
            for c in range(x.shape[1])]


def nanoaod(x, bits, ints):
    """Per column: integers as int32, floats rounded; then LZMA -9 and zstd -19."""
    import zstandard

    zstd = zstandard.ZstdCompressor(level=19)
    sizes = {"lzma": 0, "zstd": 0}
    back = np.empty_like(x)
    for c in range(x.shape[1]):
        if ints[c]:
            col = x[:, c].astype(np.int32)
            back[:, c] = col
        else:
            col = round_mantissa(x[:, c].astype(np.float32), bits)
            back[:, c] = col
        raw = col.tobytes()
        # Raw LZMA2 at -9 extreme: the strongest LZMA setting (no .xz container per column).
        filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
        sizes["lzma"] += len(lzma.compress(raw, format=lzma.FORMAT_RAW, filters=filters))
        sizes["zstd"] += len(zstd.compress(raw))
    return sizes, back


def sz3(x, r, ints):
    try:
        from pysz import sz, szConfig, szErrorBoundMode
    except ImportError:
        return None, None
    total, back = 0, np.empty_like(x)
    for c in range(x.shape[1]):
        col = np.ascontiguousarray(x[:, c])
        nz = np.abs(col[col != 0])
        eps = 0.49 if ints[c] else (r * nz.min() if nz.size else 1e-300)
        conf = szConfig(col.shape)
        conf.errorBoundMode = szErrorBoundMode.ABS
        conf.absErrorBound = float(eps)
        conf.openmp = False
        blob = sz.compress(col, conf)[0]
        total += len(blob)
        back[:, c] = sz.decompress(blob, col.dtype, col.shape)[0]
        if ints[c]:
            back[:, c] = np.round(back[:, c])
    return total, back


def promise(x, y):
    nz = x != 0
    worst = float((np.abs(y - x)[nz] / np.abs(x[nz])).max()) if nz.any() else 0.0
    return worst, bool(np.all(y[~nz] == 0))


def tables(events):
    with np.load(ROOT / "examples" / "data" / "hzz.npz") as d:
        yield "hzz", d["data"].astype(np.float64), [str(n) for n in d["names"]]
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "synthetic.npz"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "synthetic_events.py"), str(out),
                        str(events)], check=True, capture_output=True)
        with np.load(out) as d:
            yield "synthetic events", d["data"], [str(n) for n in d["names"]]
    for name in ("dev_delphes_ttbar", "dev_allpix_timepix"):
        path = SHARED / f"{name}.npz"
        if path.exists():
            with np.load(path) as d:
                yield name, d["data"], [str(n) for n in d["names"]]
        else:
            print(f"SKIPPED: {path} is missing", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bits", default="10,12")
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    print("| table | shape | bits | baler | NanoAOD + LZMA -9e | NanoAOD + zstd -19 | SZ3, tightest abs per column "
          "| baler / best of LZMA, zstd | worst |x'-x|/|x|: baler, NanoAOD, SZ3 | zeros kept: baler, SZ3 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, x, names in tables(args.events):
        ints = integer_columns(x)
        for bits in (int(b) for b in args.bits.split(",")):
            r = 2.0 ** -(bits + 1)
            stream = baler_rs.compress(x, mantissa_bits=bits, names=names)
            y = baler_rs.decompress(stream)
            worst, zeros = promise(x, y)
            assert worst <= r, (name, bits, worst)
            # Integer columns exactly, as promised.
            for c in np.flatnonzero(ints):
                assert np.array_equal(x[:, c], y[:, c]), (name, names[c])
            sizes, rounded = nanoaod(x, bits, ints)
            nano_worst, _ = promise(x, rounded.astype(np.float64))
            sz_bytes, sz_back = sz3(x, r, ints)
            raw = x.nbytes
            ratio = raw / len(stream)
            best = max(raw / sizes["lzma"], raw / sizes["zstd"])
            if sz_bytes is None:
                sz_cell, sz_worst, sz_zeros = "pysz not installed", "-", "-"
            else:
                w, z = promise(x, sz_back)
                sz_cell, sz_worst, sz_zeros = f"{raw / sz_bytes:.2f}", f"{w:.2e}", "yes" if z else "no"
            print(f"| {name} | {x.shape[0]} x {x.shape[1]} | {bits} | {ratio:.2f} | {raw / sizes['lzma']:.2f} "
                  f"| {raw / sizes['zstd']:.2f} | {sz_cell} | {ratio / best:.2f}x "
                  f"| {worst:.2e}, {nano_worst:.2e}, {sz_worst} | {'yes' if zeros else 'no'}, {sz_zeros} |",
                  flush=True)


if __name__ == "__main__":
    main()
