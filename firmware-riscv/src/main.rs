//! The baler codec on a RISC-V core (`riscv32imac`, QEMU's `virt` machine): the ARM firmware's
//! runs, for the host test to compare byte for byte. The fixed-rate run encodes every test
//! frame with the model and decodes the stream back; the error-bounded runs are the ARM
//! image's own code (`firmware-example/src/bounded_run.rs`). Output over semihosting.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use baler_codec::bounded::{IntModel, FIELD_CLASSES, HISTORY_ROWS};
use baler_codec::{DType, Decoder, EdgeModel, Encoder, StreamHeader};
use riscv_rt::entry;
use riscv_semihosting::{debug, hprint, hprintln};

#[path = "../../firmware-example/src/bounded_run.rs"]
mod bounded_run;
use bounded_run::{BoundedMemory, PROMISES, ROWS};

/// The model blob and the test frames (little-endian f32), as in the ARM firmware.
static MODEL: &[u8] = include_bytes!(env!("FIRMWARE_MODEL_PATH"));
static FRAMES: &[u8] = include_bytes!(env!("FIRMWARE_FRAMES_PATH"));

/// Largest frame buffered, and the fixed-rate stream's block size and room (as on ARM).
const MAX_FRAME: usize = 64;
const FRAMES_PER_BLOCK: u32 = 5;
const STREAM_CAPACITY: usize = 2048;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Stops the hart for good (after QEMU's exit request, or on hardware where there is none).
fn halt() -> ! {
    loop {
        riscv::asm::wfi();
    }
}

fn fail(what: &str, error: baler_codec::Error) -> ! {
    hprintln!("ERROR {}: {}", what, error);
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("PANIC {}", info);
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

#[entry]
fn main() -> ! {
    let model = EdgeModel::from_bytes(MODEL).unwrap_or_else(|e| fail("model", e));
    let n = model.input_len();
    let frames = FRAMES.len() / 4 / n;
    hprintln!(
        "MODEL {:016x} {} -> {} codes of {} bits",
        model.id(),
        n,
        model.latent_len(),
        model.code_bits()
    );
    let header = StreamHeader::new(&model, DType::F32, &[frames as u64, n as u64])
        .unwrap_or_else(|e| fail("header", e));
    let mut stream = [0u8; STREAM_CAPACITY];
    let mut encoder = Encoder::new(&model, header, FRAMES_PER_BLOCK, &mut stream)
        .unwrap_or_else(|e| fail("encoder", e));
    let mut frame = [0f32; MAX_FRAME];
    for f in 0..frames {
        let bytes = &FRAMES[f * n * 4..(f + 1) * n * 4];
        for (v, b) in frame.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        encoder
            .push_frame(&frame[..n])
            .unwrap_or_else(|e| fail("encode", e));
    }
    let len = encoder.finish().unwrap_or_else(|e| fail("finish", e));
    let stream = &stream[..len];
    hprint!("STREAM ");
    for b in stream {
        hprint!("{:02x}", b);
    }
    hprintln!();
    let mut decoder = Decoder::new(&model, stream).unwrap_or_else(|e| fail("decoder", e));
    let mut digest = CRC32.digest();
    let (mut out, mut decoded) = ([0f32; MAX_FRAME], 0);
    while decoder
        .next_frame(&mut out[..n])
        .unwrap_or_else(|e| fail("decode", e))
    {
        for v in &out[..n] {
            digest.update(&v.to_le_bytes());
        }
        decoded += 1;
    }
    hprintln!("DECODED {} frames CRC32 {:08x}", decoded, digest.finalize());

    // The error-bounded runs, the same code as the ARM image's, in memory on the stack.
    let mut memory = BoundedMemory::<{ HISTORY_ROWS * MAX_FRAME }, { ROWS * MAX_FRAME }>::ZERO;
    let mut contexts = [IntModel::INITIAL; FIELD_CLASSES];
    let mut print = |text: core::fmt::Arguments<'_>| hprint!("{}", text);
    for promise in PROMISES {
        if let Err((what, e)) = bounded_run::encode_printed(
            &mut memory,
            &mut contexts,
            FRAMES,
            frames,
            n,
            promise,
            &mut print,
        ) {
            fail(what, e);
        }
    }
    debug::exit(debug::EXIT_SUCCESS);
    halt()
}
