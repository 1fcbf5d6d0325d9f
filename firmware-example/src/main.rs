//! The baler codec next to the sensor: a Cortex-M4F loads a model blob from flash, takes
//! frames from an interrupt-driven producer (standing in for ADC readout) through a heapless
//! queue, encodes them into the codec's stream format, emits the stream over semihosting,
//! decodes it back and emits a checksum of the decoded values. Host tests compare both with
//! the host codec byte for byte.
//!
//! The second build (`--features bounded`) is the error-bounded image alone: no model, the
//! frames coded as i16 ADC counts losslessly and within 2 counts (`BALER_FRAME_LEN` values a
//! frame, 31 by default).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[cfg(feature = "bounded")]
use baler_codec::bounded::{
    write_params, BoundParams, BoundedEncoder, CoderChoice, ColumnGrid, IntModel, Layout,
    Predictor, Scratch, ScratchSizes, FIELD_CLASSES, HISTORY_ROWS,
};
#[cfg(feature = "bounded")]
use baler_codec::stream::{write_block, BlockKind, FLAG_ERROR_BOUNDED, STREAM_HEADER_LEN};
use baler_codec::{DType, EdgeModel, StreamHeader};
#[cfg(not(feature = "bounded"))]
use baler_codec::{Decoder, Encoder};
use core::cell::RefCell;
use cortex_m::interrupt::{self, Mutex};
#[cfg(not(feature = "bounded"))]
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprint, hprintln};
#[cfg(not(feature = "bounded"))]
use heapless::spsc::Queue;
use panic_semihosting as _;

mod stack;

/// The model blob, in flash; the codec reads it in place.
#[cfg(not(feature = "bounded"))]
static MODEL: &[u8] = include_bytes!(env!("FIRMWARE_MODEL_PATH"));
/// Values per frame of the error-bounded build (it has no model to read it from).
#[cfg(feature = "bounded")]
const FRAME_LEN: usize = parse_usize(env!("FIRMWARE_FRAME_LEN"));

/// A decimal number at compile time.
#[cfg(feature = "bounded")]
const fn parse_usize(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut value, mut i) = (0usize, 0);
    while i < bytes.len() {
        assert!(
            bytes[i].is_ascii_digit(),
            "BALER_FRAME_LEN must be a number"
        );
        value = value * 10 + (bytes[i] - b'0') as usize;
        i += 1;
    }
    value
}
/// Test frames (little-endian f32), in flash: the stand-in for the ADC.
static FRAMES: &[u8] = include_bytes!(env!("FIRMWARE_FRAMES_PATH"));

/// Largest frame this firmware buffers.
#[cfg(not(feature = "bounded"))]
const MAX_FRAME: usize = 64;
/// Frames per stream block (the host test and the golden stream use the same).
const FRAMES_PER_BLOCK: u32 = 5;
/// Room for the whole encoded stream.
#[cfg(not(feature = "bounded"))]
const STREAM_CAPACITY: usize = 2048;
/// Room for one error-bounded block (or the header and parameters): each block is emitted as
/// soon as it is coded, so the stream never has to fit in RAM. 5 frames of 31 counts take
/// about 170 bytes here; counts on an integer grid are never escaped, so 1 KiB leaves six
/// times that, and a block that still did not fit would stop the run with an error.
#[cfg(feature = "bounded")]
const BOUNDED_CAPACITY: usize = 1024;
/// Frames per error-bounded block.
#[cfg(feature = "bounded")]
const ROWS: usize = FRAMES_PER_BLOCK as usize;
/// The error bounds the error-bounded run codes with, in ADC counts (0: lossless).
#[cfg(feature = "bounded")]
const BOUNDS_IN_COUNTS: [u16; 2] = [0, 2];
/// The absolute bound of the f32 run, in the frames' own units, and as printed (formatting
/// an f64 would cost about 10 KB of flash).
#[cfg(feature = "bounded")]
const F32_BOUND: f64 = 0.05;
#[cfg(feature = "bounded")]
const F32_BOUND_TEXT: &str = "0.05";

