"""The HDF5 filter plugin through h5py, netCDF4-python and h5dump.

Each file is written in this process and read back in a new one that has nothing but
HDF5_PLUGIN_PATH (no baler_rs import), as any HDF5 program would read it. Without h5py (or
netCDF4, or h5dump) the tests that need it skip and say so; BALER_REQUIRE_HDF5=1 (CI) makes a
missing one a failure.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import baler_rs

REQUIRE = os.environ.get("BALER_REQUIRE_HDF5") == "1"


def need(module):
    try:
        return __import__(module)
    except ImportError:
        if REQUIRE:
            raise
        pytest.skip(f"SKIPPED: {module} is not installed (pip install {module})")


def reader_env():
    """The environment of a fresh reader: only the plugin folder on HDF5_PLUGIN_PATH."""
    env = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
    env["HDF5_PLUGIN_PATH"] = baler_rs.hdf5_plugin_dir()
    return env


def read_in_new_process(path, name, module="h5py"):
    """The dataset `name` of `path`, read by a new Python process (h5py or netCDF4)."""
    script = {
        "h5py": "import h5py, numpy as np, sys\n"
        "with h5py.File(sys.argv[1]) as f: a = f[sys.argv[2]][...]\n"
        "np.save(sys.argv[3], a)\n",
        "netCDF4": "import netCDF4, numpy as np, sys\n"
        "d = netCDF4.Dataset(sys.argv[1]); v = d.variables[sys.argv[2]]; v.set_auto_mask(False)\n"
        "np.save(sys.argv[3], v[...])\n",
    }[module]
    out = str(path) + f".{name}.npy"
    run = subprocess.run(
        [sys.executable, "-c", script, str(path), name, out],
        env=reader_env(),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return np.load(out)


def field(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 6, shape[-1])
    base = np.sin(t) * 30 + np.cumsum(rng.normal(size=shape), axis=0) * 0.1
    return base.astype(dtype)


def table(rows, seed=0):
    """An event-like table: momenta, an energy built from them, a count, a flag."""
    rng = np.random.default_rng(seed)
    px, py, pz = (rng.normal(0, 40, rows) for _ in range(3))
    e = np.sqrt(px**2 + py**2 + pz**2 + 0.1057**2)
    n = rng.poisson(3, rows).astype(float)
    flag = (rng.random(rows) < 0.3).astype(float)
    return np.stack([px, py, pz, e, n, flag], axis=1)


# shape, chunks, dtype, bound kind, field flag: several chunks, and a partial last one in each.
CASES = [
    ((1000, 6), (300, 6), "f8", "table", False),
    ((1000, 6), (256, 6), "f4", "table", False),
    ((40, 90, 70), (16, 32, 70), "f4", "field", False),
    ((130, 200), (64, 64), "f8", "field", True),
    ((5000,), (1024,), ">f4", "field", False),
    ((600, 50), (128, 50), ">f8", "field", True),
]


@pytest.mark.parametrize("shape,chunks,dtype,kind,as_image", CASES)
@pytest.mark.parametrize("bound", ["absolute", "relative"])
def test_a_dataset_reads_back_within_the_bound_in_a_new_process(
    tmp_path, shape, chunks, dtype, kind, as_image, bound
):
    h5py = need("h5py")
    x = table(shape[0]).astype(dtype) if kind == "table" else field(shape, dtype)
    path = tmp_path / "x.h5"
    if bound == "absolute":
        eps = baler_rs.absolute_bound(x, 1e-3)
        kwargs = baler_rs.hdf5_filter(error_bound=eps, field=as_image)
    else:
        kwargs = baler_rs.hdf5_filter(rel_error_bound=1e-3, field=as_image)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=x, chunks=chunks, **kwargs)
    y = read_in_new_process(path, "x")
    assert y.shape == x.shape and y.dtype == x.dtype
    err = np.abs(x.astype(float) - y.astype(float))
    if bound == "absolute":
        assert err.max() <= eps, (err.max(), eps)
    else:
        # 1e-3 x each chunk's range (per column for 2-D table chunks); HDF5 pads a partial
        # last chunk with the fill value 0, which widens that chunk's range.
        for index in np.ndindex(*[-(-s // c) for s, c in zip(shape, chunks)]):
            sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunks))
            part = x[sl].astype(float)
            padded = part.shape != tuple(chunks)
            axis = 0 if kind == "table" and not as_image else None
            lo = np.minimum(part.min(axis=axis), 0) if padded else part.min(axis=axis)
            hi = np.maximum(part.max(axis=axis), 0) if padded else part.max(axis=axis)
            limit = 1e-3 * (hi - lo)
            assert (err[sl] <= limit * (1 + 1e-12)).all(), (index, err[sl].max(), limit)
    with h5py.File(path) as f:
        stored = f["x"].id.get_storage_size()
    assert stored * 2 < x.nbytes, f"{stored} bytes stored for {x.nbytes}"


def test_each_stored_chunk_is_a_baler_stream(tmp_path):
    """The bytes of a chunk are the library's stream: baler_rs.decompress reads them."""
    h5py = need("h5py")
    x = field((300, 40), "f4")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        d = f.create_dataset("x", data=x, chunks=(100, 40), **baler_rs.hdf5_filter(error_bound=0.01))
        mask, raw = d.id.read_direct_chunk((100, 0))
    assert mask == 0
    chunk = baler_rs.decompress(raw)
    assert chunk.shape == (100, 40) and chunk.dtype == np.float32
    assert np.abs(chunk - x[100:200]).max() <= 0.01


