#!/usr/bin/env bash
# Size and instruction budgets of the firmware example with two models: flash and RAM
# from llvm-size (rustup component llvm-tools) plus the measured peak stack, and instructions
# per encoded/decoded frame counted under QEMU with -icount shift=0. Then the error-bounded
# image (`--features bounded`, no model): flash, RAM and instructions per value: counts
# losslessly and within 2 counts, and the f32 frames within 0.05. Flash counts .data too
# (its initial values are stored in flash).
set -euo pipefail
cd "$(dirname "$0")/../firmware-example"
rustup component add llvm-tools >/dev/null 2>&1
size=$(find "$(rustc --print sysroot)/lib/rustlib" -name llvm-size | head -1)
# Two models: the default one (model/hzz_edge.blob, 31 -> 16 -> 8 and back) and an HGCAL-sized
# one (48 -> 32 -> 16 and back, random weights from codec/examples/edge_model.rs: the
# instructions per MAC do not depend on the weights).
work=$(mktemp -d)
(cd .. && cargo run -q -p baler-codec --features alloc --example edge_model -- 48,32,16 \
  "$work/hgcal.blob" "$work/hgcal.f32")
printf "| model, core | flash (.vector_table+.text+.rodata+.data) | RAM (.data+.bss+peak stack) | instructions / encoded frame (per MAC) | instructions / decoded frame (per MAC) |\n|---|---|---|---|---|\n"
for model in "default $PWD/model/hzz_edge.blob $PWD/model/hzz_frames.f32" "48-32-16 $work/hgcal.blob $work/hgcal.f32"; do
  set -- $model
  label=$1
  export BALER_MODEL=$2 BALER_FRAMES=$3
  for spec in "Cortex-M4F thumbv7em-none-eabihf mps2-an386 cortex-m4" "Cortex-M0 thumbv6m-none-eabi mps2-an385 cortex-m3"; do
    set -- $spec
    cargo build --release --target "$2" -q
    elf=target/$2/release/baler-firmware-example
    out=$(timeout 120 qemu-system-arm -machine "$3" -cpu "$4" -nographic \
          -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf")
    "$size" -A "$elf" | awk -v name="$label, $1" -v out="$out" '
      /^\.vector_table|^\.text|^\.rodata|^\.data/ { flash += $2 }
      /^\.data|^\.bss|^\.uninit/ { ram += $2 }
      END {
        match(out, /STACK peak [0-9]+/); stack = substr(out, RSTART + 11, RLENGTH - 11)
        n = split(substr(out, index(out, "BENCH")), f, " ")
        for (i = 2; i < n; i += 2) v[f[i]] = f[i + 1]
        per_tick = v["delay_instructions"] / v["delay_ticks"]
        enc = v["encode_ticks"] * per_tick / v["reps"]; dec = v["decode_ticks"] * per_tick / v["reps"]
        printf "| %s | %d B | %d B (%d + %d stack) | %.0f (%.1f) | %.0f (%.1f) |\n", name, flash, ram + stack, ram, stack, enc, enc / v["encoder_macs"], dec, dec / v["decoder_macs"]
      }'
  done
done
export BALER_MODEL=$PWD/model/hzz_edge.blob BALER_FRAMES=$PWD/model/hzz_frames.f32
rm -rf "$work"

echo
printf "| error-bounded image, core | flash (.vector_table+.text+.rodata+.data) | RAM (.data+.bss+peak stack) | instructions / value: counts lossless, within 2 counts, f32 within 0.05 |\n|---|---|---|---|\n"
for spec in "Cortex-M4F thumbv7em-none-eabihf mps2-an386 cortex-m4" "Cortex-M0 thumbv6m-none-eabi mps2-an385 cortex-m3"; do
  set -- $spec
  BALER_FRAME_LEN=31 cargo build --release --target "$2" --features bounded -q
  elf=target/$2/release/baler-firmware-example
  out=$(timeout 120 qemu-system-arm -machine "$3" -cpu "$4" -nographic \
        -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf")
  "$size" -A "$elf" | awk -v name="$1" -v out="$out" '
    /^\.vector_table|^\.text|^\.rodata|^\.data/ { flash += $2 }
    /^\.data|^\.bss|^\.uninit/ { ram += $2 }
    END {
      match(out, /STACK peak [0-9]+/); stack = substr(out, RSTART + 11, RLENGTH - 11)
      n = split(substr(out, index(out, "BOUNDED_BENCH")), f, " ")
      for (i = 2; i < n; i += 2) v[f[i]] = f[i + 1]
      per_tick = v["delay_instructions"] / v["delay_ticks"]
      per = v["reps"] * v["values"]
      printf "| %s | %d B | %d B (%d + %d stack) | %.0f, %.0f, %.0f |\n", name, flash, ram + stack, ram, stack, v["lossless_ticks"] * per_tick / per, v["within2_ticks"] * per_tick / per, v["f32_ticks"] * per_tick / per
    }'
done
# The default build again, so the tests and a later run see the fixed-rate image.
cargo build --release --target thumbv7em-none-eabihf -q
