"""baler-rs from Python: compress numpy arrays with a guaranteed error bound.

>>> import numpy as np, baler_rs
>>> x = np.sin(np.linspace(0, 20, 10_000))
>>> data = baler_rs.compress(x, error_bound=1e-4)
>>> y = baler_rs.decompress(data)
>>> bool(np.abs(x - y).max() <= 1e-4)
True

The bytes are the stream format of the ``baler`` command (``baler decompress`` reads them,
and ``decompress`` reads what ``baler compress`` writes). ``Baler`` is the numcodecs codec
(``numcodecs.get_codec({"id": "baler", ...})``, a Zarr format-2 compressor);
``baler_rs.zarr3.BalerCodec`` is the Zarr v3 array-to-bytes codec. ``hdf5_filter`` gives
h5py's ``create_dataset`` the arguments of the HDF5 filter plugin that ships in the package;
importing ``baler_rs`` puts the plugin on HDF5's search path.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from importlib.metadata import PackageNotFoundError, version

from . import _baler

__all__ = [
    "compress",
    "decompress",
    "absolute_bound",
    "hdf5_filter",
    "hdf5_plugin_dir",
    "HDF5_FILTER_ID",
    "Baler",
    "SUPPORTED_DTYPES",
    "__version__",
]

try:
    __version__ = version("baler-rs")
except PackageNotFoundError:  # running from a source tree
    __version__ = "unknown"

#: The element types a stream records (others raise TypeError).
SUPPORTED_DTYPES = (np.dtype("float32"), np.dtype("float64"), np.dtype("int16"), np.dtype("int32"))


def _prepared(array) -> np.ndarray:
    """`array` as a C-contiguous, native-endian array of a supported type (a copy if needed)."""
    a = np.asarray(array)
    if a.dtype.kind not in "fi" or a.dtype.newbyteorder("=") not in SUPPORTED_DTYPES:
        raise TypeError(
            f"baler compresses float32, float64, int16 and int32 arrays, not {a.dtype}"
        )
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


def compress(
    array,
    *,
    error_bound=None,
    rel_error_bound=None,
    pointwise_rel_bound=None,
    mantissa_bits=None,
    column_bounds=None,
    model=None,
    field=False,
    names=None,
) -> bytes:
    """Compresses a numpy array (rank 1 to 8; float32, float64, int16 or int32).

    Exactly one of:

    - ``error_bound``: every value comes back within this absolute error;
    - ``rel_error_bound``: within this fraction of each column's range (2-D tables) or of the
      whole array's range (series, fields, ``field=True``);
    - ``pointwise_rel_bound``: every value ``x`` within ``R * |x|`` (zeros stay zero, no sign
      flips; integer-valued columns are kept exactly), or ``mantissa_bits=N``, the same
      promise as NanoAOD's rounding to N mantissa bits (``R = 2**-(N+1)``);
    - ``model`` alone (bytes of a model blob from ``baler train``): fixed-rate latent codes.

    ``column_bounds``: a bound per column of a table, a dict (or its JSON text) such as
    ``{"default": {"mantissa_bits": 10}, "columns": {"nJet": "lossless", "MET_pt":
    {"pointwise": 1e-3}, "3": {"absolute": 0.01}}}``: columns by name (``names``) or index,
    bounds ``absolute``, ``relative``, ``pointwise``, ``mantissa_bits`` or ``"lossless"``; a
    bound argument, if given, is the default instead.

    A model may also be given with a bound, to predict with it where that pays.
    ``field=True`` codes a 2-D array as one field of rows (an image), not a table.
    ``names``: a table's column names (one per column), kept in error-bounded streams.
    The GIL is released while coding; calls from several threads are safe.
    """
    given = [b for b in (error_bound, rel_error_bound, pointwise_rel_bound, mantissa_bits) if b is not None]
    if len(given) > 1:
        raise ValueError(
            "give one of error_bound, rel_error_bound, pointwise_rel_bound and mantissa_bits"
        )
    if column_bounds is not None and not isinstance(column_bounds, str):
        import json

        column_bounds = json.dumps(column_bounds)
    a = _prepared(array)
    if a.ndim == 0:
        a = a.reshape(1)
    return _baler.compress(
        a,
        error_bound=None if error_bound is None else float(error_bound),
        rel_error_bound=None if rel_error_bound is None else float(rel_error_bound),
        pointwise_rel_bound=None if pointwise_rel_bound is None else float(pointwise_rel_bound),
        mantissa_bits=None if mantissa_bits is None else int(mantissa_bits),
        column_bounds=column_bounds,
        model=None if model is None else bytes(model),
        field=bool(field),
        names=None if names is None else [str(n) for n in names],
    )


def decompress(data, *, model=None) -> np.ndarray:
    """Decompresses a baler stream (bytes-like) into a numpy array of its original shape and
    type. ``model``: the model blob, for streams coded with one. Damaged or foreign bytes
    raise ValueError."""
    return _baler.decompress(bytes(data), model=None if model is None else bytes(model))


def absolute_bound(array, rel_error_bound: float) -> float:
    """The absolute bound that is ``rel_error_bound`` x the range of the whole ``array``.

    Zarr and Dask compress chunk by chunk; with ``rel_error_bound`` each chunk would use its
    own range. Compute the bound once from the whole array and give it as ``error_bound`` to
    get one guarantee everywhere::

        Baler(error_bound=baler_rs.absolute_bound(x, 1e-3))
    """
    a = np.asarray(array)
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    if finite.size == 0:
        raise ValueError("the array has no finite values to take a range from")
    span = float(finite.max()) - float(finite.min())
    bound = rel_error_bound * span
    if not bound > 0:
        raise ValueError("the array is constant: give an absolute error_bound")
    return bound


#: The error-bound arguments; the codecs take exactly one of them.
_BOUND_ARGUMENTS = ("error_bound", "rel_error_bound", "pointwise_rel_bound", "mantissa_bits")


def _the_bound(codec) -> dict:
    """The one bound argument `codec` was given, as ``{name: value}``; ValueError unless it
    was given exactly one."""
    given = {k: getattr(codec, k) for k in _BOUND_ARGUMENTS if getattr(codec, k) is not None}
    if len(given) != 1:
        raise ValueError(
            "give exactly one of error_bound, rel_error_bound, pointwise_rel_bound and mantissa_bits"
        )
    return given


#: The HDF5 filter id of the plugin (256-511 is HDF5's range for unregistered filters).
HDF5_FILTER_ID = 400


def hdf5_plugin_dir() -> str:
    """The folder holding the HDF5 filter plugin (``libh5baler.so``): for
    ``HDF5_PLUGIN_PATH`` when programs other than this Python process (``h5dump``, a C or
    Fortran code, another interpreter) read or write the files."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "hdf5_plugin")


