"""``baler`` as the array-to-bytes codec of a Zarr v3 array.

>>> import zarr
>>> from baler_rs.zarr3 import BalerCodec
>>> z = zarr.create_array(store={}, shape=(100, 100), chunks=(50, 50), dtype="f8",
...                       serializer=BalerCodec(error_bound=1e-3))

Zarr finds the codec by its name ("baler") through the ``zarr.codecs`` entry point, so arrays
written with it open anywhere the package is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

from . import _the_bound


@dataclass(frozen=True)
class BalerCodec(ArrayBytesCodec):
    """Error-bounded compression of each chunk: ``error_bound`` (absolute),
    ``rel_error_bound`` (a fraction of each chunk's range), ``pointwise_rel_bound`` (every
    value within R x itself) or ``mantissa_bits``; ``field`` codes 2-D chunks as images."""

    error_bound: float | None = None
    rel_error_bound: float | None = None
    pointwise_rel_bound: float | None = None
    mantissa_bits: int | None = None
    field: bool = False
    is_fixed_size = False

    def __post_init__(self):
        _the_bound(self)

    @classmethod
    def from_dict(cls, data):
        _, configuration = parse_named_configuration(data, "baler")
        return cls(**configuration)

    def to_dict(self):
        configuration = {"field": self.field, **_the_bound(self)}
        return {"name": "baler", "configuration": configuration}

    def _encode_sync(self, chunk_array, chunk_spec):
        from . import compress

        data = compress(
            chunk_array.as_numpy_array(),
            **_the_bound(self),
            field=self.field,
        )
        return chunk_spec.prototype.buffer.from_bytes(data)

    async def _encode_single(self, chunk_array, chunk_spec):
        return self._encode_sync(chunk_array, chunk_spec)

    def _decode_sync(self, chunk_bytes, chunk_spec):
        from . import decompress

        decoded = decompress(chunk_bytes.to_bytes())
        if decoded.shape != tuple(chunk_spec.shape):
            decoded = decoded.reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(decoded)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        return self._decode_sync(chunk_bytes, chunk_spec)

    def compute_encoded_size(self, input_byte_length, chunk_spec):
        raise NotImplementedError("baler streams vary in size")
