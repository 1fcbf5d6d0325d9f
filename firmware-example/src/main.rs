//! The baler codec next to the sensor: a Cortex-M4F loads a model blob from flash, takes
//! frames from an interrupt-driven producer (standing in for ADC readout) through a heapless
//! queue, encodes them into the codec's stream format, emits the stream over semihosting,
//! decodes it back and emits a checksum of the decoded values. Host tests compare both with
//! the host codec byte for byte.
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
use baler_codec::{DType, Decoder, EdgeModel, Encoder, StreamHeader};
use core::cell::RefCell;
use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprint, hprintln};
use heapless::spsc::Queue;
use panic_semihosting as _;

mod stack;

/// The model blob, in flash; the codec reads it in place.
static MODEL: &[u8] = include_bytes!(env!("FIRMWARE_MODEL_PATH"));
/// Test frames (little-endian f32), in flash: the stand-in for the ADC.
static FRAMES: &[u8] = include_bytes!(env!("FIRMWARE_FRAMES_PATH"));

/// Largest frame this firmware buffers.
const MAX_FRAME: usize = 64;
/// Frames per stream block (the host test and the golden stream use the same).
const FRAMES_PER_BLOCK: u32 = 5;
/// Room for the whole encoded stream.
const STREAM_CAPACITY: usize = 2048;
/// Room for a whole error-bounded stream of the test frames.
#[cfg(feature = "bounded")]
const BOUNDED_CAPACITY: usize = 4096;
/// The error bounds the error-bounded run codes with, in ADC counts (0: lossless).
#[cfg(feature = "bounded")]
const BOUNDS_IN_COUNTS: [u16; 2] = [0, 2];

/// The error-bounded coder's working memory and the stream it writes, in RAM reserved at link
/// time (static, not on the stack): a block of frames in and out, the coding history, and the
/// stream. All zeros, so it costs no flash (.bss).
#[cfg(feature = "bounded")]
struct BoundedMemory {
    history: [i64; HISTORY_ROWS * MAX_FRAME],
    input: [f64; 5 * MAX_FRAME],
    decoded: [f64; 5 * MAX_FRAME],
    stream: [u8; BOUNDED_CAPACITY],
}

#[cfg(feature = "bounded")]
static BOUNDED_MEMORY: Mutex<RefCell<BoundedMemory>> = Mutex::new(RefCell::new(BoundedMemory {
    history: [0; HISTORY_ROWS * MAX_FRAME],
    input: [0.0; 5 * MAX_FRAME],
    decoded: [0.0; 5 * MAX_FRAME],
    stream: [0; BOUNDED_CAPACITY],
}));

/// The adaptive coding contexts (reset by the encoder at every block; their initial value
/// lives in flash, .data).
#[cfg(feature = "bounded")]
static CONTEXTS: Mutex<RefCell<[IntModel; FIELD_CLASSES]>> =
    Mutex::new(RefCell::new([IntModel::INITIAL; FIELD_CLASSES]));

type Frame = heapless::Vec<f32, MAX_FRAME>;

/// Frames handed from the "ADC interrupt" (SysTick) to the main loop.
static QUEUE: Mutex<RefCell<Queue<Frame, 4>>> = Mutex::new(RefCell::new(Queue::new()));
/// Index of the next frame the producer reads, and the frame length.
static PRODUCER: Mutex<RefCell<(usize, usize)>> = Mutex::new(RefCell::new((0, 0)));

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

    let mut core = match cortex_m::Peripherals::take() {
        Some(p) => p,
        None => halt(),
    };
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
    // The second build (`--features bounded`): error-bounded coding of the same frames.
    #[cfg(feature = "bounded")]
    for k in BOUNDS_IN_COUNTS {
        bounded(frames, n, k);
    }
    hprintln!("STACK peak {} bytes", stack::peak());
    measure(&model, &mut core.SYST);
    debug::exit(debug::EXIT_SUCCESS);
    halt()
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
fn bounded(frames: usize, n: usize, k: u16) {
    interrupt::free(|cs| {
        let mut memory = BOUNDED_MEMORY.borrow(cs).borrow_mut();
        let mut contexts = CONTEXTS.borrow(cs).borrow_mut();
        bounded_in(&mut memory, &mut contexts[..], frames, n, k)
    });
}

#[cfg(feature = "bounded")]
fn bounded_in(
    memory: &mut BoundedMemory,
    contexts: &mut [IntModel],
    frames: usize,
    n: usize,
    k: u16,
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
    let grid = ColumnGrid {
        offset: 0.0,
        step: f64::from(2 * k + 1),
        bound: f64::from(k),
        context: None,
        relation: None,
        per_binade: 0,
    };
    let mut params_bytes = [0u8; 256];
    let len = match write_params(
        layout,
        Predictor::None,
        DType::I16,
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
    let params_end = match write_block(
        BlockKind::BoundParams,
        0,
        &params_bytes[..len],
        &mut stream[STREAM_HEADER_LEN..],
    ) {
        Ok(block) => STREAM_HEADER_LEN + block,
        Err(e) => fail("bounded params block", e),
    };
    let mut at = params_end;
    let mut first = 0;
    while first < frames {
        let count = rows.min(frames - first);
        for r in 0..count {
            counts(first + r, n, &mut input[r * n..(r + 1) * n]);
        }
        let values = count * n;
        match encoder.encode_block(&input[..values], &mut decoded[..values], &mut stream[at..]) {
            Ok(len) => at += len,
            Err(e) => fail("bounded encode", e),
        }
        // The guarantee, checked on the device: within k counts of the ADC's value.
        let worst = input[..values]
            .iter()
            .zip(&decoded[..values])
            .fold(0f64, |w, (a, b)| w.max(if a > b { a - b } else { b - a }));
        if worst > f64::from(k) {
            fail(
                "bounded check",
                baler_codec::Error::Invalid("decoded outside the bound"),
            );
        }
        first += count;
    }
    let header = StreamHeader {
        model_id: 0,
        flags: FLAG_ERROR_BOUNDED,
        frame_count: frames as u64,
        frame_len: n as u32,
        dtype: DType::I16,
        rank: 2,
        shape: [frames as u64, n as u64, 0, 0],
    };
    if let Err(e) = header.write(&mut stream[..]) {
        fail("bounded header", e);
    }
    hprint!("BOUNDED {} ", k);
    for b in &stream[..at] {
        hprint!("{:02x}", b);
    }
    hprintln!();
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