def _register_hdf5_plugin() -> None:
    """Puts the plugin folder on HDF5's search path: in the environment (read by HDF5 when
    h5py, netCDF4 or a child process loads it later) and, if h5py is loaded already, in its
    HDF5's plugin path table."""
    folder = hdf5_plugin_dir()
    if not os.path.isdir(folder):
        return
    paths = [p for p in os.environ.get("HDF5_PLUGIN_PATH", "").split(os.pathsep) if p]
    if folder not in paths:
        os.environ["HDF5_PLUGIN_PATH"] = os.pathsep.join([folder] + paths)
    if "h5py" in sys.modules:
        from h5py import h5pl

        known = [h5pl.get(i).decode(errors="replace") for i in range(h5pl.size())]
        if folder not in known:
            h5pl.prepend(folder.encode())


def hdf5_filter(
    *, error_bound=None, rel_error_bound=None, pointwise_rel_bound=None, mantissa_bits=None,
    field=False,
) -> dict:
    """Keyword arguments for ``h5py.Group.create_dataset`` that compress the dataset with
    baler's HDF5 filter, as hdf5plugin's helpers do::

        f.create_dataset("x", data=a, chunks=(256, 64), **baler_rs.hdf5_filter(error_bound=1e-3))

    Give ``error_bound`` (absolute) or ``rel_error_bound`` (a fraction of each chunk's range,
    per column for 2-D table chunks; for one bound over the dataset use
    ``error_bound=baler_rs.absolute_bound(a, r)``), or ``pointwise_rel_bound`` (every value
    ``x`` within ``R * |x|``; ``mantissa_bits=N`` for ``R = 2**-(N+1)``). ``field=True``
    codes 2-D chunks as images. Datasets of float32, float64, int16 or int32, chunked (rank 1 to 8). Files
    written this way are read by any HDF5 program with ``hdf5_plugin_dir()`` on
    ``HDF5_PLUGIN_PATH``.
    """
    if mantissa_bits is not None:
        if not 1 <= int(mantissa_bits) <= 30:
            raise ValueError(f"mantissa bits must be 1 to 30, not {mantissa_bits}")
        pointwise_rel_bound = 2.0 ** -(int(mantissa_bits) + 1)
    given = [(k, v) for k, v in enumerate((error_bound, rel_error_bound, pointwise_rel_bound)) if v is not None]
    if len(given) != 1 or (mantissa_bits is not None and given[0][0] != 2):
        raise ValueError(
            "give exactly one of error_bound, rel_error_bound, pointwise_rel_bound and mantissa_bits"
        )
    kind, value = given[0][0], float(given[0][1])
    if not os.path.isdir(hdf5_plugin_dir()):
        raise RuntimeError(
            "this baler_rs was built without its HDF5 plugin (hdf5-filter/ was not found at build time)"
        )
    _register_hdf5_plugin()
    name = ("absolute", "relative", "pointwise")[kind]
    return {
        "compression": HDF5_FILTER_ID,
        "compression_opts": tuple(_baler.hdf5_cd_values(name, value, bool(field))),
    }


_register_hdf5_plugin()


def __getattr__(name):
    # The numcodecs codec is imported on first use, so that the core functions work even
    # where numcodecs cannot be imported.
    if name == "Baler":
        from .numcodecs import Baler

        return Baler
    raise AttributeError(f"module 'baler_rs' has no attribute {name!r}")
