"""Compress a chunked array into Zarr on a Dask cluster, read it back, check the bound.

    python examples/dask_zarr.py [--workers 2] [--store field.zarr]

Runs on a LocalCluster here. On a batch system the same code runs on its nodes: replace the
LocalCluster with a dask-jobqueue cluster, e.g.

    from dask_jobqueue import SLURMCluster      # or HTCondorCluster, PBSCluster, ...
    cluster = SLURMCluster(cores=8, memory="16GB", walltime="01:00:00")
    cluster.scale(jobs=10)

Every chunk is compressed on the worker that computes it; nothing is gathered on the client.
"""

import argparse
import shutil
import time

import dask.array as da
import numpy as np
import zarr
from distributed import Client, LocalCluster

import baler_rs
from baler_rs.zarr3 import BalerCodec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store", default="dask-example.zarr")
    parser.add_argument("--rel-error-bound", type=float, default=1e-3)
    args = parser.parse_args()

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster):
        # A smooth 3-D field (time x 1000 x 1000, float64): 16 chunks of 8 MB.
        shape, chunks = (16, 1000, 1000), (1, 1000, 1000)
        t, y, x = da.meshgrid(da.arange(shape[0]), da.arange(shape[1]), da.arange(shape[2]), indexing="ij")
        field = (da.sin(0.01 * x + 0.1 * t) * da.cos(0.013 * y) * 100).rechunk(chunks)
        field = field + da.random.RandomState(0).normal(scale=0.01, size=shape, chunks=chunks)

        # One bound for the whole array: R x its range (a relative bound per chunk would use
        # each chunk's own range).
        lo, hi = da.compute(field.min(), field.max())
        eps = args.rel_error_bound * float(hi - lo)
        shutil.rmtree(args.store, ignore_errors=True)
        z = zarr.create_array(store=args.store, shape=shape, chunks=chunks, dtype="f8",
                              serializer=BalerCodec(error_bound=eps))
        started = time.time()
        da.to_zarr(field, z)
        written = time.time() - started

        back = da.from_zarr(args.store)
        worst = float(da.max(da.abs(back - field)).compute())
        raw = np.prod(shape) * 8
        stored = sum(f.stat().st_size for f in __import__("pathlib").Path(args.store).rglob("*") if f.is_file())
        print(f"{args.workers} workers: {raw / 1e6:.0f} MB -> {stored / 1e6:.2f} MB in Zarr "
              f"(ratio {raw / stored:.1f}), written in {written:.1f} s")
        print(f"bound {eps:.4g} ({args.rel_error_bound} x range), worst error {worst:.4g}: "
              f"{'within' if worst <= eps else 'OUTSIDE'} the bound")
        assert worst <= eps


if __name__ == "__main__":
    main()
