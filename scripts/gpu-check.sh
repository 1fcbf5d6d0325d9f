#!/usr/bin/env bash
# The GPU check: one prepared command for a machine with an NVIDIA GPU, its driver and a CUDA 13
# Python environment (PyTorch's wheels bring cuBLAS and NVRTC), and no Rust or network. Build
# the binary first, here, with `bash scripts/build-cuda.sh`, then on the GPU machine, from the
# repository root:
#
#   bash scripts/gpu-check.sh            # writes its report and files into $OUT (or target/gpu-check)
#
# with target/cuda/baler carried along, and ../shared/data/CFD_animation.npz or a copy in
# target/gpu-check-data/ (the script says which it used; without either it skips the CFD model
# and says so). It trains the default hzz model and the CFD tile model (10x10 tiles) on the CPU
# and on the GPU with the same seed, and writes report.md: epochs, seconds and epochs/s on
# each, the float and quantized validation MSE of each, and whether the GPU's quantized
# validation MSE is within 5% of the CPU's. It also compresses hzz with each blob and writes
# the blobs, the streams and the SHA-256 of their decoded values, so this machine can check
# that the GPU-trained model decodes to the same bits here (`bash scripts/gpu-check.sh
# --verify DIR`, where DIR holds the files that came back). It never waits for input; each
# training run has a time limit.
set -uo pipefail
cd "$(dirname "$0")/.."
binary=${BALER_CUDA_BIN:-target/cuda/baler}

if [ "${1:-}" = "--verify" ]; then
  # On the build machine: decode the device's streams with its blobs and compare the bits.
  dir=${2:?usage: gpu-check.sh --verify DIR}
  baler=${BALER_BIN:-target/release/baler}
  [ -x "$baler" ] || cargo build --release -q -p baler-cli
  failed=0
  work=$(mktemp -d)
  while read -r sum name; do
    label=${name%.decoded.npz}
    "$baler" decompress --model "$dir/$label.blob" --input "$dir/$label.baler" \
      --output "$work/$label.npz" >/dev/null
    here=$(sha256sum < "$work/$label.npz" | cut -d' ' -f1)
    if [ "$here" = "$sum" ]; then echo "$label: decodes to the same bits here"; else
      echo "$label: DIFFERS (device $sum, here $here)"; failed=1; fi
  done < "$dir/decoded.sha256"
  rm -rf "$work"
  exit $failed
fi

out=${OUT:-target/gpu-check}
mkdir -p "$out"
report=$out/report.md
log=$out/log.txt
: > "$log"
say() { echo "$*" | tee -a "$report"; }
: > "$report"

if [ ! -x "$binary" ]; then
  say "error: $binary is missing: build it with 'bash scripts/build-cuda.sh' and carry target/cuda/baler"
  exit 1
fi

# The real CUDA libraries: the driver's libcuda from the system, cuBLAS and NVRTC from a CUDA 13
# toolkit or the nvidia-* wheels of a Python environment (never the link stubs).
libs=""
for lib in libcublas.so.13 libcublasLt.so.13 libnvrtc.so.13; do
  found=$( (ls /usr/local/cuda*/lib64/$lib /usr/lib/x86_64-linux-gnu/$lib 2>/dev/null;
    for py in python3 python; do
      command -v $py >/dev/null || continue
      $py - "$lib" <<'EOF' 2>/dev/null
import glob, os, site, sys
dirs = site.getsitepackages() + [site.getusersitepackages()]
for d in dirs:
    for hit in glob.glob(os.path.join(d, "nvidia", "**", sys.argv[1]), recursive=True):
        print(hit)
EOF
    done) | grep -v stubs | head -1)
  if [ -n "$found" ]; then
    dir=$(dirname "$found")
    case ":$libs:" in *":$dir:"*) ;; *) libs=${libs:+$libs:}$dir ;; esac
  fi
done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

say "# GPU check ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
say ""
if command -v nvidia-smi >/dev/null; then
  say "- GPU: $(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>&1 | head -1)"
