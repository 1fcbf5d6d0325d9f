//! Encode and decode throughput of the codec (MB/s of f32 input; frames/s = MB/s / frame bytes).
//!
//! Two model shapes: Baler's tabular autoencoder (31 -> 200 -> 100 -> 50 -> 8 and back) and a
//! small edge model (48 -> 32 -> 16 and back). Run: `cargo bench --bench codec_throughput`.

use baler_codec::quantize::{FloatActivation, FloatModel};
use baler_codec::stream::{block_len, decode_block, encode_block, read_block};
use baler_codec::{EdgeModel, HostModel, Model};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const FRAMES: usize = 1024;

fn bench_model<const L: usize, const W: usize>(
    c: &mut Criterion,
    name: &str,
    model: &Model<'_, L, W>,
    frames: &[f32],
) {
    let (n, z) = (model.input_len(), model.latent_len());
    let count = frames.len() / n;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes((frames.len() * 4) as u64));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);

    let mut codes = vec![0i16; count * z];
    group.bench_function(BenchmarkId::new("encode_frame", count), |b| {
        b.iter(|| {
            for (frame, out) in frames.chunks_exact(n).zip(codes.chunks_exact_mut(z)) {
                model.encode_frame(black_box(frame), out).unwrap();
            }
        })
    });
    let mut decoded = vec![0f32; frames.len()];
    group.bench_function(BenchmarkId::new("decode_frame", count), |b| {
        b.iter(|| {
            for (code, out) in codes.chunks_exact(z).zip(decoded.chunks_exact_mut(n)) {
                model.decode_frame(black_box(code), out).unwrap();
            }
        })
    });
    let mut block = vec![0u8; block_len(model, count).unwrap()];
    group.bench_function(BenchmarkId::new("encode_block", count), |b| {
        b.iter(|| encode_block(model, black_box(frames), &mut block).unwrap())
    });
    group.bench_function(BenchmarkId::new("decode_block", count), |b| {
        b.iter(|| {
            let (parsed, _) = read_block(model, black_box(&block), 0).unwrap();
            decode_block(model, &parsed, &mut decoded).unwrap();
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

criterion_group!(benches, codec_throughput);
criterion_main!(benches);
