#!/usr/bin/env bash
# Reproduces the README's results table: train, compress, decompress and evaluate on the
# shared data (../shared/data). Prints each step's own report.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data
[ -d "$data" ] || { echo "SKIPPED: $data is absent"; exit 0; }
cargo build --release -p baler-cli
b=target/release/baler
out=${OUT:-/tmp/baler-results}
mkdir -p "$out"
run() { # name input train-args...
  local name=$1 input=$2; shift 2
  echo "== $name"
  /usr/bin/time -f "train wall %e s" "$b" train --input "$input" --output "$out/$name.model" "$@"
  "$b" compress --model "$out/$name.model" --input "$input" --output "$out/$name.baler"
  local ext=${input##*.}
  "$b" decompress --model "$out/$name.model" --input "$out/$name.baler" --output "$out/$name.out.$ext"
  "$b" evaluate --original "$input" --reconstructed "$out/$name.out.$ext" | head -1
  "$b" evaluate --original "$input" --reconstructed "$out/$name.out.$ext" --json > "$out/$name.eval.json"
}
run hzz_default "$data/hzz.npz"
run hzz_l16_b12 "$data/hzz.npz" --latent 16 --code-bits 12
run cfd_tile10 "$data/CFD_animation.npz" --tile 10x10 --hidden 64,32 --latent 8 --code-bits 8 --lr 3e-3
