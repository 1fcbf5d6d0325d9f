#!/usr/bin/env bash
# Quick start on the shipped collider events (examples/data/hzz.npz, 2421 events x 31 columns),
# both promises:
#   1. fixed rate: train an autoencoder, compress to its 8-bit latent codes (and the exact columns
#      and per-column corrections beside them), decompress, report;
#   2. error-bounded: every value within 1e-3 of its column's range, no model needed, checked
#      value by value by `baler evaluate`;
#   3. the same promise per value, as NanoAOD stores events: 10 mantissa bits (every value
#      within 2^-11 of itself, counts exact), each column's promise shown by `baler info`.
# Outputs go to ./quickstart-out/. Extra arguments go to `baler train`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p baler-cli
baler=target/release/baler
data=examples/data/hzz.npz
out=quickstart-out
mkdir -p "$out"

echo "== 1. fixed rate: a model trained on the data, a fixed number of bits per event"
"$baler" train --input "$data" --output "$out/hzz.model" "$@"
"$baler" compress --model "$out/hzz.model" --input "$data" --output "$out/hzz.baler"
"$baler" decompress --model "$out/hzz.model" --input "$out/hzz.baler" --output "$out/hzz_decompressed.npz"
"$baler" info "$out/hzz.baler" --model "$out/hzz.model"

echo "== 2. error-bounded: every value within 1e-3 x its column's range"
"$baler" compress --input "$data" --output "$out/hzz_bounded.baler" --rel-error-bound 1e-3
"$baler" decompress --input "$out/hzz_bounded.baler" --output "$out/hzz_bounded.npz"
# The fraction of values within 1e-3 x range must be 100% in every column.
"$baler" evaluate --original "$data" --reconstructed "$out/hzz_bounded.npz" --bounds 1e-3

echo "== 3. per value: every value within 2^-11 of itself (10 mantissa bits), counts exact"
"$baler" compress --input "$data" --output "$out/hzz_mantissa.baler" --mantissa-bits 10
"$baler" decompress --input "$out/hzz_mantissa.baler" --output "$out/hzz_mantissa.npz"
"$baler" info "$out/hzz_mantissa.baler" | grep -E "ratio|MET_px|NJet|Muon1_E"
# The summary line names the worst |error| / |value|: at most 4.88e-4.
"$baler" evaluate --original "$data" --reconstructed "$out/hzz_mantissa.npz" --bounds 1e-3 | sed -n 1p
