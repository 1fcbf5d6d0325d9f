//! The error-bounded run of the firmware, with nothing of a particular core in it: the ARM
//! image (`main.rs`) and the RISC-V one (`firmware-riscv/`) both call [`encode_printed`] (and
//! the ARM one's timing [`encode`]), so the same code writes the bytes the host test compares
//! on every core.

use baler_codec::bounded::{
    write_params, BoundParams, BoundedEncoder, CoderChoice, ColumnGrid, IntModel, Layout,
    Predictor, Scratch, ScratchSizes,
};
use baler_codec::stream::{write_block, BlockKind, FLAG_ERROR_BOUNDED, STREAM_HEADER_LEN};
use baler_codec::{DType, EdgeModel, Error, StreamHeader};

/// Frames per error-bounded block (the host test uses the same).
pub const ROWS: usize = 5;

/// Room for one error-bounded block (or the header and parameters): each block is emitted as
/// soon as it is coded, so the stream never has to fit in RAM. 5 frames of 31 counts take
/// about 170 bytes here, of f32 values within 0.05 about 230; counts on an integer grid are
/// never escaped, so 768 bytes leave three to four times that, and a block that still did
/// not fit would stop the run with an error. (1 KiB took the Cortex-M0 image 4 bytes over its
/// 16 KiB of RAM.)
pub const BOUNDED_CAPACITY: usize = 768;

/// The error bounds the runs on ADC counts use (0: lossless).
pub const BOUNDS_IN_COUNTS: [u16; 2] = [0, 2];
/// The absolute bound of the f32 run, in the frames' own units, and as printed (formatting
/// an f64 would cost about 13 KB of flash).
pub const F32_BOUND: f64 = 0.05;
/// See [`F32_BOUND`].
pub const F32_BOUND_TEXT: &str = "0.05";

/// What an error-bounded run promises: ADC counts within `k` counts (0: lossless), or the
/// f32 frames themselves within an absolute bound.
#[derive(Clone, Copy)]
pub enum Promise {
    /// The frames as i16 ADC counts, within this many counts.
    Counts(u16),
    /// The frames as f32, within this absolute bound.
    Floats(f64),
}

/// Every run, in the order the firmware makes them.
pub const PROMISES: [Promise; 3] = [
    Promise::Counts(BOUNDS_IN_COUNTS[0]),
    Promise::Counts(BOUNDS_IN_COUNTS[1]),
    Promise::Floats(F32_BOUND),
];

impl Promise {
    /// The line tag the firmware prints before the run's stream (`BOUNDED k` for counts,
    /// `BOUNDED_F32 eps` for floats; the host test reads it back).
    pub fn tag(self) -> Tag {
        Tag(self)
    }

    fn dtype(self) -> DType {
        match self {
            Promise::Counts(_) => DType::I16,
            Promise::Floats(_) => DType::F32,
        }
    }

    fn bound(self) -> f64 {
        match self {
            Promise::Counts(k) => f64::from(k),
            Promise::Floats(eps) => eps,
        }
    }

    /// The grid: step 2k + 1 for counts (integers land on it), 2 eps for floats.
    fn grid(self) -> ColumnGrid {
        let step = match self {
            Promise::Counts(k) => f64::from(2 * k + 1),
            Promise::Floats(eps) => 2.0 * eps,
        };
        ColumnGrid::linear(0.0, step, self.bound())
    }

    /// Frame `frame` (of `n` values) of the little-endian f32 test data as this run codes it:
    /// rounded and clamped to i16 counts, or as it is.
    fn fill(self, data: &[u8], frame: usize, n: usize, out: &mut [f64]) {
        let bytes = data.get(frame * n * 4..(frame + 1) * n * 4).unwrap_or(&[]);
        for (v, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            *v = match self {
                Promise::Counts(_) => {
                    round_half_away(x).clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as f64
                }
                Promise::Floats(_) => f64::from(x),
            };
        }
    }
}

/// See [`Promise::tag`].
pub struct Tag(Promise);

impl core::fmt::Display for Tag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Promise::Counts(k) => write!(f, "BOUNDED {k}"),
            // From a string: formatting an f64 would cost about 13 KB of flash.
            Promise::Floats(_) => write!(f, "BOUNDED_F32 {F32_BOUND_TEXT}"),
        }
    }
}

/// Rounds half away from zero without std.
fn round_half_away(x: f32) -> f32 {
    let t = x as i32 as f32;
    if x - t >= 0.5 {
        t + 1.0
    } else if t - x >= 0.5 {
        t - 1.0
    } else {
        t
    }
}

/// The coder's working memory and one block of stream: a block of frames in and out (`V`
/// values), the coding history (`H` values), all zeros (so in .bss, no flash).
pub struct BoundedMemory<const H: usize, const V: usize> {
    history: [i64; H],
    input: [f64; V],
    decoded: [f64; V],
    stream: [u8; BOUNDED_CAPACITY],
}

