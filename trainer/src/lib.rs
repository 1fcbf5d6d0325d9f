//! The `baler` command line's library: data files, training, and the commands. Every encode
//! and decode goes through `baler-codec`, the same code the firmware runs.
#![forbid(unsafe_code)]

mod blocks;
pub mod bounded;
pub mod commands;
pub mod data;
pub mod evaluation;
pub mod learned;
pub mod metrics;
pub mod plot;
pub mod relations;
pub mod report;
pub mod tiles;
pub mod train;
pub mod tune;
