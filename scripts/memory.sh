#!/usr/bin/env bash
# Peak memory and speed of compress and decompress on inputs far larger than one chunk, with
# GNU time (/usr/bin/time, Debian package "time"):
#   - a table: hzz repeated 500 times, a 300 MB float64 .npy [1210500, 31], fixed-rate (the
#     hzz model) and error-bounded (--rel-error-bound 1e-3, no model);
#   - a field: the CFD frames repeated 250 times, a 300 MB float64 .npy [15000, 50, 50],
#     error-bounded and fixed-rate (a 10x10-tile model); skipped when the frames are absent
#     (CFD=path/to/CFD_animation.npz, default ../shared/data/CFD_animation.npz).
# Chunks: fixed-rate compress reads 16 blocks of 1024 frames at a time (16384 rows of the table,
# 4 MB of float64); error-bounded compress reads 4 blocks of 2^20 values (32 MB of float64),
# twice (column ranges, then coding). Prints one line per command: input MB, peak RSS, MB/s.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p baler-cli
b=$PWD/target/release/baler
tmp=${TMPDIR:-/tmp}/baler-memory
cfd=${CFD:-../shared/data/CFD_animation.npz}
mkdir -p "$tmp"
python3 - "$tmp" "$cfd" <<'PY'
import os, struct, sys, zipfile
tmp, cfd = sys.argv[1], sys.argv[2]

def repeat(npz, reps, shape, out):
    raw = zipfile.ZipFile(npz).read("data.npy")
    body = raw[10 + struct.unpack("<H", raw[8:10])[0]:]
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }" % (shape,)
    hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
    with open(out, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        for _ in range(reps):
            f.write(body)

repeat("examples/data/hzz.npz", 500, (2421 * 500, 31), f"{tmp}/big.npy")
if os.path.exists(cfd):
    repeat(cfd, 250, (60 * 250, 50, 50), f"{tmp}/field.npy")
PY
[ -f "$tmp/hzz.model" ] || "$b" train --input examples/data/hzz.npz --output "$tmp/hzz.model" >/dev/null
if [ -f "$tmp/field.npy" ] && [ ! -f "$tmp/cfd.model" ]; then
  "$b" train --input "$cfd" --output "$tmp/cfd.model" --tile 10x10 --hidden 32 --latent 8 \
    --epochs 40 --lr 3e-3 >/dev/null
fi

# measure NAME INPUT ARGS...: runs baler ARGS under GNU time; prints input size, peak RSS,
# and the MB/s baler reports.
measure() {
  local name=$1 input=$2
  shift 2
  local log="$tmp/time.log"
  /usr/bin/time -v -o "$log" "$b" "$@" >"$tmp/out.log"
  local rss mbs mb
  rss=$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2 / 1024}' "$log")
  mbs=$(grep -oE '[0-9.]+ MB/s' "$tmp/out.log" | tail -1)
  mb=$(awk -v s="$(stat -c %s "$input")" 'BEGIN {printf "%.1f", s / 1e6}')
  printf '%-44s input %7s MB  peak RSS %7s MB  %s\n' "$name" "$mb" "$rss" "$mbs"
}

measure "table compress (fixed-rate)" "$tmp/big.npy" \
  compress --model "$tmp/hzz.model" --input "$tmp/big.npy" --output "$tmp/big.baler"
measure "table decompress (fixed-rate)" "$tmp/big.baler" \
  decompress --model "$tmp/hzz.model" --input "$tmp/big.baler" --output "$tmp/big_out.npy"
measure "table compress --rel-error-bound 1e-3" "$tmp/big.npy" \
  compress --rel-error-bound 1e-3 --input "$tmp/big.npy" --output "$tmp/big_eb.baler"
measure "table decompress (error-bounded)" "$tmp/big_eb.baler" \
  decompress --input "$tmp/big_eb.baler" --output "$tmp/big_eb_out.npy"
if [ -f "$tmp/field.npy" ]; then
  measure "field compress --rel-error-bound 1e-3" "$tmp/field.npy" \
    compress --rel-error-bound 1e-3 --input "$tmp/field.npy" --output "$tmp/field_eb.baler"
  measure "field decompress (error-bounded)" "$tmp/field_eb.baler" \
    decompress --input "$tmp/field_eb.baler" --output "$tmp/field_eb_out.npy"
  measure "field compress (fixed-rate, 10x10 tiles)" "$tmp/field.npy" \
    compress --model "$tmp/cfd.model" --input "$tmp/field.npy" --output "$tmp/field.baler"
  measure "field decompress (fixed-rate)" "$tmp/field.baler" \
    decompress --model "$tmp/cfd.model" --input "$tmp/field.baler" --output "$tmp/field_out.npy"
else
  echo "field: skipped ($cfd is absent)"
fi
rm -f "$tmp"/*.baler "$tmp"/*_out.npy