def test_integer_datasets_keep_their_counts(tmp_path):
    h5py = need("h5py")
    rng = np.random.default_rng(1)
    adc = (rng.normal(800, 40, size=(200, 64)) + np.arange(64) * 3).astype("i2")
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("adc", data=adc, chunks=(64, 64), **baler_rs.hdf5_filter(error_bound=0.5))
        f.create_dataset("wide", data=adc.astype("i4") * 1000, chunks=(50, 64),
                         **baler_rs.hdf5_filter(error_bound=2.0))
    np.testing.assert_array_equal(read_in_new_process(tmp_path / "a.h5", "adc"), adc)
    wide = read_in_new_process(tmp_path / "a.h5", "wide")
    assert wide.dtype == np.int32 and np.abs(wide - adc.astype("i4") * 1000).max() <= 2


def test_netcdf4_reads_a_variable_written_through_the_filter(tmp_path):
    h5py = need("h5py")
    need("netCDF4")
    x = field((48, 30, 40), "f4")
    path = tmp_path / "t.nc"
    # A netCDF-4 file as h5py writes one: dimension scales attached to the variable.
    with h5py.File(path, "w") as f:
        for name, n in zip(("time", "lat", "lon"), x.shape):
            f.create_dataset(name, data=np.arange(n, dtype="f8"))
            f[name].make_scale(name)
        v = f.create_dataset("temperature", data=x, chunks=(12, 30, 40),
                             **baler_rs.hdf5_filter(error_bound=0.05))
        for i, name in enumerate(("time", "lat", "lon")):
            v.dims[i].attach_scale(f[name])
    y = read_in_new_process(path, "temperature", module="netCDF4")
    assert y.shape == x.shape
    assert np.abs(y - x).max() <= 0.05


