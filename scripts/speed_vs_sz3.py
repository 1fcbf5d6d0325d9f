"""End-to-end speed against SZ3 on about 100 MB inputs, one core, one run.

    python scripts/speed_vs_sz3.py [--baler target/release/baler] [--mb 100] [--bounds 1e-2,1e-3,1e-4]

Inputs, built from the shared data and repeated to about --mb megabytes of float64:
- field: the climate-model wind field `dev_um_u_monthly` (15 x 144 x 192), its frames repeated,
  each copy scaled by its own factor in [1, 1.25); bound R x the whole array's range (baler: `--rel-error-bound R`, SZ3: ABS on the 3-D array);
- table: the collider events `hzz` (2421 x 31), its rows repeated and shuffled; bound R x each column's range
  (baler: `--rel-error-bound R`, SZ3: ABS per column, each column its own call);
- sparse field: the volcanic-ash concentrations `dev_name_ash` (3 x 214 x 584, 82% zeros), as the
  wind field (where baler's interpolation predictor is chosen).

baler is timed as the whole `baler compress` / `baler decompress` process (reading and writing
.npz included, on /dev/shm unless --tmp says otherwise), on core 0 (`taskset -c 0`, one block at a time) and on cores 0 and 1 (blocks in
parallel); SZ3 (pysz) in-process on the same arrays, OpenMP off, this script pinned to core 0.
MB/s counts the raw float64 bytes, from the best of --reps runs; "x" is baler's speed over
SZ3's on one core. Every decoded value is checked against its bound. Prints a Markdown table.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("BALER_DATA_DIR", ROOT.parent / "shared" / "data"))


def inputs(mb):
    """(name, array, per-column bound?) for the field and the table."""
    out = []

    def frames(file, what):
        field = np.load(DATA / file)["data"]
        reps = max(1, round(mb * 1e6 / field.nbytes))
        # Each copy scaled a little differently, so that no coder sees the same bytes again.
        scale = 1 + 0.25 * np.repeat(np.arange(reps) / reps, field.shape[0])[:, None, None]
        out.append((f"{what} ({reps * field.shape[0]} x {field.shape[1]} x {field.shape[2]})",
                    np.ascontiguousarray(np.tile(field, (reps, 1, 1)) * scale), False))

    frames("dev_um_u_monthly.npz", "field")
    table = np.load(DATA / "hzz.npz")["data"]
    reps = max(1, round(mb * 1e6 / table.nbytes))
    # Rows shuffled (events are independent), so that no coder sees the same run of bytes again.
    rows = np.random.default_rng(0).permutation(reps * table.shape[0])
    out.append((f"table ({reps * table.shape[0]} x {table.shape[1]})",
                np.ascontiguousarray(np.tile(table, (reps, 1))[rows]), True))
    if (DATA / "dev_name_ash.npz").exists():
        frames("dev_name_ash.npz", "sparse field")
    return out


def bounds(data, rel, per_column):
    rng = data.max(axis=0) - data.min(axis=0) if per_column else data.max() - data.min()
    return rel * rng


REPS = 3


def timed(fn):
    """Best wall time of REPS runs, and the last result."""
    best, res = float("inf"), None
    for _ in range(REPS):
        t = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t)
    return best, res


def check(data, rec, eb, who):
    if rec.shape != data.shape or not np.all(np.abs(rec.astype(np.float64) - data) <= eb):
        sys.exit(f"error: {who} decoded values outside the bound")


def baler(exe, src, rel, tmp, cores):
    stream, rec = (os.path.join(tmp, n) for n in ("out.baler", "rec.npz"))
    pin = ["taskset", "-c", cores]
    tc, p = timed(lambda: subprocess.run(pin + [exe, "compress", "--input", src, "--output", stream,
                                                "--rel-error-bound", repr(rel)],
                                         capture_output=True, text=True))
    if p.returncode:
        sys.exit(f"error: baler compress failed: {p.stderr.strip()}")
    td, p = timed(lambda: subprocess.run(pin + [exe, "decompress", "--input", stream, "--output", rec],
                                         capture_output=True, text=True))
    if p.returncode:
        sys.exit(f"error: baler decompress failed: {p.stderr.strip()}")
    with np.load(rec) as z:
        out = z["data"]
    return tc, td, os.path.getsize(stream), out


def sz3(data, eb, per_column):
    from pysz import sz, szConfig, szErrorBoundMode

    parts = [np.ascontiguousarray(data[:, j]) for j in range(data.shape[1])] if per_column else [data]
    ebs = list(eb) if per_column else [float(eb)]
    cfgs = []
    for a, e in zip(parts, ebs):
        c = szConfig(a.shape)
        c.errorBoundMode = szErrorBoundMode.ABS
        c.absErrorBound = float(e) if e > 0 else 1e-300
        c.openmp = False
        cfgs.append(c)
    tc, blobs = timed(lambda: [sz.compress(a, c)[0] for a, c in zip(parts, cfgs)])
    td, decs = timed(lambda: [sz.decompress(b, np.float64, a.shape)[0] for a, b in zip(parts, blobs)])
    rec = np.stack(decs, axis=1) if per_column else decs[0]
    return tc, td, sum(len(b) for b in blobs), rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baler", default=str(ROOT / "target" / "release" / "baler"))
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--bounds", default="1e-2,1e-3,1e-4")
    ap.add_argument("--reps", type=int, default=3, help="runs of each; the best time counts")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    ap.add_argument("--tmp", default=shm,
                    help="folder for baler's files (default /dev/shm: memory, as SZ3's arrays are)")
    args = ap.parse_args()
    global REPS
    REPS = max(1, args.reps)
    if not (DATA / "hzz.npz").exists() or not (DATA / "dev_um_u_monthly.npz").exists():
        print(f"SKIPPED: the shared data is absent from {DATA} (set BALER_DATA_DIR)")
        return
    if not shutil.which(args.baler) and not os.path.exists(args.baler):
        sys.exit(f"error: no baler binary at {args.baler} (cargo build --release -p baler-cli)")
    if not shutil.which("taskset"):
        sys.exit("error: taskset is needed to pin the processes (util-linux)")
    os.sched_setaffinity(0, {0})
    two = "0,1" if (os.cpu_count() or 1) >= 2 else "0"
    names = np.load(DATA / "hzz.npz")["names"]
    print("| data | bound x range | baler ratio | SZ3 ratio | baler compress, 1 core | 2 cores "
          "| SZ3 compress | baler decompress, 1 core | 2 cores | SZ3 decompress |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for name, data, per_column in inputs(args.mb):
            mb = data.nbytes / 1e6
            src = os.path.join(tmp, "in.npz")
            if per_column:
                np.savez(src, data=data, names=names)
            else:
                np.savez(src, data=data)
            for rel in (float(r) for r in args.bounds.split(",")):
                eb = bounds(data, rel, per_column)
                btc, btd, bsize, brec = baler(args.baler, src, rel, tmp, "0")
                check(data, brec, eb, "baler")
                del brec
                btc2, btd2, _, _ = baler(args.baler, src, rel, tmp, two)
                stc, std, ssize, srec = sz3(data, eb, per_column)
                check(data, srec, eb * (1 + 1e-12), "SZ3")
                del srec
                print(f"| {name} | {rel:g} | {data.nbytes / bsize:.1f} | {data.nbytes / ssize:.1f} "
                      f"| {mb / btc:.0f} MB/s ({stc / btc:.2f}x) | {mb / btc2:.0f} MB/s "
                      f"| {mb / stc:.0f} MB/s "
                      f"| {mb / btd:.0f} MB/s ({std / btd:.2f}x) | {mb / btd2:.0f} MB/s "
                      f"| {mb / std:.0f} MB/s |", flush=True)


if __name__ == "__main__":
    main()
