"""Compression at cluster scale: a dask.distributed cluster of 2 worker processes writes a
chunked array to Zarr through the codec in parallel and reads it back on the workers."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

import baler_rs
from baler_rs.zarr3 import BalerCodec


def test_local_cluster_writes_and_reads_zarr_within_the_bound(tmp_path):
    path = str(tmp_path / "field.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        # 8 chunks of 250,000 float64 values (2 MB each; production chunks are 100s of MB).
        x = da.random.RandomState(0).normal(size=(40, 500, 400), chunks=(5, 500, 400)).cumsum(axis=2)
        eps = 1e-2
        z = zarr.create_array(store=path, shape=x.shape, chunks=(5, 500, 400), dtype="f8",
                              serializer=BalerCodec(error_bound=eps))
        da.to_zarr(x, z, compute=True)
        back = da.from_zarr(path)
        worst = float(da.max(da.abs(back - x)).compute())
        assert worst <= eps
        assert len(client.scheduler_info()["workers"]) == 2
    raw = 40 * 500 * 400 * 8
    stored = sum(f.stat().st_size for f in (tmp_path / "field.zarr").rglob("*") if f.is_file())
    assert stored * 3 < raw
