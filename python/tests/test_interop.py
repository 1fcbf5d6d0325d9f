"""The Python package and the `baler` command write and read the same bytes."""

import hashlib
import subprocess

import numpy as np
import pytest

import baler_rs
from conftest import HZZ, STREAMS


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def expected():
    lines = (STREAMS / "decoded.sha256").read_text().split("\n")
    return dict(line.split() for line in lines if line.strip())


@pytest.mark.parametrize("name", ["hzz_1e-3", "hzz_abs", "cfd_1e-3", "cfd_never", "hzz_fixed", "hzz_model_1e-2"])
def test_streams_written_by_the_command_decode_bit_for_bit(name):
    data = (STREAMS / f"{name}.baler").read_bytes()
    model = (STREAMS / "small.model").read_bytes() if name in ("hzz_fixed", "hzz_model_1e-2") else None
    array = baler_rs.decompress(data, model=model)
    assert digest(array) == expected()[name]


def test_a_stream_that_needs_its_model_says_so():
    with pytest.raises(ValueError, match="model"):
        baler_rs.decompress((STREAMS / "hzz_model_1e-2.baler").read_bytes())


def test_python_writes_the_bytes_the_command_writes():
    with np.load(HZZ) as npz:
        data, names = npz["data"], [str(n) for n in npz["names"]]
    stream = baler_rs.compress(data, rel_error_bound=1e-3, names=names)
    # Since the copy relation (December 2026) the command writes `copy/hzz_1e-3.baler`.
    assert stream == (STREAMS / "copy" / "hzz_1e-3.baler").read_bytes()


def test_the_command_decodes_what_python_writes(baler_cli, tmp_path):
    x = np.cumsum(np.random.default_rng(3).normal(size=(300, 5)), axis=0).astype(np.float32)
    (tmp_path / "x.baler").write_bytes(baler_rs.compress(x, error_bound=1e-3))
    subprocess.run(
        [baler_cli, "decompress", "--input", tmp_path / "x.baler", "--output", tmp_path / "y.npy"],
        check=True,
        capture_output=True,
    )
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == x.dtype and y.shape == x.shape
    assert np.array_equal(y, baler_rs.decompress((tmp_path / "x.baler").read_bytes()))
