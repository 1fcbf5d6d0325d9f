"""The numcodecs codec and the Zarr v2 and v3 codecs."""

import numcodecs
import numpy as np
import pytest
import zarr

import baler_rs
from baler_rs.zarr3 import BalerCodec


def test_the_registry_finds_the_codec_by_its_id():
    codec = numcodecs.get_codec({"id": "baler", "rel_error_bound": 1e-3})
    assert isinstance(codec, baler_rs.Baler)
    assert codec.get_config() == {"id": "baler", "rel_error_bound": 1e-3}
    config = dict(codec.get_config())
    config.pop("id")
    again = baler_rs.Baler.from_config(config)
    assert again.get_config() == codec.get_config()
    assert numcodecs.get_codec(codec.get_config()).get_config() == codec.get_config()
    field = numcodecs.get_codec({"id": "baler", "error_bound": 0.5, "field": True})
    assert field.get_config() == {"id": "baler", "error_bound": 0.5, "field": True}
    with pytest.raises(ValueError):
        baler_rs.Baler()
    with pytest.raises(ValueError):
        baler_rs.Baler(error_bound=1, rel_error_bound=1)


def test_codec_encode_and_decode():
    codec = baler_rs.Baler(error_bound=0.01)
    x = np.cumsum(np.random.default_rng(1).normal(size=(50, 40)), axis=1)
    y = codec.decode(codec.encode(x))
    assert np.all(np.abs(y - x) <= 0.01)
    out = np.empty_like(x)
    codec.decode(codec.encode(x), out=out)
    assert np.array_equal(out, y)


def smooth(shape):
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum(np.sin(0.07 * (i + 1) * g) for i, g in enumerate(grids)) * 20


@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_zarr_format_2_compressor(dtype):
    x = smooth((64, 90)).astype(dtype)
    z = zarr.create_array(
        store={}, shape=x.shape, chunks=(32, 45), dtype=dtype, zarr_format=2,
        compressors=baler_rs.Baler(error_bound=1e-3),
    )
    z[:] = x
    assert np.all(np.abs(z[:] - x) <= 1e-3)


@pytest.mark.parametrize("dtype", ["f4", "f8", "i2", "i4"])
def test_zarr_format_3_array_to_bytes_codec(tmp_path, dtype):
    x = smooth((6, 40, 50))
    x = np.round(x).astype(dtype) if dtype.startswith("i") else x.astype(dtype)
    eps = 1e-2 if dtype.startswith("f") else 0.5
    path = tmp_path / "a.zarr"
    z = zarr.create_array(store=str(path), shape=x.shape, chunks=(3, 20, 25), dtype=dtype,
                          serializer=BalerCodec(error_bound=eps))
    z[:] = x
    # Reopened from disk: the codec is found by its name through the entry point.
    back = zarr.open_array(str(path), mode="r")
    assert back.metadata.to_dict()["codecs"][0]["name"] == "baler"
    assert np.all(np.abs(back[:].astype(np.float64) - x) <= eps)


def test_one_bound_over_a_chunked_array():
    x = smooth((100, 100))
    x[:50] *= 100  # chunks with very different ranges
    eps = baler_rs.absolute_bound(x, 1e-3)
    z = zarr.create_array(store={}, shape=x.shape, chunks=(25, 100), dtype="f8",
                          serializer=BalerCodec(error_bound=eps))
    z[:] = x
    assert np.all(np.abs(z[:] - x) <= eps)
