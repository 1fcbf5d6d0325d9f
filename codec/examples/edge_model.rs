//! Writes a random, calibrated model blob of the given widths and its calibration frames
//! (little-endian f32), for measuring the firmware on model shapes other than the default:
//!
//! ```sh
//! cargo run -p baler-codec --features alloc --example edge_model -- 48,32,16 model.blob frames.f32
//! ```
//!
//! (48 -> 32 -> 16 and back is the size of the CMS HGCAL trigger's autoencoder.) The weights
//! are random: the instruction counts per MAC do not depend on their values.
use baler_codec::model::quantize::{FloatActivation, FloatModel};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [widths, blob_path, frames_path] = args.as_slice() else {
        eprintln!("usage: edge_model WIDTHS(e.g. 48,32,16) MODEL.blob FRAMES.f32");
        std::process::exit(2);
    };
    let widths: Vec<usize> = widths
        .split(',')
        .map(|w| w.parse().expect("widths are numbers"))
        .collect();
    let (model, frames) =
        FloatModel::random(1, &widths, 8, &[FloatActivation::LeakyRelu(0.01)], 32);
    let blob = model.quantize().expect("the model quantizes");
    std::fs::write(blob_path, blob).expect("write the blob");
    let bytes: Vec<u8> = frames.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(frames_path, bytes).expect("write the frames");
}
