//! Data already on a power-of-two grid (values quantized at the source: ADC counts scaled by
//! 2^-k, fields packed with binary scale factors): a bound finer than that grid codes it on the
//! grid itself, so the values come back exactly (numerically: -0.0 comes back as 0.0) and a finer bound costs nothing more; lossless
//! columns of such floats are coded as integers on it instead of stored raw.

use baler::{compress, decompress, Array, Bound, ColumnKey, Options, Values};

/// A smooth 20 x 200 x 150 field rounded to multiples of 1/8 (range about 206).
fn eighths_field() -> Array {
    let (t, ny, nx) = (20, 200, 150);
    let mut values = Vec::with_capacity(t * ny * nx);
    for k in 0..t {
        for j in 0..ny {
            for i in 0..nx {
                let (x, y) = (6.0 * j as f64 / ny as f64, 4.0 * i as f64 / nx as f64);
                let v = 100.0 * x.sin() * y.cos() + 0.3 * k as f64;
                values.push((v * 8.0).round() / 8.0);
            }
        }
    }
    Array::new(&[t, ny, nx], Values::F64(values)).unwrap()
}

fn round_trip(array: &Array, options: &Options<'_>) -> (usize, Vec<f64>) {
    let stream = compress(array, options).unwrap();
    let back = decompress(&stream, None).unwrap();
    assert_eq!(back.shape(), array.shape());
    (stream.len(), back.values().to_f64())
}

#[test]
fn a_bound_finer_than_the_data_grid_keeps_every_value_and_costs_nothing_more() {
    let array = eighths_field();
    let original = array.values().to_f64();
    // 1e-4 x range is 0.02 and 1e-6 x range 0.0002: both below the grid's 0.125.
    let (coarse, decoded) = round_trip(&array, &Options::bounded(Bound::Relative(1e-4)));
    let (fine, decoded_fine) = round_trip(&array, &Options::bounded(Bound::Relative(1e-6)));
    for (what, decoded) in [("1e-4", &decoded), ("1e-6", &decoded_fine)] {
        let changed: Vec<(f64, f64)> = original
            .iter()
            .zip(decoded.iter())
            // Numerically exact: a grid brings -0.0 back as 0.0, as integer columns always have.
            .filter(|(x, y)| x != y)
            .map(|(&x, &y)| (x, y))
            .collect();
        assert!(
            changed.is_empty(),
            "{what}: {} values not back exactly, e.g. {:?}",
            changed.len(),
            &changed[..changed.len().min(5)]
        );
    }
    assert_eq!(
        coarse, fine,
        "a bound below the data's grid changed the stream size"
    );
    // 4.8 MB of f64: on the grid the stream is far below the 1e-6 stream of a step of 2e-6 x
    // range (about 520 kB before the grid was used).
    assert!(fine < 100_000, "stream of {fine} bytes");
}

#[test]
fn a_bound_coarser_than_the_data_grid_is_kept() {
    let array = eighths_field();
    let original = array.values().to_f64();
    let eps = 1e-2 * 205.75;
    let (_, decoded) = round_trip(&array, &Options::bounded(Bound::Relative(1e-2)));
    let worst = original
        .iter()
        .zip(&decoded)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst <= eps, "max |error| {worst} over the bound {eps}");
    assert!(
        worst > 0.125,
        "a coarse bound should not code exactly (max error {worst})"
    );
}

#[test]
fn lossless_floats_on_a_grid_are_coded_not_stored_raw() {
    // A table: column 0 on a 2^-10 grid, column 1 arbitrary floats (stored raw).
    let rows = 4000;
    let mut values = Vec::with_capacity(2 * rows);
    for r in 0..rows {
        let smooth = (r as f64 * 0.01).sin() * 50.0;
        values.push((smooth * 1024.0).round() / 1024.0);
        values.push(smooth * std::f64::consts::PI);
    }
    let array = Array::new(&[rows, 2], Values::F64(values.clone())).unwrap();
    let lossless = [
        (ColumnKey::Index(0), Bound::Lossless),
        (ColumnKey::Index(1), Bound::Lossless),
    ];
    let options = Options {
        columns: &lossless,
        ..Options::bounded(Bound::Relative(1e-3))
    };
    let (size, decoded) = round_trip(&array, &options);
    for (i, (x, y)) in values.iter().zip(&decoded).enumerate() {
        assert!(x == y, "value {i}: {x:e} -> {y:e}");
    }
    // Column 1 alone is 8 bytes a value raw; column 0 on its grid needs far fewer.
    assert!(
        size < rows * 8 + rows * 4,
        "stream of {size} bytes for {rows} rows"
    );
}