/// What an error-bounded run promises: ADC counts within `k` counts (0: lossless), or the
/// f32 frames themselves within an absolute bound.
#[cfg(feature = "bounded")]
#[derive(Clone, Copy)]
enum Promise {
    Counts(u16),
    Floats(f64),
}

#[cfg(feature = "bounded")]
impl Promise {
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

    /// Frame `frame` of the test data as this run codes it.
    fn fill(self, frame: usize, n: usize, out: &mut [f64]) {
        match self {
            Promise::Counts(_) => counts(frame, n, out),
            Promise::Floats(_) => floats(frame, n, out),
        }
    }
}

/// The error-bounded coder's working memory and the stream it writes, in RAM reserved at link
/// time (static, not on the stack): a block of frames in and out, the coding history, and the
/// stream. All zeros, so it costs no flash (.bss).
#[cfg(feature = "bounded")]
struct BoundedMemory {
    history: [i64; HISTORY_ROWS * FRAME_LEN],
    input: [f64; ROWS * FRAME_LEN],
    decoded: [f64; ROWS * FRAME_LEN],
    stream: [u8; BOUNDED_CAPACITY],
}

#[cfg(feature = "bounded")]
static BOUNDED_MEMORY: Mutex<RefCell<BoundedMemory>> = Mutex::new(RefCell::new(BoundedMemory {
    history: [0; HISTORY_ROWS * FRAME_LEN],
    input: [0.0; ROWS * FRAME_LEN],
    decoded: [0.0; ROWS * FRAME_LEN],
    stream: [0; BOUNDED_CAPACITY],
}));

/// The adaptive coding contexts (reset by the encoder at every block; their initial value
/// lives in flash, .data).
#[cfg(feature = "bounded")]
static CONTEXTS: Mutex<RefCell<[IntModel; FIELD_CLASSES]>> =
    Mutex::new(RefCell::new([IntModel::INITIAL; FIELD_CLASSES]));

#[cfg(not(feature = "bounded"))]
type Frame = heapless::Vec<f32, MAX_FRAME>;

/// Frames handed from the "ADC interrupt" (SysTick) to the main loop.
#[cfg(not(feature = "bounded"))]
static QUEUE: Mutex<RefCell<Queue<Frame, 4>>> = Mutex::new(RefCell::new(Queue::new()));
/// Index of the next frame the producer reads, and the frame length.
#[cfg(not(feature = "bounded"))]
static PRODUCER: Mutex<RefCell<(usize, usize)>> = Mutex::new(RefCell::new((0, 0)));

