//! The one error type of the codec.

use core::fmt;

/// Which fixed capacity of a [`crate::Model`] or buffer was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capacity {
    /// The number of layers (`MAX_LAYERS`).
    Layers,
    /// The width of any layer's input or output (`MAX_WIDTH`).
    Width,
    /// The number of dimensions of a shape.
    Rank,
    /// The adaptive coding contexts an error-bounded stream needs.
    Contexts,
    /// The values of an interpolated field block, held whole while it is coded.
    BlockValues,
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capacity::Layers => "layers",
            Capacity::Width => "values in one layer",
            Capacity::Rank => "dimensions",
            Capacity::Contexts => "coding contexts",
            Capacity::BlockValues => "values of an interpolated block",
        })
    }
}

/// Everything that can go wrong in the codec. Every input (model blob, stream, frame) is
/// untrusted; every problem with it comes back as one of these, never as a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not start with the expected magic: not a model blob or stream at all.
    BadMagic,
    /// The format version is not one this build can read.
    UnsupportedVersion {
        /// The version found in the bytes.
        found: u16,
    },
    /// The bytes end before the structure they describe does.
    Truncated,
    /// Bytes are left over after a complete structure.
    TrailingBytes,
    /// The model blob's content does not hash to the model id in its header: it is corrupted.
    ModelIdMismatch,
    /// The model blob's body could not be decoded (postcard).
    Malformed,
    /// A structural field of a blob or stream has an invalid value (the input is corrupt or
    /// crafted); the string names it.
    Invalid(&'static str),
    /// The caller passed arguments that cannot work (not a problem with the data); the string
    /// names which.
    Misuse(&'static str),
    /// The stream needs a part of the codec this build leaves out (a cargo feature of
    /// `baler-codec`: `tabled`, `relations` or `learned`); the string names it.
    NotInThisBuild(&'static str),
    /// The stream was coded with a model and none was given to decode it.
    ModelRequired,
    /// Layer shapes do not chain (a layer's input width differs from the previous output).
    ShapeMismatch {
        /// Index of the offending layer.
        layer: usize,
    },
    /// An array in the model has the wrong length for the shapes it belongs to.
    LengthMismatch {
        /// Which array.
        what: &'static str,
        /// The length the shapes require.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// The model needs more than the compile-time capacity of this `Model` type.
    CapacityExceeded {
        /// Which capacity.
        what: Capacity,
        /// What the model needs.
        needed: usize,
        /// What this build offers.
        capacity: usize,
    },
    /// A layer could overflow its 32-bit accumulator for some input; rejected at load time.
    AccumulatorOverflow {
        /// Index of the offending layer.
        layer: usize,
    },
    /// The latent code width is outside 1..=16 bits.
    InvalidCodeBits(u8),
    /// A frame or code slice passed to the codec has the wrong length.
    FrameLength {
        /// The length the model requires.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// An input value is NaN or infinite; the index is within the frame.
    NonFiniteInput {
        /// Index of the value within the frame.
        index: usize,
    },
    /// A latent code is outside the range of the model's code width.
    CodeOutOfRange {
        /// Index of the code within the frame.
        index: usize,
    },
    /// The output buffer is too small; `needed` is the total size the operation requires.
    BufferTooSmall {
        /// Bytes (or elements) needed.
        needed: usize,
    },
    /// A stream was written by a different model than the one decoding it.
    WrongModel {
        /// The id of the model given to the decoder.
        expected: u64,
        /// The id recorded in the stream.
        found: u64,
    },
    /// A stream header or block failed its CRC32 check.
    CrcMismatch {
        /// Index of the block (`None` for the stream header).
        block: Option<u32>,
    },
    /// A block kind this build cannot decode.
    UnknownBlockKind(u8),
    /// The stream's blocks hold a different number of frames than its header says.
    FrameCountMismatch {
        /// Frames announced in the header.
        header: u64,
        /// Frames found in the blocks.
        blocks: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadMagic => f.write_str("not a baler model or stream (bad magic bytes)"),
            Error::UnsupportedVersion { found } => {
                write!(f, "unsupported format version {found}")
            }
            Error::Truncated => f.write_str("data is truncated"),
            Error::TrailingBytes => f.write_str("unexpected bytes after the end of the data"),
            Error::ModelIdMismatch => {
                f.write_str("model blob is corrupted (content does not match its model id)")
            }
            Error::Malformed => f.write_str("model blob body is malformed"),
            Error::Invalid(what) => write!(f, "invalid value: {what}"),
            Error::Misuse(what) => write!(f, "invalid argument: {what}"),
            Error::NotInThisBuild(what) => {
                write!(f, "this build of the codec leaves out {what}")
            }
            Error::ModelRequired => {
                f.write_str("this stream was coded with a model; it is needed to decode it")
            }
            Error::ShapeMismatch { layer } => {
                write!(
                    f,
                    "layer {layer} input width does not match the previous layer"
                )
            }
            Error::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what} has length {found}, expected {expected}"),
            Error::CapacityExceeded {
                what,
                needed,
                capacity,
            } => write!(
                f,
                "{needed} {what} needed, but this build or its working memory holds at most {capacity}"
            ),
            Error::AccumulatorOverflow { layer } => {
                write!(f, "layer {layer} could overflow its 32-bit accumulator")
            }
            Error::InvalidCodeBits(b) => write!(f, "latent code width {b} is outside 1..=16"),
            Error::FrameLength { expected, found } => {
                write!(f, "frame has {found} values, the model expects {expected}")
            }
            Error::NonFiniteInput { index } => {
                write!(f, "input value {index} of the frame is NaN or infinite")
            }
            Error::CodeOutOfRange { index } => {
                write!(f, "latent code {index} is outside the model's code range")
            }
            Error::BufferTooSmall { needed } => {
                write!(f, "output buffer too small ({needed} needed)")
            }
            Error::WrongModel { expected, found } => write!(
                f,
                "stream was written by model {found:016x}, not by this model {expected:016x}"
            ),
            Error::CrcMismatch { block: None } => f.write_str("stream header CRC mismatch"),
            Error::CrcMismatch { block: Some(b) } => write!(f, "block {b} CRC mismatch"),
            Error::UnknownBlockKind(k) => write!(f, "unknown block kind {k}"),
            Error::FrameCountMismatch { header, blocks } => write!(
                f,
                "stream header announces {header} frames but its blocks hold {blocks}"
            ),
        }
    }
}

impl core::error::Error for Error {}

impl Error {
    /// Whether the error is the caller's (arguments that cannot work, a buffer too small, a
    /// missing or wrong model) rather than a problem with the bytes being decoded.
    pub fn is_misuse(&self) -> bool {
        matches!(
            self,
            Error::Misuse(_)
                | Error::ModelRequired
                | Error::BufferTooSmall { .. }
                | Error::FrameLength { .. }
                | Error::WrongModel { .. }
        )
    }
}

/// Shorthand for results of the codec.
pub type Result<T> = core::result::Result<T, Error>;
