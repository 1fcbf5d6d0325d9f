"""The numcodecs codec ``baler`` (a Zarr format-2 compressor, or any numcodecs pipeline)."""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy


class Baler(Codec):
    """Error-bounded compression of each chunk with baler-rs.

    Give ``error_bound`` (absolute) or ``rel_error_bound`` (a fraction of each chunk's range:
    for one bound over a whole array use ``error_bound=baler_rs.absolute_bound(x, r)``).
    ``field=True`` codes 2-D chunks as images rather than tables.

    >>> import numcodecs
    >>> codec = numcodecs.get_codec({"id": "baler", "error_bound": 0.01})
    """

    codec_id = "baler"

    def __init__(self, error_bound=None, rel_error_bound=None, field=False):
        if (error_bound is None) == (rel_error_bound is None):
            raise ValueError("give exactly one of error_bound and rel_error_bound")
        self.error_bound = None if error_bound is None else float(error_bound)
        self.rel_error_bound = None if rel_error_bound is None else float(rel_error_bound)
        self.field = bool(field)

    def encode(self, buf):
        from . import compress

        a = np.asarray(buf)
        return compress(
            a,
            error_bound=self.error_bound,
            rel_error_bound=self.rel_error_bound,
            field=self.field,
        )

    def decode(self, buf, out=None):
        from . import decompress

        data = ensure_contiguous_ndarray(buf).tobytes()
        decoded = decompress(data)
        if out is not None:
            return ndarray_copy(decoded, out)
        return decoded

    def get_config(self):
        config = {"id": self.codec_id}
        if self.error_bound is not None:
            config["error_bound"] = self.error_bound
        if self.rel_error_bound is not None:
            config["rel_error_bound"] = self.rel_error_bound
        if self.field:
            config["field"] = True
        return config

    def __repr__(self):
        bound = (
            f"error_bound={self.error_bound!r}"
            if self.error_bound is not None
            else f"rel_error_bound={self.rel_error_bound!r}"
        )
        return f"Baler({bound}{', field=True' if self.field else ''})"
