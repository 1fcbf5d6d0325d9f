//! Error-bounded coding throughput of the codec alone (no file I/O, one thread), in MB/s of
//! raw float64 input: the model-free path on the shared collider events (per-column grids)
//! and CFD frames (one grid, Lorenzo prediction), the CFD frames with the learned field
//! predictor (`cfd-learned`, weights fitted once outside the timing), the CFD frames and the
//! sparse ash field with multilevel interpolation (`cfd-interpolated`, `ash-interpolated`,
//! the plan fitted once outside the timing), and the events with column relations
//! (`hzz-relations`, chosen once outside the timing), at 1e-2, 1e-3 and 1e-4 x range.
//! Run: `cargo bench --bench bounded_throughput`. Needs `../shared/data`; skips without it.
//! The whole-tool comparison with SZ3, ZFP and zstd is `scripts/compare-bounded.sh`.

use baler::fit::{interpolation, learned, relations};
use baler_codec::bounded::{
    params_len, write_params, BoundParams, BoundedDecoder, BoundedEncoder, CoderChoice, ColumnGrid,
    Layout, Predictor, ScratchBuf, ScratchSizes,
};
use baler_codec::stream::checked_block;
use baler_codec::{DType, HostModel};
use baler_rs::data::RowSource;
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
                per_binade: 0,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let sets = [
        ("hzz", "hzz.npz"),
        ("cfd", "CFD_animation.npz"),
        ("ash", "dev_name_ash.npz"),
    ];
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
        // 0: model-free; 1: learned (fields) or relations (tables); 2: interpolated (fields).
        let variants: &[usize] = match (name, layout) {
            ("ash", _) => &[2],
            (_, Layout::Table) => &[0, 1],
            _ => &[0, 1, 2],
        };
        for (r, variant) in [1e-2, 1e-3, 1e-4]
            .into_iter()
            .flat_map(|r| variants.iter().map(move |&v| (r, v)))
        {
            let g = grids(&values, columns, r);
            let mut g = g;
            let (name, predictor) = match (layout, variant) {
                (_, 0) => (name.to_string(), Predictor::None),
                (Layout::Field { height, width }, 1) => {
                    let fit = learned::fit(&values, height as usize, width as usize, &g[0]);
                    (format!("{name}-learned"), Predictor::Learned(fit.unwrap()))
                }
                (Layout::Field { height, width }, _) => {
                    let plan = interpolation::fit(&values, height as usize, width as usize, &g[0]);
                    (
                        format!("{name}-interpolated"),
                        Predictor::Interpolated(plan.unwrap()),
                    )
                }
                (Layout::Table, _) => {
                    relations::choose(&values, &mut g);
                    (format!("{name}-relations"), Predictor::Relations)
                }
            };
            let mut bytes = vec![0u8; params_len(layout, &predictor, n, &[])];
            write_params(layout, predictor, DType::F64, n, &g, &[], &mut bytes).unwrap();
            let params = BoundParams::read(&bytes).unwrap();
            let rows = values.len() / n;
            let mut scratch = ScratchBuf::new(ScratchSizes::new(&params, 0, rows));
            let mut out = vec![0f64; values.len()];
            // Fields are coded as compress codes them: under per-block tables. Grown once
            // outside the timing, so the timed encode never reallocates.
            let block = scratch
                .encode_block::<HostModel<'_>>(&params, None, CoderChoice::Best, &values, &mut out)
                .unwrap();
            let mut buffer = vec![0u8; block.len() * 2 + 4096];
            group.bench_function(BenchmarkId::new(format!("{name}/encode"), r), |b| {
                b.iter(|| {
                    let mut encoder = BoundedEncoder::<HostModel<'_>>::new(
                        &params,
                        None,
                        scratch.scratch(),
                        CoderChoice::Best,
                    )
                    .unwrap();
                    black_box(
                        encoder
                            .encode_block(&values, &mut out, &mut buffer)
                            .unwrap(),
                    )
                })
            });
            let (sealed, _) = checked_block(&block, 0).unwrap();
            group.bench_function(BenchmarkId::new(format!("{name}/decode"), r), |b| {
                b.iter(|| {
                    let mut decoder = BoundedDecoder::<HostModel<'_>>::new(
                        &params,
                        None,
                        scratch.scratch(),
                        rows,
                    )
                    .unwrap();
                    decoder.decode_block(&sealed, &mut out).unwrap();
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
