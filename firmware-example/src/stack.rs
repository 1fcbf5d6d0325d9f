//! Peak stack measurement for the RAM budget: paint the free stack with a pattern at boot,
//! and at the end find the lowest word that was overwritten.
//!
//! The only unsafe code of the firmware: reading linker symbols and raw RAM words. It touches
//! only the unused stack region between the end of static data and the current stack pointer.
#![allow(unsafe_code)]

use core::ptr::{addr_of, read_volatile, write_volatile};

const PATTERN: u32 = 0x5A5A_A5A5;
/// How much of the free RAM below the stack is painted (QEMU's RAM is much larger).
const PAINTED: usize = 64 * 1024;

extern "C" {
    /// Start of the free RAM after .data, .bss and .uninit (cortex-m-rt's link.x).
    static __sheap: u32;
    /// Initial stack pointer, the top of RAM (cortex-m-rt's link.x).
    static _stack_start: u32;
}

fn region() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken, never their values.
    let bottom = addr_of!(__sheap) as usize;
    let top = addr_of!(_stack_start) as usize;
    (bottom.max(top.saturating_sub(PAINTED)), top)
}

/// Paints the stack below the current stack pointer (minus a safety margin).
pub fn paint() {
    let (bottom, _) = region();
    let sp = cortex_m::register::msp::read() as usize - 64;
    for addr in (bottom..sp).step_by(4) {
        // SAFETY: word-aligned addresses in RAM between the static data and the live stack.
        unsafe { write_volatile(addr as *mut u32, PATTERN) };
    }
}

/// Bytes of stack used at the deepest point since [`paint`].
pub fn peak() -> usize {
    let (bottom, top) = region();
    let mut addr = bottom;
    // SAFETY: reads of word-aligned RAM addresses inside the painted region.
    while addr < top && unsafe { read_volatile(addr as *const u32) } == PATTERN {
        addr += 4;
    }
    top - addr
}
