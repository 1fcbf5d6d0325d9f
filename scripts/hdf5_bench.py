"""HDF5 datasets written through baler's filter plugin against hdf5plugin's SZ3 and ZFP
filters (and lossless zstd), same data, same chunks, same absolute bound, one run:

    RAYON_NUM_THREADS=1 taskset -c 0 python scripts/hdf5_bench.py [--markdown]

For each shared data set (`../shared/data`), each codec writes the whole array as a chunked
float64 dataset with `h5py`; the ratio is raw bytes / the dataset's storage size (chunk bytes,
without HDF5's metadata), the error is measured on the values read back, and the MB/s are raw
float64 bytes over the time of one `create_dataset` (write) and one full read. The bound is
1e-2, 1e-3 or 1e-4 x the whole array's range, absolute, for every codec: SZ3 in its absolute
mode, ZFP in fixed-accuracy mode (`hdf5plugin.Zfp(accuracy=...)`).
"""

import argparse
import os
import pathlib
import tempfile
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import h5py  # noqa: E402
import hdf5plugin  # noqa: E402
import numpy as np  # noqa: E402

import baler_rs  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"

# name, chunks (None: whole frames, 16 at a time; tables: 4096 rows of every column)
SETS = [
    ("CFD_animation", "field"),
    ("dev_um_u_monthly", "field"),
    ("dev_colpex_theta", "field"),
    ("dev_name_ash", "field"),
    ("hzz", "table"),
    ("dev_delphes_ttbar", "table"),
]


def chunks_of(shape, kind):
    if kind == "table":
        return (min(shape[0], 4096), shape[1])
    return (min(shape[0], 16),) + tuple(shape[1:])


def codecs(eps):
    return {
        "baler": baler_rs.hdf5_filter(error_bound=eps, field=False),
        "SZ3": hdf5plugin.SZ3(absolute=eps),
        "ZFP": hdf5plugin.Zfp(accuracy=eps),
        "zstd (lossless)": hdf5plugin.Zstd(clevel=19),
    }


def measure(path, name, a, chunks, kwargs):
    with h5py.File(path, "a") as f:
        t = time.perf_counter()
        d = f.create_dataset(name, data=a, chunks=chunks, **kwargs)
        f.flush()
        write = time.perf_counter() - t
        stored = d.id.get_storage_size()
    with h5py.File(path) as f:
        t = time.perf_counter()
        back = f[name][...]
        read = time.perf_counter() - t
    return stored, write, read, back


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", action="store_true", help="one Markdown table")
    parser.add_argument("--bounds", default="1e-2,1e-3,1e-4")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"SKIPPED: no shared data at {DATA}")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "bench.h5"
        for set_name, kind in SETS:
            source = DATA / f"{set_name}.npz"
            if not source.exists():
                print(f"SKIPPED: {source} is missing")
                continue
            a = np.load(source)["data"].astype(np.float64)
            chunks = chunks_of(a.shape, kind)
            span = float(a.max() - a.min())
            for rel in (float(b) for b in args.bounds.split(",")):
                eps = rel * span
                for codec, kwargs in codecs(eps).items():
                    if codec.startswith("zstd") and rel != float(args.bounds.split(",")[0]):
                        continue
                    name = f"{set_name}_{rel:g}_{codec.split()[0]}"
                    stored, write, read, back = measure(path, name, a, chunks, kwargs)
                    err = float(np.abs(back - a).max())
                    mb = a.nbytes / 1e6
                    rows.append(
                        (set_name, str(a.shape), f"{rel:g}" if not codec.startswith("zstd") else "0",
                         codec, a.nbytes / stored, err / eps if eps else 0.0, mb / write, mb / read)
                    )
                    print(
                        f"{set_name:18} {rel:>6g} {codec:16} ratio {a.nbytes / stored:8.1f}  "
                        f"max err/bound {err / eps:6.3f}  write {mb / write:7.1f} MB/s  "
                        f"read {mb / read:7.1f} MB/s",
                        flush=True,
                    )
    if args.markdown:
        print()
        print("| data | shape | bound x range | filter | ratio | max error / bound | write MB/s | read MB/s |")
        print("|---|---|---:|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1f} | "
                  f"{'-' if r[2] == '0' else f'{r[5]:.3f}'} | {r[6]:.0f} | {r[7]:.0f} |")


if __name__ == "__main__":
    main()
