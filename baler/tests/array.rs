//! The in-memory API on arrays of every rank: round trips within the bound (absolute and
//! range-relative, 1e-2 to 1e-5), shape, element type and names restored, and typed errors
//! for bad input. 1-D series are predicted along the series: a smooth one codes in far fewer
//! bytes than zstd takes losslessly.

use baler::{compress, decompress, Array, Bound, Error, Options, Values};

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

/// A sine with a little noise, `len` samples.
fn noisy_sine(len: usize) -> Vec<f64> {
    let mut noise = Noise(7);
    (0..len)
        .map(|i| (i as f64 * 0.003).sin() * 100.0 + 0.01 * noise.next())
        .collect()
}

/// A random walk, `len` steps.
fn random_walk(len: usize) -> Vec<f64> {
    let mut noise = Noise(11);
    let mut x = 0.0;
    (0..len)
        .map(|_| {
            x += noise.next();
            x
        })
        .collect()
}

fn range(values: &[f64]) -> f64 {
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    hi - lo
}

/// Compresses and decompresses `array`; checks shape, type and names, and every value within
/// `bound` of the original. Returns the stream's length.
fn round_trip(array: &Array, bound: Bound, what: &str) -> usize {
    let stream =
        compress(array, &Options::bounded(bound)).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = decompress(&stream, None).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(back.shape(), array.shape(), "{what}");
    assert_eq!(back.dtype(), array.dtype(), "{what}");
    assert_eq!(back.names(), array.names(), "{what}");
    let (x, y) = (array.values().to_f64(), back.values().to_f64());
    let eps = match bound {
        Bound::Absolute(e) => e,
        Bound::Relative(r) => r * range(&x),
        other => panic!("{what}: this check is for absolute and relative bounds, not {other:?}"),
    };
    for (i, (a, b)) in x.iter().zip(&y).enumerate() {
        assert!(
            (a - b).abs() <= eps,
            "{what}: value {i}: {a} -> {b}, bound {eps}"
        );
    }
    stream.len()
}

#[test]
fn series_round_trip_within_every_bound() {
    for (name, series) in [("sine", noisy_sine(8_000)), ("walk", random_walk(8_000))] {
        for r in [1e-2, 1e-3, 1e-4, 1e-5] {
            let f64s = Array::new(&[series.len()], Values::F64(series.clone())).unwrap();
            round_trip(&f64s, Bound::Relative(r), &format!("{name} f64 {r}"));
            round_trip(&f64s, Bound::Absolute(r), &format!("{name} f64 abs {r}"));
            let f32s: Vec<f32> = series.iter().map(|&v| v as f32).collect();
            let f32s = Array::new(&[series.len()], Values::F32(f32s)).unwrap();
            round_trip(&f32s, Bound::Relative(r), &format!("{name} f32 {r}"));
        }
        // ADC counts: integers, lossless at a bound below one count, within k counts above.
        let counts: Vec<i16> = series.iter().map(|&v| (v * 100.0) as i16).collect();
        let counts = Array::new(&[counts.len()], Values::I16(counts)).unwrap();
        round_trip(
            &counts,
            Bound::Absolute(0.5),
            &format!("{name} i16 lossless"),
        );
        round_trip(&counts, Bound::Absolute(3.0), &format!("{name} i16 +-3"));
    }
}

#[test]
fn a_smooth_series_codes_in_far_fewer_bytes_than_zstd() {
    let series = noisy_sine(50_000);
    let raw: Vec<u8> = series.iter().flat_map(|x| x.to_le_bytes()).collect();
    let zstd = zstd::bulk::compress(&raw, 19).unwrap().len();
    let array = Array::new(&[series.len()], Values::F64(series)).unwrap();
    for r in [1e-3, 1e-4, 1e-5] {
        let ours = round_trip(&array, Bound::Relative(r), "sine");
        eprintln!("noisy sine, 50,000 f64: baler at {r} x range {ours} bytes, zstd -19 lossless {zstd} bytes");
        assert!(
            ours * 4 < zstd,
            "at {r}: {ours} bytes against zstd's {zstd}"
        );
    }
}

#[test]
fn short_series_and_special_values() {
    for len in [1, 2, 3, 17, 4097] {
        let series = noisy_sine(len);
        let array = Array::new(&[len], Values::F64(series)).unwrap();
        round_trip(&array, Bound::Absolute(1e-3), &format!("{len} values"));
    }
    // NaN and infinities come back as they were; a huge value is stored raw.
    let mut series = noisy_sine(1000);
    series[10] = f64::NAN;
    series[500] = f64::INFINITY;
    series[999] = 1e300;
    let array = Array::new(&[1000], Values::F64(series.clone())).unwrap();
    let stream = compress(&array, &Options::bounded(Bound::Absolute(1e-3))).unwrap();
    let Values::F64(back) = decompress(&stream, None).unwrap().into_values() else {
        panic!("f64 in, f64 out")
    };
    assert!(back[10].is_nan());
    assert_eq!(back[500], f64::INFINITY);
    assert_eq!(back[999], 1e300);
    for (i, (a, b)) in series.iter().zip(&back).enumerate() {
        if a.is_finite() {
            assert!((a - b).abs() <= 1e-3, "value {i}");
        }
    }
}

#[test]
fn arrays_of_rank_two_to_eight() {
    let shapes: [&[usize]; 6] = [
        &[40, 7],
        &[6, 10, 12],
        &[3, 4, 10, 12],
        &[2, 3, 4, 5, 6],
        &[2, 2, 3, 2, 5, 4],
        &[2, 1, 2, 3, 1, 2, 5, 4],
    ];
    for shape in shapes {
        let len: usize = shape.iter().product();
        let values: Vec<f64> = (0..len)
            .map(|i| ((i % 97) as f64 * 0.1).sin() + (i / 97) as f64)
            .collect();
        let array = Array::new(shape, Values::F64(values)).unwrap();
        for r in [1e-2, 1e-4] {
            round_trip(&array, Bound::Relative(r), &format!("{shape:?} at {r}"));
        }
    }
}