def test_h5dump_prints_values_within_the_bound(tmp_path):
    h5py = need("h5py")
    h5dump = shutil.which("h5dump")
    if h5dump is None:
        if REQUIRE:
            pytest.fail("h5dump is not installed (Debian: hdf5-tools)")
        pytest.skip("SKIPPED: h5dump is not installed (Debian: hdf5-tools)")
    x = field((50, 20), "f8")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("x", data=x, chunks=(16, 20), **baler_rs.hdf5_filter(error_bound=1e-4))
    run = subprocess.run(
        [h5dump, "-m", "%.17g", "-d", "/x", "-y", "-w", "0", str(tmp_path / "d.h5")],
        env=reader_env(),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    body = run.stdout.split("DATA {", 1)[1].rsplit("}", 3)[0]
    printed = np.array([float(v) for v in body.replace(",", " ").split()])
    assert printed.size == x.size
    assert np.abs(printed - x.ravel()).max() <= 1e-4
    # Without the plugin the data cannot be read: the filter really is in the file.
    env = reader_env()
    env["HDF5_PLUGIN_PATH"] = str(tmp_path / "nowhere")
    run = subprocess.run([h5dump, "-d", "/x", str(tmp_path / "d.h5")], env=env,
                         capture_output=True, text=True)
    assert run.returncode != 0


def test_a_damaged_chunk_is_a_read_error_not_wrong_values(tmp_path):
    h5py = need("h5py")
    x = field((400, 32), "f4")
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("x", data=x, chunks=(100, 32), **baler_rs.hdf5_filter(error_bound=1e-3))
        _, raw = d.id.read_direct_chunk((100, 0))
    positions = sorted({0, 5, 9, len(raw) // 3, len(raw) // 2, len(raw) - 5, len(raw) - 1})
    script = textwrap.dedent(
        """
        import h5py, json, sys
        with h5py.File(sys.argv[1]) as f:
            d = f["x"]
            try:
                d[100:200]
                print(json.dumps("read"))
            except OSError as e:
                print(json.dumps("error: " + str(e)))
            # The undamaged chunks still read.
            d[0:100]; d[200:400]
        """
    )
    for position in positions + ["truncated"]:
        damaged = bytearray(raw)
        if position == "truncated":
            damaged = damaged[: len(damaged) // 2]
        else:
            damaged[position] ^= 0xA5
        with h5py.File(path, "a") as f:
            f["x"].id.write_direct_chunk((100, 0), bytes(damaged), filter_mask=0)
        run = subprocess.run([sys.executable, "-c", script, str(path)], env=reader_env(),
                             capture_output=True, text=True)
        assert run.returncode == 0, f"byte {position}: reader died: {run.stderr[-1500:]}"
        outcome = json.loads(run.stdout.strip().splitlines()[-1])
        assert outcome.startswith("error"), f"byte {position}: a damaged chunk was read"


def test_what_the_filter_cannot_code_is_refused_at_creation(tmp_path):
    h5py = need("h5py")
    kwargs = baler_rs.hdf5_filter(error_bound=0.1)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        for dtype in ("u1", "u2", "i8", "f2"):
            a = np.arange(100, dtype=dtype)
            with pytest.raises(ValueError, match="baler filter: datasets of float32, float64, int16 or int32 only"):
                f.create_dataset(f"x_{dtype}", data=a, chunks=(10,), **kwargs)
    with pytest.raises(ValueError):
        baler_rs.hdf5_filter(error_bound=1e-3, rel_error_bound=1e-3)
    with pytest.raises(ValueError):
        baler_rs.hdf5_filter(error_bound=-1.0)


def test_parameters_of_an_unknown_version_are_refused(tmp_path):
    h5py = need("h5py")
    x = field((100, 10), "f8")
    path = tmp_path / "x.h5"
    opts = list(baler_rs.hdf5_filter(error_bound=0.01)["compression_opts"])
    opts[0] = 99  # a layout version this plugin does not know
    with h5py.File(path, "w") as f:
        with pytest.raises(ValueError, match="baler filter: parameter layout version 99"):
            f.create_dataset("x", data=x, chunks=(50, 10), compression=baler_rs.HDF5_FILTER_ID,
                             compression_opts=tuple(opts))
        with pytest.raises(ValueError, match="baler filter: 3 parameters, expected at least 5"):
            f.create_dataset("y", data=x, chunks=(50, 10), compression=baler_rs.HDF5_FILTER_ID,
                             compression_opts=tuple(opts[:3]))


def test_importing_baler_rs_registers_the_plugin_path():
    folder = baler_rs.hdf5_plugin_dir()
    assert os.path.isfile(os.path.join(folder, "libh5baler.so")) or os.listdir(folder)
    assert folder in os.environ["HDF5_PLUGIN_PATH"].split(os.pathsep)
    h5py = need("h5py")
    # Imported after baler_rs (as here) or before: either way h5py's HDF5 finds the filter.
    run = subprocess.run(
        [sys.executable, "-c",
         "import h5py, baler_rs; from h5py import h5z; print(h5z.filter_avail(baler_rs.HDF5_FILTER_ID))"],
        env={k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"},
        capture_output=True, text=True,
    )
    assert run.stdout.strip() == "True", run.stderr
    assert h5py is not None


def test_the_command_reads_and_writes_datasets_h5py_made(tmp_path, baler_cli):
    h5py = need("h5py")
    frames = field((30, 40, 50), "f4")
    events = table(800)
    names = ["px", "py", "pz", "E", "n", "flag"]
    src = tmp_path / "run.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("/detector/frames", data=frames, chunks=(10, 40, 50),
                         **baler_rs.hdf5_filter(error_bound=1e-3))
        f.create_dataset("/events", data=events)
        f["/events"].attrs["names"] = names

    def baler(*args):
        return subprocess.run([str(baler_cli), *args], capture_output=True, text=True,
                              env=reader_env())

    run = baler("compress", "--input", f"{src}:/events", "--output", str(tmp_path / "e.baler"),
                "--rel-error-bound", "1e-3")
    if "no HDF5 support" in run.stderr:
        if REQUIRE:
            pytest.fail("the baler command was built without --features hdf5")
        pytest.skip("SKIPPED: the baler command was built without --features hdf5")
    assert run.returncode == 0, run.stderr
    # The filtered dataset is read through the plugin (HDF5_PLUGIN_PATH), then coded again.
    run = baler("compress", "--input", f"{src}:detector/frames", "--output",
                str(tmp_path / "f.baler"), "--error-bound", "1e-3")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "back.h5"
    for stream, name in (("e.baler", "/events"), ("f.baler", "/frames")):
        run = baler("decompress", "--input", str(tmp_path / stream), "--output", f"{out}:{name}")
        assert run.returncode == 0, run.stderr
    with h5py.File(out) as f:
        back_events, back_frames = f["/events"][...], f["/frames"][...]
        assert [n if isinstance(n, str) else n.decode() for n in f["/events"].attrs["names"]] == names
    span = events.max(0) - events.min(0)
    assert (np.abs(back_events - events) <= 1e-3 * span).all()
    assert back_frames.dtype == np.float32 and back_frames.shape == frames.shape
    # Twice within 1e-3: once through the filter, once through the command.
    assert np.abs(back_frames - frames).max() <= 2e-3
    # The command's stream is the package's format.
    again = baler_rs.decompress((tmp_path / "e.baler").read_bytes())
    np.testing.assert_array_equal(again, back_events)


def test_h5py_and_netcdf4_share_the_plugin_in_one_process(tmp_path):
    """h5py and netCDF4 bring their own HDF5 libraries: the plugin, loaded once, serves both
    (each callback finds the library that called it)."""
    need("h5py")
    need("netCDF4")
    script = textwrap.dedent(
        """
        import sys, h5py, netCDF4, numpy as np, baler_rs
        x = np.cumsum(np.random.default_rng(0).normal(size=(200, 30)), 0).astype("f4")
        a, b = sys.argv[1], sys.argv[2]
        with h5py.File(a, "w") as f:
            f.create_dataset("v", data=x, chunks=(64, 30), **baler_rs.hdf5_filter(error_bound=0.01))
        errors = [np.abs(netCDF4.Dataset(a)["v"][...] - x).max()]
        # A dataset created after netCDF4's HDF5 used the plugin: set_local runs in h5py's.
        with h5py.File(b, "w") as f:
            f.create_dataset("w", data=x, chunks=(50, 30), **baler_rs.hdf5_filter(error_bound=0.01))
        errors.append(np.abs(h5py.File(b)["w"][...] - x).max())
        print(max(errors), netCDF4.__hdf5libversion__, h5py.version.hdf5_version)
        """
    )
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.nc"), str(tmp_path / "b.h5")],
                         env=reader_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    worst = float(run.stdout.split()[0])
    assert worst <= 0.01, run.stdout


def test_a_file_written_by_the_first_plugin_still_decodes_to_the_same_bits():
    """tests/streams/hdf5/filter_v1.h5 was written with cd_values layout version 1 (an
    absolute bound on an f32 field, a per-chunk relative one on an f64 table, 10 mantissa
    bits on a big-endian table); every later plugin must decode it to the same values."""
    need("h5py")
    from conftest import STREAMS

    folder = STREAMS / "hdf5"
    expected = [line.split() for line in (folder / "decoded.sha256").read_text().splitlines() if line]
    script = (
        "import h5py, hashlib, json, sys, numpy as np\n"
        "f = h5py.File(sys.argv[1])\n"
        "print(json.dumps({n: [list(f[n].shape), f[n].dtype.str, "
        "hashlib.sha256(np.ascontiguousarray(f[n][...]).tobytes()).hexdigest()] for n in f}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(folder / "filter_v1.h5")],
                         env=reader_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout)
    assert len(expected) == 3
    for name, shape, dtype, digest in expected:
        assert seen[name] == [[int(d) for d in shape.split(",")], dtype, digest], name
