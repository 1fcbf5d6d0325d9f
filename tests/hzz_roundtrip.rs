//! The codec on real collider events (`examples/data/hzz.npz`, shipped in the repository):
//! a linear autoencoder through the stream format, with stated error bounds.

use baler_codec::{DType, Decoder, Encoder, HostModel, StreamHeader};
use baler_rs::{data, linear::fit_pca, metrics::column_errors};
use std::path::PathBuf;

fn hzz() -> baler_rs::data::Dataset {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/hzz.npz");
    data::read(&path).expect("examples/data/hzz.npz ships with the repository")
}

fn round_trip(model: &HostModel<'_>, values: &[f32], columns: usize) -> (Vec<f32>, usize) {
    let rows = values.len() / columns;
    let header = StreamHeader::new(model, DType::F64, &[rows as u64, columns as u64]).unwrap();
    let mut stream = vec![0u8; 1 << 20];
    let mut encoder = Encoder::new(model, header, 500, &mut stream).unwrap();
    for row in values.chunks_exact(columns) {
        encoder.push_frame(row).unwrap();
    }
    let len = encoder.finish().unwrap();
    let mut decoder = Decoder::new(model, &stream[..len]).unwrap();
    let mut out = vec![0f32; columns];
    let mut decoded = Vec::new();
    while decoder.next_frame(&mut out).unwrap() {
        decoded.extend_from_slice(&out);
    }
    (decoded, len)
}

#[test]
fn full_rank_linear_model_round_trips_hzz_within_bounds() {
    let table = hzz();
    let (rows, columns) = (table.rows(), table.row_len());
    assert_eq!((rows, columns), (2421, 31));
    let blob = fit_pca(&table.values, columns, columns, 16)
        .quantize()
        .unwrap();
    let model = HostModel::from_bytes(&blob).unwrap();
    let (decoded, len) = round_trip(&model, &table.values, columns);
    assert_eq!(decoded.len(), table.values.len());
    // 31 codes of 16 bits per event instead of 31 float64: 4x, less stream overhead.
    let ratio = (rows * columns * 8) as f64 / len as f64;
    assert!((3.9..4.0).contains(&ratio), "ratio {ratio}");
    // With every component kept, the error is the int8 weight quantization (1/254 of each
    // channel's largest weight) plus 16-bit activations: stated bounds, per column.
    for (c, e) in column_errors(&table.values, &decoded, columns)
        .iter()
        .enumerate()
    {
        assert!(e.max_relative_to_range() < 0.04, "column {c}: {e:?}");
        assert!(e.rmse < 0.005 * e.range, "column {c}: {e:?}");
    }
}

#[test]
fn integer_path_tracks_the_reference_on_hzz() {
    let table = hzz();
    let columns = table.row_len();
    let blob = fit_pca(&table.values, columns, 12, 12).quantize().unwrap();
    let model = HostModel::from_bytes(&blob).unwrap();
    let (decoded, _) = round_trip(&model, &table.values, columns);
    // Reference: f32 network with the same quantized weights, unrounded latent values.
    let mut latent = vec![0f32; 12];
    let mut out = vec![0f32; columns];
    let mut reference = Vec::new();
    for row in table.values.chunks_exact(columns) {
        model.reference_encode(row, &mut latent).unwrap();
        model.reference_decode(&latent, &mut out).unwrap();
        reference.extend_from_slice(&out);
    }
    // Latent codes of 12 bits: the codec's own (activation and code) quantization costs at
    // most 0.5% of any column's range next to the float network.
    let truth = column_errors(&table.values, &reference, columns);
    for (c, e) in column_errors(&reference, &decoded, columns)
        .iter()
        .enumerate()
    {
        assert!(e.max_abs <= 0.005 * truth[c].range, "column {c}: {e:?}");
    }
}
