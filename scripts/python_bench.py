"""The Python path's speed: baler_rs.compress / decompress against SZ3 (pysz) and ZFP
(numcodecs.zfpy), same arrays, same run, one core (run it under `taskset -c 0`; baler's
blocks then run on one thread with RAYON_NUM_THREADS=1, which this script sets).

    RAYON_NUM_THREADS=1 taskset -c 0 python scripts/python_bench.py [--repeat 20]

Arrays: the shared CFD frames and the hzz events (float64), each repeated to about 24 MB, at
an absolute bound of 1e-3 x the whole array's range for every codec (one bound per array, as
a Zarr user gets from baler_rs.absolute_bound). MB/s counts the raw float64 bytes.
"""

import argparse
import os
import pathlib
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import baler_rs  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def best(f, reps=3):
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def codecs(eps):
    from numcodecs.zfpy import ZFPY
    from pysz import sz, szConfig, szErrorBoundMode

    def sz3(a):
        c = szConfig(a.shape)
        c.errorBoundMode = szErrorBoundMode.ABS
        c.absErrorBound = float(eps)
        c.openmp = False
        return (lambda: sz.compress(a, c)[0]), (lambda blob: sz.decompress(blob, a.dtype, a.shape)[0])

    def zfp(a):
        codec = ZFPY(mode=4, tolerance=float(eps))  # fixed accuracy
        return (lambda: codec.encode(a)), (lambda blob: codec.decode(blob))

    def baler(a):
        return (lambda: baler_rs.compress(a, error_bound=eps)), baler_rs.decompress

    return {"baler_rs": baler, "SZ3 (pysz)": sz3, "ZFP (numcodecs.zfpy)": zfp}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20, help="copies of hzz (CFD: half as many)")
    args = parser.parse_args()
    if not (DATA / "hzz.npz").exists():
        print(f"SKIPPED: {DATA} has no hzz.npz / CFD_animation.npz")
        return
    sets = {}
    with np.load(DATA / "CFD_animation.npz") as z:
        sets["CFD frames"] = np.ascontiguousarray(np.tile(z["data"], (args.repeat, 1, 1)))
    with np.load(DATA / "hzz.npz") as z:
        sets["hzz events"] = np.ascontiguousarray(np.tile(z["data"], (args.repeat * 2, 1)))
    print("| data | codec | ratio | compress MB/s | decompress MB/s | max error / bound |")
    print("|---|---|---:|---:|---:|---:|")
    for name, a in sets.items():
        eps = 1e-3 * float(a.max() - a.min())
        for codec, make in codecs(eps).items():
            enc, dec = make(a)
            tc, blob = best(enc)
            size = len(blob) if isinstance(blob, (bytes, bytearray)) else np.asarray(blob).nbytes
            td, back = best(lambda: dec(blob))
            back = np.asarray(back).reshape(a.shape)
            worst = float(np.max(np.abs(back - a))) / eps
            mb = a.nbytes / 1e6
            print(f"| {name} ({mb:.0f} MB) | {codec} | {a.nbytes / size:.1f} | {mb / tc:.0f} | "
                  f"{mb / td:.0f} | {worst:.3f} |")


if __name__ == "__main__":
    main()
