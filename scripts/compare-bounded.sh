#!/usr/bin/env bash
# Error-bounded compression table: baler (model-free; the learned field predictor for data of
# rank 3 or more; an autoencoder when BALER_HZZ_MODEL / BALER_CFD_MODEL name one) vs SZ3, ZFP and zstd -19 on the shared data,
# measured in one run on one core each. Writes Markdown to OUT.md (default
# target/compare-bounded.md) and prints it.
#   bash scripts/compare-bounded.sh [OUT.md]
# Env: BALER_DATA_DIR (default ../shared/data), BALER_NO_BUILD=1 (use the existing binary),
#      BENCH_CPU (core, default 0), BENCH_REPS (timing repetitions, default 5).
# Needs python3 with numpy, pysz, zfpy and zstandard.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${BALER_DATA_DIR:-../shared/data}
[ -d "$data" ] || { echo "SKIPPED: data directory $data is absent (set BALER_DATA_DIR)"; exit 0; }
export BALER_DATA_DIR=$data
out=${1:-target/compare-bounded.md}
if [ "${BALER_NO_BUILD:-0}" != 1 ] || [ ! -x target/release/baler ]; then
  cargo build --release -q -p baler-cli
fi
# The codec-only bench, run by the script in the same session as SZ3.
BALER_CODEC_BENCH=$(cargo bench --bench bounded_throughput --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable") and "bounded_throughput" in m["executable"]][-1])')
export BALER_CODEC_BENCH
python3 -c 'import numpy, pysz, zfpy, zstandard' 2>/dev/null \
  || { echo "error: python3 needs numpy, pysz, zfpy and zstandard (pip install pysz zfpy zstandard)" >&2; exit 1; }
exec python3 scripts/compare_bounded.py "$out"
