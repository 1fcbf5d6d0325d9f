#!/usr/bin/env bash
# Peak memory of compress and decompress on an input far larger than one chunk: hzz repeated
# 500 times as a 300 MB float64 .npy. Needs GNU time (/usr/bin/time, Debian package "time").
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p baler-trainer
b=target/release/baler
tmp=${TMPDIR:-/tmp}/baler-memory
mkdir -p "$tmp"
python3 - "$tmp/big.npy" <<'PY'
import struct, sys, zipfile
raw = zipfile.ZipFile("examples/data/hzz.npz").read("data.npy")
body = raw[10 + struct.unpack("<H", raw[8:10])[0]:]
reps = 500
hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, 31), }" % (2421 * reps)
hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    for _ in range(reps):
        f.write(body)
PY
[ -f "$tmp/hzz.model" ] || "$b" train --input examples/data/hzz.npz --output "$tmp/hzz.model"
for step in "compress --input $tmp/big.npy --output $tmp/big.baler" \
            "decompress --input $tmp/big.baler --output $tmp/big_out.npy"; do
  /usr/bin/time -v "$b" $step --model "$tmp/hzz.model" 2>&1 | grep -E 'ratio|MB/s|Maximum resident'
done
