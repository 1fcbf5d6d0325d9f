#!/usr/bin/env bash
# Quick start: train a quantized autoencoder on the shipped collider events, compress them,
# decompress them, and show what it cost. Outputs go to ./quickstart-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p baler-cli
baler=target/release/baler
out=quickstart-out
mkdir -p "$out"
"$baler" train --input examples/data/hzz.npz --output "$out/hzz.model" "$@"
"$baler" compress --model "$out/hzz.model" --input examples/data/hzz.npz --output "$out/hzz.baler"
"$baler" decompress --model "$out/hzz.model" --input "$out/hzz.baler" --output "$out/hzz_decompressed.npz"
"$baler" info "$out/hzz.baler" --model "$out/hzz.model"
