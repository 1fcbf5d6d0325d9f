"""The pointwise relative bound and bounds per column from Python: every value within R|x|,
integers exact, a per-column dict honoured column by column, the same bytes as the command,
and through the HDF5 filter."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import baler_rs
from conftest import HZZ


def hzz():
    with np.load(HZZ) as d:
        return d["data"], [str(n) for n in d["names"]]


def check_pointwise(x, y, r):
    x, y = np.asarray(x, float), np.asarray(y, float)
    nz = x != 0
    assert (np.abs(y - x)[nz] <= r * np.abs(x[nz])).all()
    assert (np.signbit(x) == np.signbit(y))[np.isfinite(x)].all()
    assert (y[~nz] == 0).all()


@pytest.mark.parametrize("bits", [7, 10, 12, 16])
def test_mantissa_bits_keep_every_value_within_r_of_itself(bits):
    x, names = hzz()
    y = baler_rs.decompress(baler_rs.compress(x, mantissa_bits=bits, names=names))
    check_pointwise(x, y, 2.0 ** -(bits + 1))
    ints = [c for c in range(x.shape[1]) if np.all(x[:, c] == np.round(x[:, c]))]
    assert ints, "hzz has count columns"
    np.testing.assert_array_equal(x[:, ints], y[:, ints])


def test_hostile_values_and_both_float_types():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4000) * np.exp(rng.uniform(-300, 300, 4000) * np.log(10))
    x[:8] = [0.0, -0.0, 5e-324, -1e-310, np.inf, -np.inf, np.nan, 1.7e308]
    for r in (1e-1, 1e-4, 1e-7):
        y = baler_rs.decompress(baler_rs.compress(x, pointwise_rel_bound=r))
        finite = np.isfinite(x)
        check_pointwise(x[finite], y[finite], r)
        assert np.isnan(y[6]) and y[4] == np.inf and y[5] == -np.inf
        assert np.signbit(y[1]) and y[1] == 0
    f = x[np.isfinite(x) & (np.abs(x) < 3e38)].astype(np.float32).reshape(-1, 4)[:900]
    g = baler_rs.decompress(baler_rs.compress(f, mantissa_bits=10))
    assert g.dtype == np.float32
    check_pointwise(f, g, 2.0**-11)


def test_column_bounds_are_honoured_column_by_column():
    x, names = hzz()
    spec = {
        "default": {"mantissa_bits": 10},
        "columns": {"MET_px": {"absolute": 0.25}, "Muon1_E": {"pointwise": 1e-6},
                    "EventWeight": {"relative": 1e-3}, "3": "lossless"},
    }
    y = baler_rs.decompress(baler_rs.compress(x, column_bounds=spec, names=names))
    col = {n: i for i, n in enumerate(names)}
    assert np.abs(y[:, col["MET_px"]] - x[:, col["MET_px"]]).max() <= 0.25
    check_pointwise(x[:, col["Muon1_E"]], y[:, col["Muon1_E"]], 1e-6)
    w = x[:, col["EventWeight"]]
    assert np.abs(y[:, col["EventWeight"]] - w).max() <= 1e-3 * (w.max() - w.min())
    np.testing.assert_array_equal(y[:, 3], x[:, 3])
    rest = [i for i in range(len(names)) if i not in (0, 2, 3, col["Muon1_E"])]
    check_pointwise(x[:, rest], y[:, rest], 2.0**-11)
    # The JSON text works as well, and bad specifications raise ValueError with the reason.
    assert baler_rs.compress(x, column_bounds=json.dumps(spec), names=names)
    with pytest.raises(ValueError, match="no column is named"):
        baler_rs.compress(x, mantissa_bits=10, column_bounds={"columns": {"nope": "lossless"}})
    with pytest.raises(ValueError, match="default bound once"):
        baler_rs.compress(x, mantissa_bits=10, column_bounds=spec, names=names)
    with pytest.raises(ValueError, match="one of"):
        baler_rs.compress(x, mantissa_bits=10, error_bound=1.0)
    with pytest.raises(ValueError, match="pointwise bound"):
        baler_rs.compress(x, pointwise_rel_bound=1.5)


def test_the_command_writes_the_same_bytes(tmp_path, baler_cli):
    x, names = hzz()
    spec = tmp_path / "bounds.json"
    spec.write_text(json.dumps({"columns": {"NJet": "lossless", "MET_py": {"absolute": 0.5}}}))
    out = tmp_path / "p.baler"
    run = subprocess.run([str(baler_cli), "compress", "--input", str(HZZ), "--output", str(out),
                          "--mantissa-bits", "12", "--column-bounds", str(spec)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    ours = baler_rs.compress(x, mantissa_bits=12, names=names,
                             column_bounds=json.loads(spec.read_text()))
    assert out.read_bytes() == ours


def test_the_hdf5_filter_keeps_a_pointwise_bound(tmp_path):
    try:
        import h5py
    except ImportError:
        if os.environ.get("BALER_REQUIRE_HDF5") == "1":
            raise
        pytest.skip("SKIPPED: h5py is not installed")
    x, _ = hzz()
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f.create_dataset("events", data=x, chunks=(1000, x.shape[1]),
                         **baler_rs.hdf5_filter(mantissa_bits=10))
        f.create_dataset("f32", data=x.astype(np.float32), chunks=(500, x.shape[1]),
                         **baler_rs.hdf5_filter(pointwise_rel_bound=1e-3))
    env = dict(os.environ, HDF5_PLUGIN_PATH=baler_rs.hdf5_plugin_dir())
    script = ("import h5py, numpy as np, sys\n"
              "f = h5py.File(sys.argv[1]); np.save(sys.argv[2], f['events'][...]); "
              "np.save(sys.argv[3], f['f32'][...])\n")
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "p.h5"), str(a), str(b)],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    check_pointwise(x, np.load(a), 2.0**-11)
    check_pointwise(x.astype(np.float32), np.load(b), 1e-3)
    with pytest.raises(ValueError):
        baler_rs.hdf5_filter(mantissa_bits=10, error_bound=1.0)
    with pytest.raises(ValueError):
        baler_rs.hdf5_filter(pointwise_rel_bound=1.0)


def test_the_zarr_and_numcodecs_codecs_take_the_pointwise_bound():
    zarr = pytest.importorskip("zarr")
    import numcodecs

    from baler_rs.zarr3 import BalerCodec

    x, _ = hzz()
    codec = numcodecs.get_codec({"id": "baler", "mantissa_bits": 10})
    assert codec.get_config() == {"id": "baler", "mantissa_bits": 10}
    check_pointwise(x, codec.decode(codec.encode(x)), 2.0**-11)
    z = zarr.create_array(store={}, shape=x.shape, chunks=(1000, x.shape[1]), dtype="f8",
                          serializer=BalerCodec(pointwise_rel_bound=1e-4))
    z[...] = x
    check_pointwise(x, z[...], 1e-4)
    assert BalerCodec.from_dict(BalerCodec(mantissa_bits=12).to_dict()) == BalerCodec(mantissa_bits=12)
    with pytest.raises(ValueError):
        BalerCodec(mantissa_bits=12, error_bound=1.0)
