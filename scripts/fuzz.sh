#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for a bounded time: scripts/fuzz.sh [seconds-per-target]
# (default 30). Exits 1 if a target crashes (panic, overflow, timeout, out-of-memory); the input
# is left in fuzz/artifacts/<target>/. Skips, exiting 0, if cargo-fuzz or a toolchain that can
# build the targets cannot be had.
#
# Toolchain: `cargo +nightly fuzz` as usual (the fuzz crate depends on the codec and the `baler`
# library only, not on dfdx, so nightly builds it). When nightly is missing (machines with one
# stable toolchain), stable is used with RUSTC_BOOTSTRAP=1, which unlocks the few unstable
# flags cargo-fuzz passes. FUZZ_TOOLCHAIN=
# nightly or stable forces one. FUZZ_SANITIZER (default none: the code under test is safe Rust)
# is passed to --sanitizer; debug assertions and overflow checks are on either way.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-30}"
TARGETS=(model_blob stream_decode bounded_decode entropy_decode readers decompress_cli)
SANITIZER="${FUZZ_SANITIZER:-none}"

skip() {
  echo "fuzz: SKIPPED: $*"
  exit 0
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || skip "cargo-fuzz is not installed and could not be installed"
fi
cargo fuzz --version

fuzz() { # fuzz TOOLCHAIN ARGS...
  local toolchain="$1"
  shift
  if [ "$toolchain" = stable ]; then
    RUSTC_BOOTSTRAP=1 cargo +stable fuzz "$@"
  else
    cargo +nightly fuzz "$@"
  fi
}

echo "== building the fuzz targets"
TOOLCHAIN=""
for candidate in ${FUZZ_TOOLCHAIN:-nightly stable}; do
  if ! rustup run "$candidate" rustc --version >/dev/null 2>&1; then
    echo "fuzz: no $candidate toolchain"
    continue
  fi
  if fuzz "$candidate" build --sanitizer "$SANITIZER"; then
    TOOLCHAIN="$candidate"
    break
  fi
  echo "fuzz: the $candidate toolchain cannot build the fuzz targets"
done
[ -n "$TOOLCHAIN" ] || skip "no toolchain (${FUZZ_TOOLCHAIN:-nightly stable}) can build the fuzz targets"
echo "fuzz: using $TOOLCHAIN"

echo "== seed corpus (fuzz/corpus/<target>/seed-*)"
# shellcheck source=scripts/features.sh
source scripts/features.sh
# The workspace's own features: after scripts/test.sh this reuses its build.
BALER_FUZZ_SEEDS_DIR="$PWD/fuzz/corpus" cargo test --workspace "${features[@]}" \
  --test fuzz_regressions seeds_decode -- --quiet

failed=()
for target in "${TARGETS[@]}"; do
  echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
  log="fuzz/artifacts/$target.log"
  mkdir -p "fuzz/artifacts/$target" "fuzz/corpus/$target"
  # Regression inputs seed the run too (read-only: new inputs go to fuzz/corpus).
  if fuzz "$TOOLCHAIN" run --sanitizer "$SANITIZER" "$target" \
    "fuzz/corpus/$target" "tests/fuzz-regressions/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$target")
  fi
  execs=$(grep -o 'number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1 || true)
  echo "$target: $status, ${execs:-?} executions in ${SECONDS_PER_TARGET}s, ${cov:-no coverage line}"
  if [ "$status" = FAILED ]; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|deadly signal|out-of-memory|timeout' "$log" | head -20 || true
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) crashed: ${failed[*]} (inputs in fuzz/artifacts/; logs in fuzz/artifacts/*.log)"
  exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET}s without a crash"
