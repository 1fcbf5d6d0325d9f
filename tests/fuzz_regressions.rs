//! Replays the fuzzers' findings and a few interesting corpus entries on stable Rust, through
//! the same harness functions the cargo-fuzz targets call (`fuzz/src/lib.rs`, included here).
//!
//! `tests/fuzz-regressions/<target>/<outcome>-<name>`: `ok-*` must decode, `err-*` must be
//! refused with an error, `crash-*` / `oom-*` / `timeout-*` (inputs that once crashed, ran out
//! of memory or hung) must be refused with a typed error, quickly. Nothing may panic.
//!
//! `BALER_FUZZ_SEEDS_DIR=DIR cargo test --test fuzz_regressions` also writes the seed corpus
//! (`DIR/<target>/seed-N`), as `scripts/fuzz.sh` does.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Panics anywhere in the process, counted: the library's readers run on their own threads,
/// where a panic would otherwise only show up as a "reader stopped" error.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

#[test]
fn seeds_decode_and_are_written_on_request() {
    let out = std::env::var_os("BALER_FUZZ_SEEDS_DIR");
    for target in harness::TARGETS {
        let seeds = harness::seeds(target);
        assert!(!seeds.is_empty(), "{target}: no seeds");
        count_panics();
        let panics = PANICS.load(Ordering::SeqCst);
        for (i, seed) in seeds.iter().enumerate() {
            let result = harness::run(target, seed);
            assert!(result.is_ok(), "{target} seed {i} is refused: {result:?}");
        }
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            panics,
            "{target}: a seed panicked"
        );
        if let Some(dir) = &out {
            let dir = Path::new(dir).join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, seed) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
            }
        }
    }
}

#[test]
fn fuzz_regressions_are_refused_or_decoded_without_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut total = 0;
    for target in harness::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no regression inputs", dir.display());
        let (mut decoded, mut refused) = (0, 0);
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(file).unwrap();
            count_panics();
            let panics = PANICS.load(Ordering::SeqCst);
            let started = Instant::now();
            let result = harness::run(target, &bytes);
            let elapsed = started.elapsed();
            assert_eq!(
                PANICS.load(Ordering::SeqCst),
                panics,
                "{target}/{name} panicked (maybe in a reader thread)"
            );
            let prefix = name.split('-').next().unwrap_or("");
            match prefix {
                "ok" => assert!(result.is_ok(), "{target}/{name} is refused: {result:?}"),
                "err" | "crash" | "oom" | "timeout" => {
                    let error = result.as_ref().expect_err(&name);
                    assert!(!error.is_empty(), "{target}/{name}: empty error");
                }
                _ => panic!(
                    "{target}/{name}: name must start with ok-, err-, crash-, oom- or timeout-"
                ),
            }
            // A debug build is slow, but a former hang must not come back.
            assert!(
                elapsed < Duration::from_secs(20),
                "{target}/{name} took {elapsed:?}"
            );
            match result {
                Ok(()) => decoded += 1,
                Err(_) => refused += 1,
            }
        }
        assert_eq!(decoded + refused, files.len());
        total += files.len();
    }
    assert!(total >= harness::TARGETS.len());
}

/// The typed errors of crash inputs, for the codec targets: the exact error each one gets.
#[test]
fn codec_crash_inputs_get_typed_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    for target in [
        "model_blob",
        "stream_decode",
        "bounded_decode",
        "entropy_decode",
    ] {
        for entry in std::fs::read_dir(root.join(target)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("crash-") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            // The codec's error, or for error-bounded streams the library's (which wraps it).
            let typed: Result<usize, String> = match target {
                "model_blob" => harness::model_blob(&bytes).map_err(|e| format!("{e:?}")),
                "stream_decode" => harness::stream_decode(&bytes).map_err(|e| format!("{e:?}")),
                "bounded_decode" => harness::bounded_decode(&bytes).map_err(|e| format!("{e:?}")),
                _ => harness::entropy_decode(&bytes).map_err(|e| format!("{e:?}")),
            };
            assert!(typed.is_err(), "{target}/{name}: {typed:?}");
        }
    }
}

/// Maintenance, not a check: `BALER_FUZZ_PICK=fuzz/corpus cargo test --test fuzz_regressions
/// -- --ignored pick` copies a few small corpus inputs per target (decoded ones first, then
/// refused ones, at most 4 KB in all) into `tests/fuzz-regressions/<target>/`, named by outcome.
#[test]
#[ignore]
fn pick_corpus_inputs_as_regressions() {
    let Some(corpus) = std::env::var_os("BALER_FUZZ_PICK") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    for target in harness::TARGETS {
        let Ok(entries) = std::fs::read_dir(Path::new(&corpus).join(target)) else {
            continue;
        };
        let mut inputs: Vec<(Vec<u8>, String)> = entries
            .map(|e| e.unwrap().path())
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (std::fs::read(&p).unwrap(), name)
            })
            .filter(|(bytes, _)| bytes.len() <= 1024)
            .collect();
        // Larger inputs first (they tend to reach deeper), then by name for stability.
        inputs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let (mut ok, mut err, mut budget) = (0, 0, 4096usize);
        for (bytes, name) in inputs {
            let result = harness::run(target, &bytes);
            let (count, prefix) = match result {
                Ok(()) => (&mut ok, "ok"),
                Err(_) => (&mut err, "err"),
            };
            if *count >= 3 || bytes.len() > budget {
                continue;
            }
            *count += 1;
            budget -= bytes.len();
            let short = &name[..name.len().min(12)];
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{prefix}-corpus-{short}")), &bytes).unwrap();
        }
        eprintln!("{target}: {ok} decoded and {err} refused inputs picked");
    }
}
