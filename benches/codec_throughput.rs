//! Encode and decode throughput of the codec, in MB/s (10^6 bytes per second) of f32 input
//! (encode) or f32 output (decode); frames/s = MB/s / frame bytes (124 B for the tabular
//! model, 192 B for the edge model), or 1024 frames / the time per iteration.
//!
//! Two model shapes, both with 8-bit codes and LeakyReLU(0.01), random weights calibrated on
//! the frames they are run on: Baler's tabular autoencoder (31 -> 200 -> 100 -> 50 -> 8 and
//! back, as a `HostModel`) and a small edge model (48 -> 32 -> 16 and back, as an `EdgeModel`
//! and, for comparison, as a `HostModel`). Each runs `encode_frame` and `decode_frame` over a
//! batch of 1024 frames, and `encode_block` / `read_block` + `decode_block` over one 1024-frame
//! stream block. Run: `cargo bench --bench codec_throughput`.

use baler_codec::model::quantize::{FloatActivation, FloatModel};
use baler_codec::stream::{block_len, decode_block, encode_block, read_block};
use baler_codec::{EdgeModel, HostModel, Model};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// Frames per batch and per stream block.
const FRAMES: usize = 1024;

fn bench_model<const L: usize, const W: usize>(
    c: &mut Criterion,
    name: &str,
    model: &Model<'_, L, W>,
    frames: &[f32],
) {
    let (n, z) = (model.input_len(), model.latent_len());
    assert_eq!(
        model.output_len(),
        n,
        "an autoencoder's output mirrors its input"
    );
    let count = frames.len() / n;

    // Inputs of every benchmark are prepared up front, so each one also runs alone
    // (`cargo bench --bench codec_throughput -- decode_block`).
    let mut codes = vec![0i16; count * z];
    for (frame, out) in frames.chunks_exact(n).zip(codes.chunks_exact_mut(z)) {
        model.encode_frame(frame, out).unwrap();
    }
    let mut block = vec![0u8; block_len(model, count).unwrap()];
    let written = encode_block(model, frames, &mut block).unwrap();
    assert_eq!(written, block.len());
    let mut decoded = vec![0f32; frames.len()];

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::BytesDecimal((frames.len() * 4) as u64));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);

    let mut scratch = vec![0i16; count * z];
    group.bench_function(BenchmarkId::new("encode_frame", count), |b| {
        b.iter(|| {
            for (frame, out) in frames.chunks_exact(n).zip(scratch.chunks_exact_mut(z)) {
                model.encode_frame(black_box(frame), out).unwrap();
            }
            black_box(&mut scratch);
        })
    });
    group.bench_function(BenchmarkId::new("decode_frame", count), |b| {
        b.iter(|| {
            for (code, out) in codes.chunks_exact(z).zip(decoded.chunks_exact_mut(n)) {
                model.decode_frame(black_box(code), out).unwrap();
            }
            black_box(&mut decoded);
        })
    });
    let mut out = vec![0u8; block.len()];
    group.bench_function(BenchmarkId::new("encode_block", count), |b| {
        b.iter(|| encode_block(model, black_box(frames), &mut out).unwrap())
    });
    group.bench_function(BenchmarkId::new("decode_block", count), |b| {
        b.iter(|| {
            let (parsed, _) = read_block(model, black_box(&block), 0).unwrap();
            decode_block(model, &parsed, &mut decoded).unwrap();
            black_box(&mut decoded);
        })
    });
    group.finish();
}

fn codec_throughput(c: &mut Criterion) {
    let leaky = [FloatActivation::LeakyRelu(0.01)];

    let (tabular, data) = FloatModel::random(1, &[31, 200, 100, 50, 8], 8, &leaky, FRAMES);
    let blob = tabular.quantize().unwrap();
    let model = HostModel::from_bytes(&blob).unwrap();
    bench_model(c, "baler_tabular_31-200-100-50-8", &model, &data);

    let (edge, data) = FloatModel::random(2, &[48, 32, 16], 8, &leaky, FRAMES);
    let blob = edge.quantize().unwrap();
    let model = EdgeModel::from_bytes(&blob).unwrap();
    bench_model(c, "edge_48-32-16", &model, &data);
    let model = HostModel::from_bytes(&blob).unwrap();
    bench_model(c, "edge_48-32-16_host_capacity", &model, &data);
}

// No plots: criterion's plotters backend needs system fonts, which a bare machine lacks.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = codec_throughput
}
criterion_main!(benches);