#[test]
fn a_table_keeps_its_names_and_per_column_bounds() {
    let rows = 500;
    let mut noise = Noise(3);
    let values: Vec<f32> = (0..rows * 3)
        .map(|i| match i % 3 {
            0 => (noise.next() * 100.0) as f32,
            1 => (noise.next() * 0.01) as f32,
            _ => (i / 3 % 4) as f32,
        })
        .collect();
    let names = vec!["px".to_string(), "eta".to_string(), "n_jets".to_string()];
    let table = Array::new(&[rows, 3], Values::F32(values.clone()))
        .unwrap()
        .with_names(names)
        .unwrap();
    let stream = compress(&table, &Options::bounded(Bound::Relative(1e-3))).unwrap();
    let back = decompress(&stream, None).unwrap();
    assert_eq!(back.names(), table.names());
    let Values::F32(decoded) = back.values() else {
        panic!("f32 in, f32 out")
    };
    for c in 0..3 {
        let column: Vec<f64> = values
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&v| f64::from(v))
            .collect();
        let eps = 1e-3 * range(&column);
        for (r, &x) in column.iter().enumerate() {
            let y = f64::from(decoded[r * 3 + c]);
            assert!(
                (x - y).abs() <= eps,
                "column {c} row {r}: {x} -> {y}, bound {eps}"
            );
        }
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(matches!(
        Array::new(&[2, 3], Values::F64(vec![0.0; 5])),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        Array::new(&[1; 9], Values::F64(vec![0.0])),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        Array::new(&[], Values::F64(vec![])),
        Err(Error::Input { .. })
    ));
    let array = Array::new(&[100], Values::F64(noisy_sine(100))).unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = compress(&array, &Options::bounded(Bound::Absolute(bad))).unwrap_err();
        assert!(matches!(err, Error::Options(_)), "{bad}: {err:?}");
    }
    // No bound and no model: nothing to compress with.
    assert!(matches!(
        compress(&array, &Options::default()),
        Err(Error::Options(_))
    ));
    // Not a stream, a damaged one, a cut one: codec errors, never a panic.
    let stream = compress(&array, &Options::bounded(Bound::Absolute(1e-3))).unwrap();
    let codec = |bytes: &[u8]| decompress(bytes, None).unwrap_err().codec_error();
    assert_eq!(
        codec(b"not a stream at all, clearly"),
        Some(baler_codec::Error::BadMagic)
    );
    for cut in [10, 68, 80, stream.len() - 1] {
        assert!(decompress(&stream[..cut], None).is_err(), "cut at {cut}");
    }
    let mut damaged = stream.clone();
    let last = damaged.len() - 10;
    damaged[last] ^= 0x10;
    assert!(matches!(
        codec(&damaged),
        Some(baler_codec::Error::CrcMismatch { .. })
    ));
    assert!(matches!(decompress(&[], None), Err(Error::Input { .. })));
}

#[test]
fn the_in_memory_api_is_safe_from_many_threads() {
    let series = noisy_sine(20_000);
    let array = Array::new(&[series.len()], Values::F64(series)).unwrap();
    let expected = compress(&array, &Options::bounded(Bound::Relative(1e-4))).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let stream = compress(&array, &Options::bounded(Bound::Relative(1e-4))).unwrap();
                assert_eq!(stream, expected, "the same input gives the same bytes");
                assert_eq!(decompress(&stream, None).unwrap().shape(), &[20_000]);
            });
        }
    });
}

#[test]
fn a_2d_array_can_be_coded_as_a_field_of_rows() {
    // A smooth image with some texture: rows predicted from the rows above beat independent
    // columns by far.
    let (h, w) = (120, 160);
    let mut noise = Noise(5);
    let pixels: Vec<f64> = (0..h * w)
        .map(|i| {
            let (y, x) = ((i / w) as f64, (i % w) as f64);
            (0.05 * x).sin() * (0.03 * y).cos() * 50.0 + 0.01 * noise.next()
        })
        .collect();
    let image = Array::new(&[h, w], Values::F64(pixels.clone())).unwrap();
    let bound = Bound::Relative(1e-3);
    let table = compress(&image, &Options::bounded(bound)).unwrap();
    let as_field = Options {
        field: true,
        ..Options::bounded(bound)
    };
    let field = compress(&image, &as_field).unwrap();
    eprintln!(
        "{h} x {w} image at 1e-3: {} bytes as a table, {} as a field",
        table.len(),
        field.len()
    );
    assert!(field.len() * 2 < table.len());
    let back = decompress(&field, None).unwrap();
    assert_eq!(back.shape(), &[h, w]);
    let eps = 1e-3 * range(&pixels);
    let decoded = back.values().to_f64();
    assert!(pixels
        .iter()
        .zip(&decoded)
        .all(|(a, b)| (a - b).abs() <= eps));
}

#[test]
fn arrays_without_rows_round_trip() {
    for shape in [&[0][..], &[0, 31], &[0, 4, 5], &[0, 2, 2, 2, 2]] {
        let array = Array::new(shape, Values::F32(vec![])).unwrap();
        let stream = compress(&array, &Options::bounded(Bound::Relative(1e-3))).unwrap();
        let back = decompress(&stream, None).unwrap();
        assert_eq!(back.shape(), shape);
        assert_eq!(back.values(), &Values::F32(vec![]));
    }
    assert!(matches!(
        Array::new(&[4, 0], Values::F64(vec![])),
        Err(Error::Input { .. })
    ));
}
