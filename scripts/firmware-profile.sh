#!/usr/bin/env bash
# Where the instructions of one encoded frame go on the Cortex-M4F: builds the firmware with the
# HGCAL-sized 48-32-16 model (codec/examples/edge_model.rs) or MODEL/FRAMES given as arguments,
# runs it under QEMU logging every instruction (-singlestep -d exec,nochain), and splits the
# median encoded frame of the benchmark loop by function (docs/firmware.md, "Where the
# instructions go"). Needs qemu-system-arm and python3; the log (about 500 MB) goes to a
# temporary folder on /dev/shm when it exists.
#   bash scripts/firmware-profile.sh [MODEL.blob FRAMES.f32]
set -euo pipefail
cd "$(dirname "$0")/.."
base=/tmp
[ -d /dev/shm ] && base=/dev/shm
work=$(mktemp -d "$base/baler-profile.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ $# -ge 2 ]; then
  model=$1 frames=$2
else
  cargo run -q -p baler-codec --features alloc --example edge_model -- 48,32,16 \
    "$work/model.blob" "$work/frames.f32"
  model=$work/model.blob frames=$work/frames.f32
fi
(cd firmware-example && BALER_MODEL=$model BALER_FRAMES=$frames \
  cargo build --release --target thumbv7em-none-eabihf -q)
elf=firmware-example/target/thumbv7em-none-eabihf/release/baler-firmware-example
timeout 600 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
  -semihosting-config enable=on,target=native -singlestep -d exec,nochain \
  -D "$work/trace.log" -kernel "$elf" > /dev/null
# The default build again, so the tests and a later run see the fixed-rate image.
(cd firmware-example && cargo build --release --target thumbv7em-none-eabihf -q)
python3 - "$work/trace.log" <<'EOF'
import re
import sys
from collections import Counter

# Each executed instruction: "Trace 0: 0x... [flags/PC/...] symbol".
names, pcs = [], []
with open(sys.argv[1], errors="replace") as log:
    for line in log:
        if line.startswith("Trace"):
            fields = line.split()
            pcs.append(int(fields[3][1:].split("/")[1], 16))
            names.append(fields[-1])


def short(name):
    for key in ("dot4", "run_layer", "encode_frame", "decode_frame", "unpack", "memclr", "memcpy"):
        if key in name:
            return key
    return "other"


# A call enters at the function's first (lowest) address.
start = min(pc for pc, n in zip(pcs, names) if "encode_frame" in n)
entries = [i for i, pc in enumerate(pcs) if pc == start]
# The benchmark's 64 encodes come one after another: frames are the spans between consecutive
# entries of encode_frame that are about the same length (the last encode runs on into decode).
spans = [(a, b) for a, b in zip(entries, entries[1:])]
lengths = sorted(b - a for a, b in spans)
median = lengths[len(lengths) // 2]
a, b = next((a, b) for a, b in spans if b - a == median)
frame = Counter(short(n) for n in names[a:b])
in_dot4 = Counter(pc for pc, n in zip(pcs[a:b], names[a:b]) if "dot4" in n)
passes = in_dot4.most_common(1)[0][1]
loop = sum(c for c in in_dot4.values() if c == passes)
calls = sum(1 for i in range(a, b) if "dot4" in names[i] and "dot4" not in names[i - 1])
print(f"one encoded frame: {median} instructions (median of {len(spans)} spans between encodes)")
for key, count in frame.most_common():
    print(f"  {key:14s} {count:7d}")
print(f"  of dot4: the multiply-accumulate loop {loop} ({passes} passes of 8 MACs, "
      f"{loop / passes:.0f} a pass); {calls} calls' set-up, tails and exit {frame['dot4'] - loop}")
EOF
