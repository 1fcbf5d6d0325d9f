//! Zero-copy views of little-endian arrays inside a model blob.
//!
//! Weights, biases and scales stay where they are in the blob (flash, on a microcontroller);
//! the model only holds slices of it, so loading costs no RAM per weight.

use core::marker::PhantomData;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A fixed-size scalar stored little-endian.
pub trait LeScalar: Copy + 'static {
    /// Size in bytes.
    const SIZE: usize;
    /// Reads one value from exactly `SIZE` bytes.
    fn read(bytes: &[u8]) -> Self;
    /// Appends the little-endian bytes of `self` with `push`.
    fn write(self, push: &mut dyn FnMut(u8));
}

macro_rules! le_scalar {
    ($($t:ty),*) => {$(
        impl LeScalar for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            #[inline(always)]
            fn read(bytes: &[u8]) -> Self {
                let mut b = [0u8; core::mem::size_of::<$t>()];
                b.copy_from_slice(&bytes[..Self::SIZE]);
                <$t>::from_le_bytes(b)
            }
            fn write(self, push: &mut dyn FnMut(u8)) {
                for b in self.to_le_bytes() {
                    push(b);
                }
            }
        }
    )*};
}
le_scalar!(i8, u8, i16, u16, i32, u32, f32);

/// A borrowed little-endian array of `T`, serialized as a postcard byte string.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LeSlice<'a, T> {
    bytes: &'a [u8],
    _t: PhantomData<T>,
}

impl<T> core::fmt::Debug for LeSlice<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "LeSlice({} bytes)", self.bytes.len())
    }
}

impl<'a, T: LeScalar> LeSlice<'a, T> {
    /// Views `bytes` as little-endian `T`s. A trailing partial element is ignored by
    /// [`LeSlice::len`]; model validation rejects such lengths.
    pub const fn new(bytes: &'a [u8]) -> Self {
        LeSlice {
            bytes,
            _t: PhantomData,
        }
    }

    /// Number of whole elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / T::SIZE
    }

    /// True when there is no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when the byte length is exactly `n` elements.
    pub fn has_len(&self, n: usize) -> bool {
        n.checked_mul(T::SIZE) == Some(self.bytes.len())
    }

    /// Element `i`, or `None` past the end.
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<T> {
        let start = i.checked_mul(T::SIZE)?;
        self.bytes.get(start..start + T::SIZE).map(T::read)
    }

    /// Element `i`, or `fallback` past the end (validated models never go past the end).
    #[inline(always)]
    pub fn at(&self, i: usize, fallback: T) -> T {
        self.get(i).unwrap_or(fallback)
    }

    /// Iterates over the whole elements.
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        self.bytes.chunks_exact(T::SIZE).map(T::read)
    }
}

impl<T> Serialize for LeSlice<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.bytes)
    }
}

impl<'de: 'a, 'a, T> Deserialize<'de> for LeSlice<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = <&'de [u8]>::deserialize(d)?;
        Ok(LeSlice {
            bytes,
            _t: PhantomData,
        })
    }
}
