"""The numcodecs codec ``baler`` (a Zarr format-2 compressor, or any numcodecs pipeline)."""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from . import _the_bound


class Baler(Codec):
    """Error-bounded compression of each chunk with baler-rs.

    Give ``error_bound`` (absolute) or ``rel_error_bound`` (a fraction of each chunk's range:
    for one bound over a whole array use ``error_bound=baler_rs.absolute_bound(x, r)``).
    ``field=True`` codes 2-D chunks as images rather than tables.

    >>> import numcodecs
    >>> codec = numcodecs.get_codec({"id": "baler", "error_bound": 0.01})
    """

    codec_id = "baler"

    def __init__(
        self, error_bound=None, rel_error_bound=None, field=False, pointwise_rel_bound=None,
        mantissa_bits=None,
    ):
        self.error_bound = None if error_bound is None else float(error_bound)
        self.rel_error_bound = None if rel_error_bound is None else float(rel_error_bound)
        self.pointwise_rel_bound = None if pointwise_rel_bound is None else float(pointwise_rel_bound)
        self.mantissa_bits = None if mantissa_bits is None else int(mantissa_bits)
        self.field = bool(field)
        _the_bound(self)

    def encode(self, buf):
        from . import compress

        a = np.asarray(buf)
        return compress(a, **_the_bound(self), field=self.field)

    def decode(self, buf, out=None):
        from . import decompress

        data = ensure_contiguous_ndarray(buf).tobytes()
        decoded = decompress(data)
        if out is not None:
            return ndarray_copy(decoded, out)
        return decoded

    def get_config(self):
        config = {"id": self.codec_id, **_the_bound(self)}
        if self.field:
            config["field"] = True
        return config

    def __repr__(self):
        ((key, value),) = _the_bound(self).items()
        bound = f"{key}={value!r}"
        return f"Baler({bound}{', field=True' if self.field else ''})"
