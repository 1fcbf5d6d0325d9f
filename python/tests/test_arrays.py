"""baler_rs.compress / decompress on numpy arrays: every value within the bound, shape and
dtype restored, bad input refused with the right exception."""

import threading

import numpy as np
import pytest

import baler_rs

RNG = np.random.default_rng(2026)
DTYPES = ["float32", "float64", "int16", "int32"]


def assert_within(original, decoded, bound):
    assert decoded.shape == original.shape
    assert decoded.dtype == original.dtype
    a = original.astype(np.float64)
    b = decoded.astype(np.float64)
    finite = np.isfinite(a)
    assert np.all(np.abs(a[finite] - b[finite]) <= bound), np.abs(a - b).max()
    # NaN and infinities come back as they were.
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.array_equal(a[np.isinf(a)], b[np.isinf(a)])


def sample(kind, dtype):
    """A table, a field or a series of `dtype`, with some structure."""
    if kind == "series":
        x = np.cumsum(RNG.normal(size=5000)) * 10
    elif kind == "table":
        x = RNG.normal(size=(600, 7)) * [1, 10, 100, 1000, 0.1, 5, 50]
    elif kind == "field":
        t, y, z = np.meshgrid(np.arange(6), np.arange(20), np.arange(30), indexing="ij")
        x = 100 * np.sin(0.2 * y + 0.1 * t) * np.cos(0.15 * z)
    else:
        x = RNG.normal(size=(2, 3, 4, 5, 6)).cumsum(axis=-1) * 30
    if dtype.startswith("int"):
        return np.round(x).astype(dtype)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["series", "table", "field", "rank5"])
@pytest.mark.parametrize("bound", [1e-1, 1e-3])
def test_round_trip_within_an_absolute_bound(kind, dtype, bound):
    x = sample(kind, dtype)
    # Integer types: a bound under one count is lossless.
    eps = bound if dtype.startswith("float") else 0.5
    data = baler_rs.compress(x, error_bound=eps)
    assert isinstance(data, bytes)
    assert_within(x, baler_rs.decompress(data), eps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relative_bound_per_column_of_a_table(dtype):
    x = sample("table", dtype)
    y = baler_rs.decompress(baler_rs.compress(x, rel_error_bound=1e-3))
    for c in range(x.shape[1]):
        column = x[:, c].astype(np.float64)
        eps = 1e-3 * (column.max() - column.min())
        assert np.all(np.abs(column - y[:, c]) <= eps)


def test_one_element_and_scalar_like_arrays():
    for x in [np.array([3.25]), np.array([[1.5]]), np.array([[[7]]], dtype=np.int16)]:
        assert_within(x, baler_rs.decompress(baler_rs.compress(x, error_bound=0.01)), 0.01)


def test_empty_arrays_round_trip():
    for x in [np.zeros(0), np.zeros((0, 3)), np.zeros((0, 4, 5), dtype=np.float32), np.zeros((0, 2), dtype=np.int16)]:
        y = baler_rs.decompress(baler_rs.compress(x, rel_error_bound=1e-3))
        assert y.shape == x.shape and y.dtype == x.dtype
    # Rows of no values have nothing to code.
    with pytest.raises(ValueError, match="only the first dimension may be 0"):
        baler_rs.compress(np.zeros((4, 0)), error_bound=0.1)


def test_non_contiguous_fortran_and_big_endian_inputs():
    base = sample("table", "float64")
    for x in [base[::2, ::3], base.T, np.asfortranarray(base), base.astype(">f8")]:
        y = baler_rs.decompress(baler_rs.compress(x, error_bound=1e-3))
        assert y.shape == x.shape
        assert np.all(np.abs(np.asarray(x, dtype=np.float64) - y) <= 1e-3)


def test_nan_and_infinities_are_kept():
    x = sample("series", "float64")
    x[[3, 100, 4000]] = [np.nan, np.inf, -np.inf]
    x[5] = 1e300
    assert_within(x, baler_rs.decompress(baler_rs.compress(x, error_bound=1e-2)), 1e-2)


def test_a_2d_array_as_an_image():
    y, x = np.mgrid[0:120, 0:160]
    image = np.sin(0.05 * x) * np.cos(0.03 * y) * 50
    table = baler_rs.compress(image, error_bound=0.05)
    field = baler_rs.compress(image, error_bound=0.05, field=True)
    assert len(field) * 2 < len(table)
    assert_within(image, baler_rs.decompress(field), 0.05)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "uint16", "int64", "uint64", "float16", "complex64", "bool", "object"])
def test_unsupported_dtypes_are_type_errors(dtype):
    x = np.zeros(10, dtype=dtype)
    with pytest.raises(TypeError, match="float32, float64, int16 and int32"):
        baler_rs.compress(x, error_bound=0.1)


def test_bounds_are_checked():
    x = sample("series", "float64")
    for kwargs in [
        {},
        {"error_bound": 0.1, "rel_error_bound": 0.1},
        {"error_bound": 0.0},
        {"error_bound": -1.0},
        {"error_bound": float("nan")},
        {"rel_error_bound": float("inf")},
    ]:
        with pytest.raises(ValueError):
            baler_rs.compress(x, **kwargs)


def test_damaged_truncated_and_random_bytes_are_value_errors():
    data = baler_rs.compress(sample("table", "float64"), error_bound=0.01)
    cases = 0
    rng = np.random.default_rng(7)
    for length in range(0, len(data), max(1, len(data) // 300)):
        with pytest.raises(ValueError):
            baler_rs.decompress(data[:length])
        cases += 1
    for _ in range(500):
        damaged = bytearray(data)
        at = int(rng.integers(len(damaged)))
        damaged[at] ^= 1 << int(rng.integers(8))
        with pytest.raises(ValueError):
            baler_rs.decompress(bytes(damaged))
        cases += 1
    for length in range(0, 400):
        junk = rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()
        if length >= 4 and length % 2 == 0:
            junk = b"BALS" + junk[4:]  # gets past the magic
        with pytest.raises(ValueError):
            baler_rs.decompress(junk)
        cases += 1
    assert cases >= 1000


def test_threads_share_nothing():
    x = sample("field", "float64")
    expected = baler_rs.compress(x, error_bound=1e-3)
    results = []

    def work():
        for _ in range(5):
            data = baler_rs.compress(x, error_bound=1e-3)
            results.append(data == expected and np.array_equal(baler_rs.decompress(data), baler_rs.decompress(expected)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 20


def test_absolute_bound_helper():
    x = np.linspace(-5, 15, 1000)
    assert baler_rs.absolute_bound(x, 1e-3) == pytest.approx(0.02)
    with pytest.raises(ValueError):
        baler_rs.absolute_bound(np.ones(10), 1e-3)