else
  say "- GPU: none found (no nvidia-smi)"
fi
say "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
say "- libraries from: ${libs:-nowhere: no libcublas.so.13 found}"
missing=$(ldd "$binary" 2>&1 | grep "not found" | tr -s ' \t' ' ')
if [ -n "$missing" ]; then say "- missing libraries:$missing"; fi
say ""

cfd=""
for candidate in ../shared/data/CFD_animation.npz target/gpu-check-data/CFD_animation.npz; do
  if [ -f "$candidate" ]; then cfd=$candidate; break; fi
done

runs=("hzz examples/data/hzz.npz")
if [ -n "$cfd" ]; then
  runs+=("cfd-tiles $cfd --tile 10x10")
else
  say "CFD tile model: skipped (no ../shared/data/CFD_animation.npz or target/gpu-check-data/CFD_animation.npz)"
fi

say "| model | device | epochs | seconds | epochs/s | float val. MSE | quantized val. MSE |"
say "|---|---|---:|---:|---:|---:|---:|"
declare -A quantized
: > "$out/decoded.sha256"
for run in "${runs[@]}"; do
  set -- $run
  name=$1 input=$2
  shift 2
  for device in cpu cuda; do
    label=$name-$device
    echo "== $label" >> "$log"
    timeout 300 "$binary" train --input "$input" --output "$out/$label.blob" --seed 0 \
      --device "$device" "$@" > "$out/$label.train.txt" 2>&1 < /dev/null
    status=$?
    cat "$out/$label.train.txt" >> "$log"
    line=$(grep "^trained " "$out/$label.train.txt" | tail -1)
    if [ "$status" != 0 ] || [ -z "$line" ]; then
      say "| $name | $device | failed (exit $status): $(tail -1 "$out/$label.train.txt") | | | | |"
      continue
    fi
    # "trained 31 -> 8 (57 epochs, 12.3 s); validation MSE (normalized): float F, quantized Q"
    epochs=$(echo "$line" | sed -E 's/.*\(([0-9]+) epochs, ([0-9.]+) s\).*/\1/')
    seconds=$(echo "$line" | sed -E 's/.*\(([0-9]+) epochs, ([0-9.]+) s\).*/\2/')
    float=$(echo "$line" | sed -E 's/.*float ([0-9.]+), quantized ([0-9.]+).*/\1/')
    quant=$(echo "$line" | sed -E 's/.*float ([0-9.]+), quantized ([0-9.]+).*/\2/')
    quantized[$label]=$quant
    say "| $name | $device | $epochs | $seconds | $(awk -v e="$epochs" -v s="$seconds" 'BEGIN { printf "%.2f", e / s }') | $float | $quant |"
    if [ "$name" = hzz ]; then
      "$binary" compress --model "$out/$label.blob" --input "$input" --output "$out/$label.baler" >> "$log" 2>&1 &&
        "$binary" decompress --model "$out/$label.blob" --input "$out/$label.baler" \
          --output "$out/$label.decoded.npz" >> "$log" 2>&1 &&
        echo "$(sha256sum < "$out/$label.decoded.npz" | cut -d' ' -f1) $label.decoded.npz" >> "$out/decoded.sha256"
      rm -f "$out/$label.decoded.npz"
    fi
  done
done
say ""
for run in "${runs[@]}"; do
  set -- $run
  cpu=${quantized[$1-cpu]:-} gpu=${quantized[$1-cuda]:-}
  if [ -n "$cpu" ] && [ -n "$gpu" ]; then
    say "- $1: GPU/CPU quantized validation MSE $(awk -v g="$gpu" -v c="$cpu" 'BEGIN {
      r = g / c; printf "%.3f (%s)", r, r <= 1.05 ? "within 5%" : "NOT within 5%" }')"
  else
    say "- $1: no comparison (a run failed; see log.txt)"
  fi
done
say "- decoded SHA-256 of hzz with each blob: decoded.sha256 (check here with: bash scripts/gpu-check.sh --verify DIR)"
