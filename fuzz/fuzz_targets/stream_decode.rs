#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; a panic, overflow, timeout or out-of-memory is a bug.
    let _ = baler_fuzz::stream_decode(data);
});