impl<const H: usize, const V: usize> BoundedMemory<H, V> {
    /// Zeroed memory (a constant, for a `static`).
    pub const ZERO: Self = BoundedMemory {
        history: [0; H],
        input: [0.0; V],
        decoded: [0.0; V],
        stream: [0; BOUNDED_CAPACITY],
    };
}

/// Runs [`encode`] for `promise` and prints its line as the host test reads it: the tag, the
/// stream in hex, then (when the run succeeded) a newline. `print` writes text to the host
/// (semihosting on both cores).
pub fn encode_printed<const H: usize, const V: usize>(
    memory: &mut BoundedMemory<H, V>,
    contexts: &mut [IntModel],
    data: &[u8],
    frames: usize,
    n: usize,
    promise: Promise,
    print: &mut dyn FnMut(core::fmt::Arguments<'_>),
) -> Result<(), (&'static str, Error)> {
    print(format_args!("{} ", promise.tag()));
    let mut hex = |bytes: &[u8]| {
        for b in bytes {
            print(format_args!("{:02x}", b));
        }
    };
    encode(memory, contexts, data, frames, n, promise, &mut hex)?;
    print(format_args!("\n"));
    Ok(())
}

/// Encodes the `frames` frames of `n` values of `data` (little-endian f32) as `promise` says,
/// handing the stream to `emit` piece by piece: the header and parameters block, then each
/// block as soon as it is coded. Every decoded value is checked against the bound here, on
/// the device. Fails with what failed and why.
pub fn encode<const H: usize, const V: usize>(
    memory: &mut BoundedMemory<H, V>,
    contexts: &mut [IntModel],
    data: &[u8],
    frames: usize,
    n: usize,
    promise: Promise,
    emit: &mut dyn FnMut(&[u8]),
) -> Result<(), (&'static str, Error)> {
    let BoundedMemory {
        history,
        input,
        decoded,
        stream,
    } = memory;
    let layout = Layout::Field {
        height: 1,
        width: n as u32,
    };
    let grid = promise.grid();
    // A field's parameters: 20 bytes of head, one 32-byte grid, 4 for no names.
    let mut params_bytes = [0u8; 64];
    let at = |what: &'static str| move |e| (what, e);
    let len = write_params(
        layout,
        Predictor::None,
        promise.dtype(),
        n,
        &[grid],
        &[],
        &mut params_bytes,
    )
    .map_err(at("bounded params"))?;
    let params = BoundParams::read(&params_bytes[..len]).map_err(at("bounded params"))?;
    let sizes = ScratchSizes::new(&params, 0, ROWS);
    let too_small = (
        "bounded scratch",
        Error::BufferTooSmall {
            needed: sizes.history,
        },
    );
    let (Some(contexts), Some(history)) = (
        contexts.get_mut(..sizes.contexts),
        history.get_mut(..sizes.history),
    ) else {
        return Err(too_small);
    };
    if input.len() < ROWS * n {
        return Err(too_small);
    }
    let scratch = Scratch {
        contexts,
        history,
        mirrors: &mut [],
        codes: &mut [],
        base: &mut [],
        tokens: &mut [],
        raw: &mut [],
        tables: &mut [],
        // No room for a grid cache: each value reads its grid from the parameters.
        grids: &mut [],
        // Rows are coded one by one: no interpolated fields, which hold a whole block.
        volume: &mut [],
    };
    let mut encoder =
        BoundedEncoder::<EdgeModel<'_>>::new(&params, None, scratch, CoderChoice::Adaptive)
            .map_err(at("bounded encoder"))?;
    // The frame count is known in advance, so the header goes first.
    let header = StreamHeader {
        model_id: 0,
        flags: FLAG_ERROR_BOUNDED,
        frame_count: frames as u64,
        frame_len: n as u32,
        dtype: promise.dtype(),
        rank: 2,
        shape: [frames as u64, n as u64, 0, 0],
    };
    header
        .write(&mut stream[..])
        .map_err(at("bounded header"))?;
    let params_end = STREAM_HEADER_LEN
        + write_block(
            BlockKind::BoundParams,
            0,
            &params_bytes[..len],
            &mut stream[STREAM_HEADER_LEN..],
        )
        .map_err(at("bounded params block"))?;
    emit(&stream[..params_end]);
    let mut first = 0;
    while first < frames {
        let count = ROWS.min(frames - first);
        for r in 0..count {
            promise.fill(data, first + r, n, &mut input[r * n..(r + 1) * n]);
        }
        let values = count * n;
        let len = encoder
            .encode_block(&input[..values], &mut decoded[..values], &mut stream[..])
            .map_err(at("bounded encode"))?;
        emit(&stream[..len]);
        // The guarantee, checked on the device: within the bound of the value read.
        let worst = input[..values]
            .iter()
            .zip(&decoded[..values])
            .fold(0f64, |w, (a, b)| w.max(if a > b { a - b } else { b - a }));
        if worst > promise.bound() {
            return Err(("bounded check", Error::Invalid("decoded outside the bound")));
        }
        first += count;
    }
    Ok(())
}