#[cfg(not(feature = "bounded"))]
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Stops the core for good (after QEMU's exit request, or on hardware where there is none).
fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

fn fail(what: &str, error: baler_codec::Error) -> ! {
    hprintln!("ERROR {}: {}", what, error);
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

#[entry]
fn main() -> ! {
    stack::paint();
    let mut core = match cortex_m::Peripherals::take() {
        Some(p) => p,
        None => halt(),
    };
    #[cfg(not(feature = "bounded"))]
    fixed_rate(&mut core);
    #[cfg(feature = "bounded")]
    {
        let n = FRAME_LEN;
        let frames = FRAMES.len() / 4 / n;
        hprintln!("FRAMES {} of {} values", frames, n);
        for k in BOUNDS_IN_COUNTS {
            bounded(frames, n, Promise::Counts(k));
        }
        bounded(frames, n, Promise::Floats(F32_BOUND));
        hprintln!("STACK peak {} bytes", stack::peak());
        measure_bounded(frames, n, &mut core.SYST);
    }
    debug::exit(debug::EXIT_SUCCESS);
    halt()
}

/// The fixed-rate run: frames from the "ADC interrupt" encoded with the model, the stream
/// emitted, decoded back and checksummed, then the instruction counts.
#[cfg(not(feature = "bounded"))]
fn fixed_rate(core: &mut cortex_m::Peripherals) {
    let model = match EdgeModel::from_bytes(MODEL) {
        Ok(m) => m,
        Err(e) => fail("model", e),
    };
    let n = model.input_len();
    let frames = FRAMES.len() / 4 / n;
    hprintln!(
        "MODEL {:016x} {} -> {} codes of {} bits",
        model.id(),
        n,
        model.latent_len(),
        model.code_bits()
    );
    interrupt::free(|cs| *PRODUCER.borrow(cs).borrow_mut() = (0, n));

    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(20_000);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();
    let header = match StreamHeader::new(&model, DType::F32, &[frames as u64, n as u64]) {
        Ok(h) => h,
        Err(e) => fail("header", e),
    };
    let mut stream = [0u8; STREAM_CAPACITY];
    let mut encoder = match Encoder::new(&model, header, FRAMES_PER_BLOCK, &mut stream) {
        Ok(e) => e,
        Err(e) => fail("encoder", e),
    };
    let mut encoded = 0;
    while encoded < frames {
        let next = interrupt::free(|cs| QUEUE.borrow(cs).borrow_mut().dequeue());
        match next {
            Some(frame) => {
                if let Err(e) = encoder.push_frame(&frame) {
                    fail("encode", e);
                }
                encoded += 1;
            }
            None => cortex_m::asm::wfi(),
        }
    }
    core.SYST.disable_counter();
    let len = match encoder.finish() {
        Ok(len) => len,
        Err(e) => fail("finish", e),
    };
    let stream = &stream[..len];
    hprint!("STREAM ");
    for chunk in stream.chunks(32) {
        for b in chunk {
            hprint!("{:02x}", b);
        }
    }
    hprintln!();

    let mut decoder = match Decoder::new(&model, stream) {
        Ok(d) => d,
        Err(e) => fail("decoder", e),
    };
    let mut digest = CRC32.digest();
    let mut out = [0f32; MAX_FRAME];
    let mut decoded = 0;
    loop {
        match decoder.next_frame(&mut out[..n]) {
            Ok(true) => {
                for v in &out[..n] {
                    digest.update(&v.to_le_bytes());
                }
                decoded += 1;
            }
            Ok(false) => break,
            Err(e) => fail("decode", e),
        }
    }
    hprintln!("DECODED {} frames CRC32 {:08x}", decoded, digest.finalize());
    hprintln!("STACK peak {} bytes", stack::peak());
    measure(&model, &mut core.SYST);
}

/// The test frames as 16-bit ADC counts (each value rounded and clamped to i16), the way a
/// readout board sees its channels.
#[cfg(feature = "bounded")]
fn counts(frame: usize, n: usize, out: &mut [f64]) {
    let bytes = FRAMES
        .get(frame * n * 4..(frame + 1) * n * 4)
        .unwrap_or(&[]);
    for (v, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        *v = libm_round(x).clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as f64;
    }
}

/// The test frames as they are (f32, widened exactly).
#[cfg(feature = "bounded")]
fn floats(frame: usize, n: usize, out: &mut [f64]) {
    let bytes = FRAMES
        .get(frame * n * 4..(frame + 1) * n * 4)
        .unwrap_or(&[]);
    for (v, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *v = f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
}

/// Rounds half away from zero without std.
#[cfg(feature = "bounded")]
fn libm_round(x: f32) -> f32 {
    let t = x as i32 as f32;
    if x - t >= 0.5 {
        t + 1.0
    } else if t - x >= 0.5 {
        t - 1.0
    } else {
        t
    }
}

/// Error-bounded coding next to the sensor: the frames as i16 ADC counts, every value within
/// `k` counts (`k = 0`: lossless), each frame a row predicted from the frame before
/// (model-free, the adaptive coder), in static memory (no heap). Emits the stream; the
/// host test decodes it and re-encodes it with the host codec, byte for byte.
#[cfg(feature = "bounded")]
fn bounded(frames: usize, n: usize, promise: Promise) {
    interrupt::free(|cs| {
        let mut memory = BOUNDED_MEMORY.borrow(cs).borrow_mut();
        let mut contexts = CONTEXTS.borrow(cs).borrow_mut();
        match promise {
            Promise::Counts(k) => hprint!("BOUNDED {} ", k),
            Promise::Floats(_) => hprint!("BOUNDED_F32 {} ", F32_BOUND_TEXT),
        }
        bounded_in(
            &mut memory,
            &mut contexts[..],
            frames,
            n,
            promise,
            &mut |bytes| {
                for b in bytes {
                    hprint!("{:02x}", b);
                }
            },
        );
        hprintln!();
    });
}

/// Times the error-bounded encoding of all frames (within 0 and within 2 counts) against a
/// delay loop of known length, for instructions per value under QEMU `-icount`.
#[cfg(feature = "bounded")]
fn measure_bounded(frames: usize, n: usize, syst: &mut cortex_m::peripheral::SYST) {
    const REPS: usize = 8;
    const DELAY: u32 = 200_000;
    let mut spent = [0u32; 3];
    let promises = [
        Promise::Counts(BOUNDS_IN_COUNTS[0]),
        Promise::Counts(BOUNDS_IN_COUNTS[1]),
        Promise::Floats(F32_BOUND),
    ];
    for (slot, promise) in spent.iter_mut().zip(promises) {
        *slot = ticks(syst, || {
            interrupt::free(|cs| {
                let mut memory = BOUNDED_MEMORY.borrow(cs).borrow_mut();
                let mut contexts = CONTEXTS.borrow(cs).borrow_mut();
                for _ in 0..REPS {
                    bounded_in(
                        &mut memory,
                        &mut contexts[..],
                        frames,
                        n,
                        promise,
                        &mut |_| {},
                    );
                }
            })
        });
    }
    let delay = ticks(syst, || cortex_m::asm::delay(DELAY));
    hprintln!(
        "BOUNDED_BENCH reps {} values {} lossless_ticks {} within2_ticks {} f32_ticks {} delay_instructions {} delay_ticks {}",
        REPS,
        frames * n,
        spent[0],
        spent[1],
        spent[2],
        2 * DELAY + 2,
        delay
    );
}

/// Encodes the frames as `promise` says, handing the stream to `emit` piece by piece: the
/// header and parameters block, then each block as soon as it is coded.
#[cfg(feature = "bounded")]
fn bounded_in(
    memory: &mut BoundedMemory,
    contexts: &mut [IntModel],
    frames: usize,
    n: usize,
    promise: Promise,
    emit: &mut dyn FnMut(&[u8]),
) {
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
    let len = match write_params(
        layout,
        Predictor::None,
        promise.dtype(),
        n,
        &[grid],
        &[],
        &mut params_bytes,
    ) {
        Ok(len) => len,
        Err(e) => fail("bounded params", e),
    };
    let params = match BoundParams::read(&params_bytes[..len]) {
        Ok(p) => p,
        Err(e) => fail("bounded params", e),
    };
    let rows = FRAMES_PER_BLOCK as usize;
    let sizes = ScratchSizes::new(&params, 0, rows);
    let (Some(contexts), Some(history)) = (
        contexts.get_mut(..sizes.contexts),
        history.get_mut(..sizes.history),
    ) else {
        fail(
            "bounded scratch",
            baler_codec::Error::BufferTooSmall {
                needed: sizes.history,
            },
        )
    };
    let scratch = Scratch {
        contexts,
        history,
        mirrors: &mut [],
        codes: &mut [],
        base: &mut [],
        tokens: &mut [],
        raw: &mut [],
        tables: None,
    };
    let mut encoder =
        match BoundedEncoder::<EdgeModel<'_>>::new(&params, None, scratch, CoderChoice::Adaptive) {
            Ok(e) => e,
            Err(e) => fail("bounded encoder", e),
        };
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
    if let Err(e) = header.write(&mut stream[..]) {
        fail("bounded header", e);
    }
    let params_end = match write_block(
        BlockKind::BoundParams,
        0,
        &params_bytes[..len],
        &mut stream[STREAM_HEADER_LEN..],
    ) {
        Ok(block) => STREAM_HEADER_LEN + block,
        Err(e) => fail("bounded params block", e),
    };
    emit(&stream[..params_end]);
    let mut first = 0;
    while first < frames {
        let count = rows.min(frames - first);
        for r in 0..count {
            promise.fill(first + r, n, &mut input[r * n..(r + 1) * n]);
        }
        let values = count * n;
        match encoder.encode_block(&input[..values], &mut decoded[..values], &mut stream[..]) {
            Ok(len) => emit(&stream[..len]),
            Err(e) => fail("bounded encode", e),
        }
        // The guarantee, checked on the device: within the bound of the value read.
        let worst = input[..values]
            .iter()
            .zip(&decoded[..values])
            .fold(0f64, |w, (a, b)| w.max(if a > b { a - b } else { b - a }));
        if worst > promise.bound() {
            fail(
                "bounded check",
                baler_codec::Error::Invalid("decoded outside the bound"),
            );
        }
        first += count;
    }
}

/// SysTick ticks spent in `work`, with SysTick as a free-running down-counter.
fn ticks(syst: &mut cortex_m::peripheral::SYST, mut work: impl FnMut()) -> u32 {
    syst.disable_interrupt();
    syst.set_reload(0x00FF_FFFF);
    syst.clear_current();
    syst.enable_counter();
    let start = cortex_m::peripheral::SYST::get_current();
    work();
    let end = cortex_m::peripheral::SYST::get_current();
    syst.disable_counter();
    start.wrapping_sub(end) & 0x00FF_FFFF
}

/// Times encoding and decoding a batch of frames against a delay loop of known length. Under
/// QEMU with `-icount shift=0` time advances per instruction, so the ratio gives instructions
/// per frame (the DWT cycle counter reads 0 in QEMU). The host computes the figures.
#[cfg(not(feature = "bounded"))]
fn measure(model: &EdgeModel<'_>, syst: &mut cortex_m::peripheral::SYST) {
    const REPS: usize = 64;
    const DELAY: u32 = 200_000;
    let n = model.input_len();
    let latent = model.latent_len();
    let mut codes = [0i16; MAX_FRAME];
    let mut frame = [0f32; MAX_FRAME];
    let mut out = [0f32; MAX_FRAME];
    for (v, b) in frame.iter_mut().zip(FRAMES.chunks_exact(4)).take(n) {
        *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    let encode = ticks(syst, || {
        for _ in 0..REPS {
            let _ = model.encode_frame(&frame[..n], &mut codes[..latent]);
        }
    });
    let decode = ticks(syst, || {
        for _ in 0..REPS {
            let _ = model.decode_frame(&codes[..latent], &mut out[..n]);
        }
    });
    let delay = ticks(syst, || cortex_m::asm::delay(DELAY));
    hprintln!(
        "BENCH reps {} encode_ticks {} decode_ticks {} delay_instructions {} delay_ticks {} encoder_macs {} decoder_macs {}",
        REPS,
        encode,
        decode,
        2 * DELAY + 2,
        delay,
        model.encoder_macs(),
        model.decoder_macs()
    );
}

/// The producer: each tick "reads the ADC" (the next test frame) into the queue.
#[cfg(not(feature = "bounded"))]
#[exception]
fn SysTick() {
    interrupt::free(|cs| {
        let mut producer = PRODUCER.borrow(cs).borrow_mut();
        let (next, n) = *producer;
        let bytes = FRAMES.get(next * n * 4..(next + 1) * n * 4);
        let mut queue = QUEUE.borrow(cs).borrow_mut();
        if let (Some(bytes), false) = (bytes, queue.is_full()) {
            let frame: Frame = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if queue.enqueue(frame).is_ok() {
                producer.0 = next + 1;
            }
        }
    });
}

/// A fault ends the run with a failure status instead of hanging. cortex-m-rt requires this
/// handler's signature to be `unsafe fn`; its body does nothing unsafe.
#[allow(unsafe_code)]
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("HARDFAULT at pc {:#010x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    halt()
}
