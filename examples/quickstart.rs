//! Quick start: compress the shipped collider events (`examples/data/hzz.npz`) with a
//! quantized linear autoencoder through the codec's stream format, decompress, and report
//! ratios (with and without the model) and per-column errors.
//!
//! `cargo run --release --example quickstart [-- LATENT CODE_BITS [FILE.npz]]`

use baler_codec::{DType, Decoder, Encoder, HostModel, StreamHeader};
use baler_rs::{data, linear::fit_pca, metrics::column_errors};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let latent: usize = args.first().map_or(Ok(20), |s| s.parse())?;
    let bits: u8 = args.get(1).map_or(Ok(10), |s| s.parse())?;
    let path = args.get(2).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/hzz.npz"),
        PathBuf::from,
    );
    let table = data::read(&path)?;
    let (rows, columns) = (table.rows(), table.row_len());
    println!("{}: {rows} rows x {columns} columns", path.display());

    let float = fit_pca(&table.values, columns, latent, bits);
    let blob = float.quantize()?;
    let model = HostModel::from_bytes(&blob)?;
    println!(
        "model {:016x}: {columns} -> {latent} -> {columns}, {bits}-bit codes, blob {} bytes",
        model.id(),
        blob.len()
    );

    let shape = [rows as u64, columns as u64];
    let header = StreamHeader::new(&model, DType::F64, &shape)?;
    let mut stream = vec![0u8; 68 + rows * (13 + latent * 2 + 16)];
    let mut encoder = Encoder::new(&model, header, 1024, &mut stream)?;
    for row in table.values.chunks_exact(columns) {
        encoder.push_frame(row)?;
    }
    let len = encoder.finish()?;
    stream.truncate(len);

    let mut decoder = Decoder::new(&model, &stream)?;
    let mut out = vec![0f32; columns];
    let mut decoded = Vec::with_capacity(table.values.len());
    while decoder.next_frame(&mut out)? {
        decoded.extend_from_slice(&out);
    }

    let raw = (rows * columns * 8) as f64;
    println!(
        "compressed {} bytes: ratio {:.1} without the model, {:.1} with it (raw float64 {} bytes)",
        stream.len(),
        raw / stream.len() as f64,
        raw / (stream.len() + blob.len()) as f64,
        raw as u64
    );
    println!(
        "{:>6} {:>12} {:>12} {:>12}",
        "column", "max |err|", "RMSE", "max/range"
    );
    let errors = column_errors(&table.values, &decoded, columns);
    for (c, e) in errors.iter().enumerate() {
        println!(
            "{c:>6} {:>12.4} {:>12.4} {:>11.2}%",
            e.max_abs,
            e.rmse,
            100.0 * e.max_relative_to_range()
        );
    }
    let worst = errors
        .iter()
        .map(|e| e.max_relative_to_range())
        .fold(0.0, f64::max);
    println!("worst column: max error {:.2}% of its range", 100.0 * worst);
    Ok(())
}
