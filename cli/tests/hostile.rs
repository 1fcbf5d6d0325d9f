//! Hostile and unusual inputs through the CLI (train, fixed-rate and error-bounded compress,
//! decompress): each gives a correct result, or one `error: ...` line and a non-zero exit,
//! and never a changed input, a file under the output's name, or a temporary file left
//! behind. Also: outputs that cannot be written, a full disk, and runs killed midway.

mod common;

use baler::data::{self, RowSource};
use baler_codec::model::quantize::{FloatActivation, FloatModel};
use baler_codec::{DType, HostModel};
use common::{baler, ok, s, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a command should do: succeed, or fail with one line containing the text.
#[derive(Clone, Copy, Debug)]
enum Want {
    Works,
    Fails(&'static str),
}
use Want::{Fails, Works};

/// The same failure for train, fixed-rate and error-bounded compress.
fn all(error: &'static str) -> [Want; 3] {
    [Fails(error); 3]
}

/// Tiny and quick trainings: the point is the input, not the model.
const TRAIN: [&str; 8] = [
    "--hidden",
    "4",
    "--latent",
    "1",
    "--epochs",
    "1",
    "--qat-epochs",
    "0",
];

/// The absolute bound of the error-bounded runs: integers come back exactly under it.
const BOUND: &str = "0.25";

/// A `.npy` file: a header for `descr` and `shape`, then `body`.
fn npy(descr: &str, shape: &[usize], fortran: bool, body: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// `values` as a `.npy` of `rows` rows of the element type `descr`.
fn typed(descr: &str, rows: usize, values: &[f64]) -> Vec<u8> {
    let body: Vec<u8> = values
        .iter()
        .flat_map(|&v| match descr {
            "|i1" => (v as i8).to_le_bytes().to_vec(),
            "<i2" => (v as i16).to_le_bytes().to_vec(),
            "<i4" => (v as i32).to_le_bytes().to_vec(),
            "<i8" => (v as i64).to_le_bytes().to_vec(),
            "|u1" => (v as u8).to_le_bytes().to_vec(),
            "<u2" => (v as u16).to_le_bytes().to_vec(),
            "<u4" => (v as u32).to_le_bytes().to_vec(),
            "<u8" => (v as u64).to_le_bytes().to_vec(),
            "<f2" => half::f16::from_f64(v).to_le_bytes().to_vec(),
            "<f4" => (v as f32).to_le_bytes().to_vec(),
            _ => v.to_le_bytes().to_vec(),
        })
        .collect();
    npy(descr, &[rows, values.len() / rows], false, &body)
}

/// `rows x columns` small integers (exact in every element type), `put` overriding some.
fn table(rows: usize, columns: usize, put: &[(usize, f64)]) -> Vec<f64> {
    let mut v: Vec<f64> = (0..rows * columns)
        .map(|i| ((i * 37 + i / columns * 11) % 101) as f64)
        .collect();
    for &(i, x) in put {
        v[i] = x;
    }
    v
}

/// 20 rows of 4 float64 values, `put` overriding some; the file and the values.
fn f64s(put: &[(usize, f64)]) -> (Vec<u8>, Vec<f64>) {
    let values = table(20, 4, put);
    (typed("<f8", 20, &values), values)
}

/// `values` (10 rows of 4) with `names` as an `.npz`, written by our own writer.
fn npz(values: &[f64], names: &[String]) -> Vec<u8> {
    let dir = temp_dir(&format!("npz-{}", names.concat().len()));
    let set = data::Dataset {
        values: values.iter().map(|&v| v as f32).collect(),
        shape: vec![values.len() / 4, 4],
        dtype: DType::F64,
        names: names.to_vec(),
    };
    data::write(&dir.join("names.npz"), &set).unwrap();
    let bytes = std::fs::read(dir.join("names.npz")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes
}

/// One hostile input and what each command does with it.
struct Case {
    file: &'static str,
    bytes: Vec<u8>,
    /// The values the file means (the error-bounded round trip must give them back).
    values: Vec<f64>,
    /// Column names the error-bounded round trip must keep (`None`: not checked).
    names: Option<Vec<String>>,
    /// Inputs of the model used for fixed-rate compress.
    model_inputs: usize,
    /// Train, fixed-rate compress, error-bounded compress.
    wants: [Want; 3],
}

/// A table of cases: `file, (bytes, values) => wants;`
macro_rules! cases {
    ($($file:expr, $data:expr => $wants:expr;)*) => {
        vec![$({
            let (bytes, values) = $data;
            Case { file: $file, bytes, values, names: None, model_inputs: 4, wants: $wants }
        }),*]
    };
}

fn cases() -> Vec<Case> {
    let none = |bytes: Vec<u8>| (bytes, Vec::new());
    let nan = f64::NAN;
    let model_only = |e| [Fails(e), Fails(e), Works];
    #[rustfmt::skip]
    let mut cases = cases! {
        "empty.npy", none(vec![]) => all("not a .npy array");
        "empty.csv", none(vec![]) => all("empty file");
        "empty.npz", none(vec![]) => all("not an .npz archive");
        "garbage.npy", none(b"\x93NUMPY\x01\x00\xff\xff{".to_vec()) => all("not a .npy array");
        "truncated.npy", none(npy("<f8", &[10, 4], false, &[0; 100])) => all("");
        "one_dim.npy", (npy("<f8", &[4], false, &[0; 32]), vec![0.0; 4]) => [Fails("a model learns from a 2-D table"), Fails("model expects 4"), Works];
        "zero_rows.npy", none(npy("<f8", &[0, 4], false, &[])) => [Fails("no data"), Fails("no data"), Works];
        "header_only.csv", none(b"a,b,c,d\n".to_vec()) => [Fails("no data"), Fails("no data"), Works];
        "one_row.npy", (typed("<f8", 1, &[1.5, -2.0, 3.0, 4.0]), vec![1.5, -2.0, 3.0, 4.0]) => [Works; 3];
        "constant.npy", (typed("<f8", 50, &[3.25; 200]), vec![3.25; 200]) => [Works; 3];
        "nan.npy", f64s(&[(14, nan)]) => model_only("NaN at row 3, column 2");
        "inf.npy", f64s(&[(5, f64::NEG_INFINITY)]) => model_only("-inf at row 1, column 1");
        "huge.npy", f64s(&[(8, 1e300), (9, -1.7e308)]) => model_only("1e300, beyond float32's range");
        "subnormal.npy", f64s(&[(3, 5e-324), (7, -2.2e-310)]) => [Works; 3];
        "big_int64.npy", none(typed("<i8", 20, &table(20, 4, &[(6, 2f64.powi(60))]))) => all("beyond 2^53");
        "bool.npy", none(npy("|b1", &[2, 2], false, &[0, 1, 1, 0])) => all("unsupported element type '|b1'");
        "complex.npy", none(npy("<c8", &[1, 1], false, &[0; 8])) => all("unsupported element type '<c8'");
        "fortran.npy", none(npy("<f8", &[3, 4], true, &[0; 96])) => all("Fortran");
        "wide.npy", (typed("<f8", 20, &table(20, 6, &[])), table(20, 6, &[]))
            => [Works, Fails("frames of 6 values, but the model"), Works];
        "not_a_number.csv", none(b"a,b,c,d\n1,2,3,4\n3,x,5,6\n".to_vec()) => all("row 2 column 1: 'x' is not a number");
        "ragged.csv", none(b"a,b,c,d\n1,2,3,4\n3\n".to_vec()) => all("found record with 1 fields");
        "data.txt", none(b"1,2\n".to_vec()) => all("unknown data format");
    };
    // Every integer width and float16 widen to a type that holds each value exactly.
    for (file, descr) in [
        ("int8.npy", "|i1"),
        ("int16.npy", "<i2"),
        ("int32.npy", "<i4"),
        ("int64.npy", "<i8"),
        ("uint8.npy", "|u1"),
        ("uint16.npy", "<u2"),
        ("uint32.npy", "<u4"),
        ("uint64.npy", "<u8"),
        ("float16.npy", "<f2"),
        ("float32.npy", "<f4"),
    ] {
        let values = table(20, 4, &[]);
        cases.extend(cases! { file, (typed(descr, 20, &values), values) => [Works; 3]; });
    }
    let values = table(30, 1, &[]);
    cases.extend(cases! { "one_column.npy", (typed("<f8", 30, &values), values) => [Works; 3]; });
    cases.last_mut().unwrap().model_inputs = 1;
    // Odd names: error-bounded streams keep them; a model keeps one name per line, so a
    // line break is refused by train (fixed-rate streams take their names from the model).
    let values = table(10, 4, &[]);
    let odd: Vec<String> = ["é∑ unicode 🦀", "a,b", "quo\"te'", "new\nline"]
        .map(String::from)
        .to_vec();
    let mut csv = String::from("\"é∑ unicode 🦀\",\"a,b\",\"quo\"\"te'\",\"new\nline\"\n");
    for row in values.chunks(4) {
        csv += &(row.iter().map(f64::to_string).collect::<Vec<_>>().join(",") + "\n");
    }
    // Long names: 1,000 characters fit everywhere; over 65,535 bytes no bounded stream holds.
    let long: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(999))).collect();
    let longest = ["y".repeat(70_000), "a".into(), "b".into(), "c".into()];
    let line_break = [Fails("has a line break"), Works, Works];
    for (file, bytes, names, wants) in [
        (
            "odd_names.npz",
            npz(&values, &odd),
            Some(odd.clone()),
            line_break,
        ),
        ("odd_names.csv", csv.into_bytes(), Some(odd), line_break),
        (
            "long_names.npz",
            npz(&values, &long),
            Some(long),
            [Works; 3],
        ),
        (
            "longest_name.npz",
            npz(&values, &longest),
            None,
            [Works, Works, Fails("longer than 65535")],
        ),
    ] {
        cases.extend(cases! { file, (bytes, values.clone()) => wants; });
        cases.last_mut().unwrap().names = names;
    }
    cases
}

/// Whether a path exists, and its bytes and modification time when it is a readable file.
type State = (bool, Option<(Vec<u8>, std::time::SystemTime)>);

fn state(path: &Path) -> State {
    let file = std::fs::read(path)
        .ok()
        .and_then(|b| Some((b, std::fs::metadata(path).ok()?.modified().ok()?)));
    (path.exists(), file)
}

/// Temporary files (`*.tmp`) in `dir`.
fn temps(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// Runs `args` with `go` and checks the outcome against `want` and the rules every run obeys:
/// the input is as it was; a failure prints one `error:` line, exits non-zero and leaves the
/// output as it was (absent, mostly); no temporary file is left beside the output.
fn check(go: impl Fn(&[&str]) -> Output, args: &[&str], want: Want) {
    let path = |flag: &str| Path::new(args[args.iter().position(|a| *a == flag).unwrap() + 1]);
    let (input, output) = (path("--input"), path("--output"));
    let (input_before, output_before) = (state(input), state(output));
    let run = go(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let what = format!("{args:?}");
    if input != output {
        assert_eq!(state(input), input_before, "{what}: the input changed");
    }
    match want {
        Works => assert!(run.status.success() && output.exists(), "{what}: {stderr}"),
        Fails(expected) => {
            assert!(!run.status.success(), "{what} succeeded");
            let lines: Vec<&str> = stderr.trim_end().lines().collect();
            assert!(
                lines.len() == 1 && lines[0].starts_with("error: ") && lines[0].contains(expected),
                "{what}: expected one line with '{expected}', got: {stderr}"
            );
            assert_eq!(state(output), output_before, "{what}: the output changed");
        }
    }
    for dir in [output.parent().unwrap(), output] {
        assert!(temps(dir).is_empty(), "{what}: left {:?}", temps(dir));
    }
}

/// All values of a data file at full precision, and its names.
fn read_all(path: &Path) -> (Vec<f64>, Vec<String>) {
    let mut source = RowSource::open(path, 1 << 16).unwrap();
    let mut all = Vec::new();
    while let Some(chunk) = source.next_chunk_f64().unwrap() {
        all.extend(chunk);
    }
    (all, source.header.names.clone())
}

/// A random fixed-rate model of `inputs` values, in `dir`.
fn model(dir: &Path, inputs: usize) -> PathBuf {
    let path = dir.join(format!("model{inputs}.blob"));
    if !path.exists() {
        let acts = [FloatActivation::LeakyRelu(0.01)];
        let (float, _) = FloatModel::random(inputs as u64, &[inputs, 4, 2], 8, &acts, 200);
        std::fs::write(&path, float.quantize().unwrap()).unwrap();
    }
    path
}

#[test]
fn hostile_inputs_give_a_result_or_one_clear_error() {
    let dir = temp_dir("hostile-inputs");
    for c in cases() {
        let cdir = dir.join(c.file.replace('.', "_"));
        std::fs::create_dir_all(&cdir).unwrap();
        let input = cdir.join(c.file);
        std::fs::write(&input, &c.bytes).unwrap();
        let [train, fixed, bounded] = c.wants;

        let blob = cdir.join("trained.blob");
        let args = [
            &["train", "--input", s(&input), "--output", s(&blob)][..],
            &TRAIN,
        ]
        .concat();
        check(baler, &args, train);
        let history = blob.with_extension("loss.json");
        assert_eq!(history.exists(), blob.exists(), "{}: history", c.file);
        if blob.exists() {
            HostModel::from_bytes(&std::fs::read(&blob).unwrap()).unwrap();
        }

        let model = model(&dir, c.model_inputs);
        let (m, i) = (s(&model), s(&input));
        let stream = cdir.join("fixed.baler");
        check(
            baler,
            &[
                "compress",
                "--model",
                m,
                "--input",
                i,
                "--output",
                s(&stream),
            ],
            fixed,
        );
        if stream.exists() {
            let out = cdir.join("fixed_out.npy");
            let args = [
                "decompress",
                "--model",
                m,
                "--input",
                s(&stream),
                "--output",
                s(&out),
            ];
            check(baler, &args, Works);
            assert_eq!(read_all(&out).0.len(), c.values.len(), "{}", c.file);
        }

        // Every value back within the bound, NaN and infinities exactly, the names kept.
        let stream = cdir.join("bounded.baler");
        let args = [
            "compress",
            "--input",
            i,
            "--output",
            s(&stream),
            "--error-bound",
            BOUND,
        ];
        check(baler, &args, bounded);
        if stream.exists() {
            let out = cdir.join("bounded_out.npz");
            check(
                baler,
                &["decompress", "--input", s(&stream), "--output", s(&out)],
                Works,
            );
            let (back, names) = read_all(&out);
            assert_eq!(back.len(), c.values.len(), "{}", c.file);
            for (k, (x, y)) in c.values.iter().zip(&back).enumerate() {
                let exact = x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
                assert!(
                    exact || (x - y).abs() <= 0.25,
                    "{} value {k}: {x} -> {y}",
                    c.file
                );
            }
            if let Some(expected) = &c.names {
                assert_eq!(&names, expected, "{}: names", c.file);
            }
        }
    }
}

/// Element types without a stream type come back as one that holds every value exactly.
#[test]
fn narrow_element_types_come_back_in_a_type_that_holds_them() {
    let dir = temp_dir("hostile-types");
    let values = table(8, 2, &[]);
    let (input, stream, out) = (dir.join("in.npy"), dir.join("s.baler"), dir.join("out.npy"));
    for (descr, back) in [
        ("|i1", DType::I16),
        ("|u1", DType::I16),
        ("<u2", DType::I32),
        ("<u4", DType::F64),
        ("<i8", DType::F64),
        ("<u8", DType::F64),
        ("<f2", DType::F32),
    ] {
        std::fs::write(&input, typed(descr, 8, &values)).unwrap();
        let (i, st) = (s(&input), s(&stream));
        ok(baler(&[
            "compress",
            "--input",
            i,
            "--output",
            st,
            "--error-bound",
            "0.1",
        ]));
        ok(baler(&["decompress", "--input", st, "--output", s(&out)]));
        let decoded = data::read(&out).unwrap();
        assert_eq!(decoded.dtype, back, "{descr}");
        let exact: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        assert_eq!(decoded.values, exact, "{descr}");
    }
}

#[test]
fn hostile_streams_are_refused_by_decompress() {
    let dir = temp_dir("hostile-streams");
    let model = model(&dir, 4);
    let input = dir.join("in.npy");
    std::fs::write(&input, f64s(&[]).0).unwrap();
    let good = dir.join("good.baler");
    ok(baler(&[
        "compress",
        "--input",
        s(&input),
        "--output",
        s(&good),
        "--error-bound",
        "0.5",
    ]));
    let bytes = std::fs::read(&good).unwrap();
    let out = dir.join("out.npz");
    for (file, content, expected) in [
        ("empty.baler", Vec::new(), "empty file"),
        (
            "words.baler",
            b"BALS is not a stream, only words".to_vec(),
            "",
        ),
        ("header_only.baler", bytes[..80].to_vec(), ""),
        ("no_end.baler", bytes[..bytes.len() - 3].to_vec(), ""),
        ("data.baler", f64s(&[]).0, "not a baler model or stream"),
    ] {
        let stream = dir.join(file);
        std::fs::write(&stream, &content).unwrap();
        let args = ["decompress", "--input", s(&stream), "--output", s(&out)];
        check(baler, &args, Fails(expected));
        check(
            baler,
            &[&args[..], &["--model", s(&model)]].concat(),
            Fails(expected),
        );
    }
}

/// Train, both compresses and both decompresses of the files `inputs` made, into `output`.
fn writers(dir: &Path, model: &Path, output: &Path) -> Vec<Vec<String>> {
    let (m, o) = (s(model), s(output));
    let [i, b, f] = ["in.npy", "in.baler", "fixed.baler"].map(|f| dir.join(f));
    let [i, b, f] = [s(&i), s(&b), s(&f)];
    let all = [
        [&["train", "--input", i, "--output", o][..], &TRAIN].concat(),
        vec!["compress", "--model", m, "--input", i, "--output", o],
        vec![
            "compress",
            "--input",
            i,
            "--output",
            o,
            "--error-bound",
            "1e-9",
        ],
        vec!["decompress", "--input", b, "--output", o],
        vec!["decompress", "--model", m, "--input", f, "--output", o],
    ];
    all.map(|args| args.into_iter().map(String::from).collect())
        .to_vec()
}

/// `args` as `&str`s.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// An input (`rows` rows of noise), its error-bounded and fixed-rate streams, and the model.
fn inputs(dir: &Path, rows: usize) -> PathBuf {
    let model = model(dir, 4);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<f64> = (0..rows * 4)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    let (input, m) = (dir.join("in.npy"), s(&model));
    std::fs::write(&input, typed("<f8", rows, &noise)).unwrap();
    let (i, b, f) = (s(&input), dir.join("in.baler"), dir.join("fixed.baler"));
    ok(baler(&[
        "compress",
        "--input",
        i,
        "--output",
        s(&b),
        "--error-bound",
        "1e-9",
    ]));
    ok(baler(&[
        "compress",
        "--model",
        m,
        "--input",
        i,
        "--output",
        s(&f),
    ]));
    model
}

/// Outputs that cannot be written: under a regular file, an existing directory, the input
/// itself, and (unless root, who may write anywhere) in a read-only directory.
#[test]
fn unwritable_outputs_fail_cleanly() {
    let dir = temp_dir("hostile-outputs");
    let model = inputs(&dir, 20);
    std::fs::write(dir.join("a_file"), b"x").unwrap();
    std::fs::create_dir_all(dir.join("a_dir.npy")).unwrap();
    let mut outputs = vec![
        (dir.join("a_file/out.npy"), "Not a directory"),
        (dir.join("a_dir.npy"), "Is a directory"),
    ];
    let id = Command::new("id").arg("-u").output().unwrap().stdout;
    if String::from_utf8_lossy(&id).trim() == "0" {
        eprintln!("SKIPPED: the read-only directory case (root may write anywhere)");
    } else {
        use std::os::unix::fs::PermissionsExt;
        let read_only = dir.join("read_only");
        std::fs::create_dir_all(&read_only).unwrap();
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
        outputs.push((read_only.join("out.npy"), "Permission denied"));
    }
    for (output, expected) in outputs {
        for args in writers(&dir, &model, &output) {
            check(baler, &strs(&args), Fails(expected));
        }
    }
    // The output is the input: refused before anything is written.
    for mut args in writers(&dir, &model, Path::new("x")) {
        let input = args[args.iter().position(|a| a == "--input").unwrap() + 1].clone();
        let o = args.iter().position(|a| a == "--output").unwrap() + 1;
        args[o] = input;
        check(baler, &strs(&args), Fails("the output is the input file"));
        // The model, for the commands that take one.
        if let Some(m) = args.iter().position(|a| a == "--model") {
            args[o] = args[m + 1].clone();
            check(baler, &strs(&args), Fails("the output is the model file"));
        }
    }
}

/// `sh` running `baler args` with files capped at `kib` KiB (RLIMIT_FSIZE) and SIGXFSZ
/// ignored, so that a write past the cap fails with EFBIG instead of killing the process.
fn capped(kib: usize, args: &[&str]) -> Output {
    // `ulimit -f` counts 512-byte blocks in POSIX sh, 1 KiB ones in bash: 2 x kib or kib KiB.
    let script = format!("trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"", kib * 2);
    let mut sh = Command::new("sh");
    sh.args(["-c", &script, env!("CARGO_BIN_EXE_baler")]);
    sh.args(args).output().expect("run sh")
}

/// A 16 KiB tmpfs at `dir`, unmounted on drop; `None` where mounting is not permitted.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let mut mount = Command::new("mount");
        mount.args(["-t", "tmpfs", "-o", "size=16k", "tmpfs", s(dir)]);
        let mounted = mount.stderr(Stdio::null()).status();
        mounted
            .is_ok_and(|st| st.success())
            .then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A disk that fills midway through compress or decompress (the model of train is smaller
/// than the limits, and is written the same way).
#[test]
fn a_full_disk_fails_cleanly() {
    let dir = temp_dir("hostile-full");
    // 16,000 rows of noise: ~500 KB, and streams over the 16 KiB below.
    let model = inputs(&dir, 16_000);
    let capped_dir = dir.join("capped");
    std::fs::create_dir_all(&capped_dir).unwrap();
    let out = capped_dir.join("out.npy");
    for args in writers(&dir, &model, &out).into_iter().skip(1) {
        check(|a| capped(16, a), &strs(&args), Fails("File too large"));
    }
    match Tmpfs::mount(&dir.join("tmpfs")) {
        Some(fs) => {
            let out = fs.0.join("out.npy");
            for args in writers(&dir, &model, &out).into_iter().skip(1) {
                check(baler, &strs(&args), Fails("No space left"));
            }
        }
        None => eprintln!("SKIPPED: a full tmpfs (mount is not permitted here); the cap covers it"),
    }
}

/// Starts `baler args`, waits until `ready`, and kills it (SIGKILL); false when it ended
/// before.
fn kill_when(args: &[&str], ready: impl Fn() -> bool) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baler"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baler");
    let start = Instant::now();
    while !ready() && start.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    // Reaped, so that the process is gone and its temporary file counts as stale.
    !child.wait().unwrap().success()
}

/// Size of the first temporary file in `dir`.
fn temp_len(dir: &Path) -> Option<u64> {
    let first = temps(dir).into_iter().next()?;
    Some(std::fs::metadata(dir.join(first)).ok()?.len())
}

#[test]
fn killed_runs_leave_no_output_and_a_rerun_completes() {
    let dir = temp_dir("hostile-killed");
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // Compress ~96 MB of float64 (1.5 M rows of 8), killed once 100 KB are written.
    let model = model(&dir, 8);
    let (input, stream) = (dir.join("big.npy"), out_dir.join("big.baler"));
    let rows = 1_500_000;
    let body: Vec<u8> = (0..rows * 8)
        .flat_map(|i| (((i * 7919) % 1000) as f64 * 1e-3).to_le_bytes())
        .collect();
    std::fs::write(&input, npy("<f8", &[rows, 8], false, &body)).unwrap();
    drop(body);
    let args = [
        "compress",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&stream),
    ];
    let modified = std::fs::metadata(&input).unwrap().modified().unwrap();
    if kill_when(&args, || temp_len(&out_dir).is_some_and(|n| n > 100_000)) {
        assert!(
            !stream.exists(),
            "a killed compress left {}",
            stream.display()
        );
        assert_eq!(temps(&out_dir).len(), 1, "the killed run's temporary file");
    } else {
        eprintln!("NOTE: compress ended before it could be killed");
    }
    assert_eq!(
        std::fs::metadata(&input).unwrap().modified().unwrap(),
        modified
    );
    std::fs::remove_file(&input).unwrap();
    // A rerun completes and removes the killed run's temporary file.
    std::fs::write(&input, typed("<f8", 100, &table(100, 8, &[]))).unwrap();
    ok(baler(&args));
    assert!(temps(&out_dir).is_empty(), "left {:?}", temps(&out_dir));

    // Train: killed midway through its epochs, then run again to completion.
    let hzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/hzz.npz");
    let blob = out_dir.join("model.blob");
    let train = |epochs| {
        let args = [
            "train",
            "--input",
            s(&hzz),
            "--output",
            s(&blob),
            "--epochs",
            epochs,
        ];
        [
            &args[..],
            &["--hidden", "16", "--latent", "8", "--qat-epochs", "0"],
        ]
        .concat()
    };
    let started = Instant::now();
    let midway = || temp_len(&out_dir).is_some() && started.elapsed() > Duration::from_millis(300);
    assert!(kill_when(&train("100000"), midway), "100000 epochs ended");
    assert!(!blob.exists() && !blob.with_extension("loss.json").exists());
    assert_eq!(temps(&out_dir).len(), 2, "the killed run's temporary files");
    ok(baler(&train("2")));
    HostModel::from_bytes(&std::fs::read(&blob).unwrap()).unwrap();
    assert!(blob.with_extension("loss.json").exists());
    assert!(temps(&out_dir).is_empty(), "left {:?}", temps(&out_dir));
}
