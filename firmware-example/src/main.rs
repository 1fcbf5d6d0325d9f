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
use baler_codec::bounded::{IntModel, FIELD_CLASSES, HISTORY_ROWS};
#[cfg(not(feature = "bounded"))]
use baler_codec::{DType, Decoder, EdgeModel, Encoder, StreamHeader};
#[cfg(feature = "bounded")]
use bounded_run::{BoundedMemory, Promise, PROMISES, ROWS};
use core::cell::RefCell;
use cortex_m::interrupt::{self, Mutex};
#[cfg(not(feature = "bounded"))]
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprint, hprintln};
#[cfg(not(feature = "bounded"))]
use heapless::spsc::Queue;
use panic_semihosting as _;

#[cfg(feature = "bounded")]
mod bounded_run;
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
#[cfg(not(feature = "bounded"))]
const FRAMES_PER_BLOCK: u32 = 5;
/// Room for the whole encoded stream.
#[cfg(not(feature = "bounded"))]
const STREAM_CAPACITY: usize = 2048;
/// The error-bounded run's memory: one block of frames in and out and the coding history.
#[cfg(feature = "bounded")]
type Memory = BoundedMemory<{ HISTORY_ROWS * FRAME_LEN }, { ROWS * FRAME_LEN }>;

#[cfg(feature = "bounded")]
static BOUNDED_MEMORY: Mutex<RefCell<Memory>> = Mutex::new(RefCell::new(Memory::ZERO));

/// The adaptive coding contexts: zero bits (.bss, no flash), reset by the encoder at the start
/// of every block.
#[cfg(feature = "bounded")]
static CONTEXTS: Mutex<RefCell<[IntModel; FIELD_CLASSES]>> =
    Mutex::new(RefCell::new([IntModel::STORAGE; FIELD_CLASSES]));

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
        for promise in PROMISES {
            bounded(frames, n, promise);
        }
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

/// Error-bounded coding next to the sensor: the frames as i16 ADC counts, every value within
/// `k` counts (`k = 0`: lossless), each frame a row predicted from the frame before
/// (model-free, the adaptive coder), in static memory (no heap). Emits the stream; the
/// host test decodes it and re-encodes it with the host codec, byte for byte.
#[cfg(feature = "bounded")]
fn bounded(frames: usize, n: usize, promise: Promise) {
    interrupt::free(|cs| {
        let mut memory = BOUNDED_MEMORY.borrow(cs).borrow_mut();
        let mut contexts = CONTEXTS.borrow(cs).borrow_mut();
        let mut print = |text: core::fmt::Arguments<'_>| hprint!("{}", text);
        if let Err((what, e)) = bounded_run::encode_printed(
            &mut memory,
            &mut contexts[..],
            FRAMES,
            frames,
            n,
            promise,
            &mut print,
        ) {
            fail(what, e);
        }
    });
}

/// Times the error-bounded encoding of all frames (within 0 and within 2 counts) against a
/// delay loop of known length, for instructions per value under QEMU `-icount`.
#[cfg(feature = "bounded")]
fn measure_bounded(frames: usize, n: usize, syst: &mut cortex_m::peripheral::SYST) {
    const REPS: usize = 8;
    const DELAY: u32 = 200_000;
    let mut spent = [0u32; 3];
    for (slot, promise) in spent.iter_mut().zip(PROMISES) {
        *slot = ticks(syst, || {
            interrupt::free(|cs| {
                let mut memory = BOUNDED_MEMORY.borrow(cs).borrow_mut();
                let mut contexts = CONTEXTS.borrow(cs).borrow_mut();
                for _ in 0..REPS {
                    let contexts = &mut contexts[..];
                    let _ = bounded_run::encode(
                        &mut memory,
                        contexts,
                        FRAMES,
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
