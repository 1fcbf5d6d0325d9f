//! The baler codec next to the sensor: a Cortex-M4F loads a model blob from flash, takes
//! frames from an interrupt-driven producer (standing in for ADC readout) through a heapless
//! queue, encodes them into the codec's stream format, emits the stream over semihosting,
//! decodes it back and emits a checksum of the decoded values. Host tests compare both with
//! the host codec byte for byte.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

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
    hprintln!("STACK peak {} bytes", stack::peak());
    measure(&model, &mut core.SYST);
    debug::exit(debug::EXIT_SUCCESS);
    halt()
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
