//! Error-bounded coding throughput of the codec alone (no file I/O, one thread), in MB/s of
//! raw float64 input: the model-free path on the shared collider events (per-column grids)
//! and CFD frames (one grid, Lorenzo prediction), the CFD frames with the learned field
//! predictor (`cfd-learned`, weights fitted once outside the timing), and the events with
//! column relations (`hzz-relations`, chosen once outside the timing), at 1e-2, 1e-3 and
//! 1e-4 x range.
//! Run: `cargo bench --bench bounded_throughput`. Needs `../shared/data`; skips without it.
//! The whole-tool comparison with SZ3, ZFP and zstd is `scripts/compare-bounded.sh`.

use baler_codec::bounded::{
    code_block, code_residual_block, decode_residuals, params_len, write_params, BlockBuffers,
    BoundParams, ColumnGrid, Layout, Predictor, RowState, HISTORY_ROWS,
};
use baler_codec::intcode::IntModel;
use baler_codec::range::RangeEncoder;
use baler_codec::stream::BlockKind;
use baler_codec::tabled::{self, TabledEncoder, Tables};
use baler_codec::{DType, HostModel};
use baler_rs::data::RowSource;
use baler_trainer::{learned, relations};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

fn load(path: &Path) -> Option<(Vec<usize>, Vec<f64>)> {
    let mut source = RowSource::open(path, 1 << 20).ok()?;
    let mut all = Vec::new();
    while let Some(chunk) = source.next_chunk_f64().ok()? {
        all.extend(chunk);
    }
    Some((source.header.shape.clone(), all))
}

fn grids(values: &[f64], columns: usize, r: f64) -> Vec<ColumnGrid> {
    (0..columns)
        .map(|c| {
            let col = values.iter().skip(c).step_by(columns);
            let (lo, hi) = col.fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let bound = r * (hi - lo);
            ColumnGrid {
                offset: if hi > lo { 0.0 } else { lo },
                step: (2.0 * bound).max(f64::MIN_POSITIVE),
                bound,
                context: None,
                relation: None,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let sets = [("hzz", "hzz.npz"), ("cfd", "CFD_animation.npz")];
    let mut group = c.benchmark_group("bounded");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(10);
    for (name, file) in sets {
        let Some((shape, values)) = load(&dir.join(file)) else {
            eprintln!("skipping {name}: {} not found", dir.join(file).display());
            continue;
        };
        let n: usize = shape[1..].iter().product();
        let layout = if shape.len() == 2 {
            Layout::Table
        } else {
            Layout::Field {
                height: shape[1] as u32,
                width: shape[2] as u32,
            }
        };
        let columns = if layout == Layout::Table { n } else { 1 };
        group.throughput(Throughput::Bytes((values.len() * 8) as u64));
        for (r, learned) in [1e-2, 1e-3, 1e-4]
            .into_iter()
            .flat_map(|r| [(r, false), (r, true)])
        {
            let g = grids(&values, columns, r);
            let mut g = g;
            let (name, predictor) = match (layout, learned) {
                (_, false) => (name.to_string(), Predictor::None),
                (Layout::Field { height, width }, true) => {
                    let fit = learned::fit(&values, height as usize, width as usize, &g[0]);
                    (format!("{name}-learned"), Predictor::Learned(fit.unwrap()))
                }
                (Layout::Table, true) => {
                    relations::choose(&values, &mut g);
                    (format!("{name}-relations"), Predictor::Relations)
                }
            };
            let mut bytes = vec![0u8; params_len(layout, &predictor, n, &[])];
            write_params(layout, predictor, DType::F64, n, &g, &[], &mut bytes).unwrap();
            let params = BoundParams::read(&bytes).unwrap();
            let mut models = vec![IntModel::default(); params.contexts(0)];
            let mut history = vec![0i64; HISTORY_ROWS * n];
            let mut mirrors = vec![0f64; params.mirror_len()];
            let mut buffers = BlockBuffers {
                state: RowState::new(&params, 0, &mut models, &mut history, &mut mirrors).unwrap(),
                codes: &mut [],
                base: &mut [],
            };
            let mut out = vec![0f64; values.len()];
            let mut payload = vec![0u8; values.len() * 16];
            // Fields are coded as compress codes them: under per-block tables.
            let tabled = tabled::applies(&params);
            let (mut tokens, mut raw) = (vec![0u16; values.len()], vec![0u8; values.len() * 9]);
            let mut tables = Box::new(Tables::EMPTY);
            let mut encode = |payload: &mut [u8]| {
                if tabled {
                    let mut enc = TabledEncoder::new(&mut tokens, &mut raw);
                    code_residual_block(
                        &mut enc,
                        &params,
                        &mut buffers.state,
                        Some(&values),
                        &mut out,
                    )
                    .unwrap();
                    return enc.finish(payload).unwrap();
                }
                let mut enc = RangeEncoder::new(payload);
                code_block::<_, HostModel<'_>>(
                    &mut enc,
                    &params,
                    None,
                    &mut buffers,
                    Some(&values),
                    &mut out,
                )
                .unwrap();
                enc.finish().unwrap()
            };
            // Encoded once outside the timing, so a filter that skips the encode bench
            // still decodes a real stream.
            let len = encode(&mut payload);
            let encoded = payload[..len].to_vec();
            group.bench_function(BenchmarkId::new(format!("{name}/encode"), r), |b| {
                b.iter(|| black_box(encode(&mut payload)))
            });
            group.bench_function(BenchmarkId::new(format!("{name}/decode"), r), |b| {
                b.iter(|| {
                    let kind = if tabled {
                        BlockKind::TabledResiduals
                    } else {
                        BlockKind::Residuals
                    };
                    decode_residuals::<HostModel<'_>>(
                        kind,
                        &encoded,
                        &params,
                        None,
                        &mut buffers,
                        &mut tables,
                        &mut out,
                    )
                    .unwrap();
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

// No plots: criterion's plotters backend needs system fonts, which a bare machine lacks.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
