//! The `baler` command line's library: the commands behind the verbs, the figures and the
//! HTML report. Compressing and decompressing go through the `baler` library, training
//! through `baler-train`; this crate only parses, prints and draws.
#![forbid(unsafe_code)]

pub mod commands;
pub mod plot;
pub mod report;
pub mod same_size;
