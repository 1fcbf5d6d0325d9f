#!/usr/bin/env python3
"""Error-bounded compression: baler vs SZ3 (pysz), ZFP (zfpy) and zstd -19, one run, one core each.

Usage: python3 scripts/compare_bounded.py [OUT.md]   (default target/compare-bounded.md)

Environment:
  BALER_DATA_DIR     data directory (default: ../shared/data relative to the repository root)
  BALER_BIN          baler binary (default: target/release/baler)
  BALER_HZZ_MODEL    model blob for hzz.npz: adds an "autoencoder" row (--use-model always)
  BALER_CFD_MODEL    model blob for CFD_animation.npz: the same
  BENCH_CPU          the one core everything runs on (default 0)
  BENCH_REPS         timing repetitions, best one kept (default 5)
  BALER_CODEC_BENCH  the benches/bounded_throughput executable: adds a codec-only compress
                     throughput table next to SZ3's, measured in the same run (compare-bounded.sh
                     builds it and sets this)

Bounds: hzz (a table) gets R x each column's range per column (SZ3 and ZFP compress each column on
its own with that absolute bound, sizes summed); CFD_animation (a 3-D field) gets R x the whole
array's range (SZ3 and ZFP on the whole array). Raw size = float64 bytes.
"""
import datetime
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOUNDS = [1e-2, 1e-3, 1e-4]
CPU = int(os.environ.get("BENCH_CPU", "0"))
REPS = max(1, int(os.environ.get("BENCH_REPS", "5")))
DATASETS = [
    # name, file, per-column bound?, model env var
    ("hzz", "hzz.npz", True, "BALER_HZZ_MODEL"),
    ("CFD_animation", "CFD_animation.npz", False, "BALER_CFD_MODEL"),
]
FAILURES = []


def pin_one_core():
    """Pins this process (and so its children) to one core; baselines must not use threads."""
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        os.sched_setaffinity(0, {CPU})
    except (AttributeError, OSError) as e:
        print(f"warning: could not pin to core {CPU}: {e}", file=sys.stderr)


def version(pkg):
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def git_describe():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def bounds_for(data, rel, per_column):
    """Absolute bound per value (broadcastable to data) and the range used to normalise RMSE."""
    if per_column:
        rng = data.max(axis=0) - data.min(axis=0)
    else:
        rng = np.asarray(data.max() - data.min())
    return rel * rng, rng


def errors(data, rec, abs_bound, rng):
    """(max |err| / bound over all values (the worst column), RMSE of err / range, all within?)."""
    if rec.shape != data.shape:
        raise ValueError(f"decoded shape {rec.shape} != original {data.shape}")
    err = np.abs(rec.astype(np.float64) - data)
    ok = bool(np.all(err <= abs_bound))
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(abs_bound > 0, err / abs_bound, np.where(err > 0, np.inf, 0.0))
        nerr = np.where(rng > 0, err / rng, 0.0)
    return float(frac.max()), float(np.sqrt(np.mean(nerr ** 2))), ok


def best_time(fn, reps=REPS):
    """Runs fn reps times; returns (best wall seconds, last result)."""
    best, res = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t)
    return best, res


# ---------------------------------------------------------------------------------------- baler

def baler_row(baler, path, data, rel, per_column, tmp, model=None, learned=False):
    """One baler row: model-free (--use-model never), the default auto choice without a model
    file (the learned predictor for fields, column relations for tables), or the given
    autoencoder (--use-model always)."""
    taskset = ["taskset", "-c", str(CPU)] if shutil.which("taskset") else []
    stream = os.path.join(tmp, "out.baler")
    recon = os.path.join(tmp, "rec.npz")
    mflag = ["--model", model] if model else []
    ccmd = taskset + [baler, "compress", "--input", path, "--output", stream, "--rel-error-bound",
                      repr(rel), "--use-model",
                      "always" if model else ("auto" if learned else "never")] + mflag
    dcmd = taskset + [baler, "decompress", "--input", stream, "--output", recon] + mflag

    reported = []  # baler's own compress MB/s (in-process), one per repetition

    def run(cmd, keep=False):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
        m = re.search(r"([0-9.]+) MB/s", p.stdout + p.stderr)
        if keep and m:
            reported.append(float(m.group(1)))

    tc, _ = best_time(lambda: run(ccmd, keep=True))
    td, _ = best_time(lambda: run(dcmd))
    size = os.path.getsize(stream)
    blob = os.path.getsize(model) if model else 0
    with np.load(recon) as z:
        rec = z["data"]
    abs_bound, rng = bounds_for(data, rel, per_column)
    maxf, rmse, ok = errors(data, rec, abs_bound, rng)
    self_mbs = max(reported) if reported else None
    label = ("baler (autoencoder, decoder counted)" if model
             else ("baler (learned predictor, in the stream)" if data.ndim >= 3
                   else "baler (column relations)") if learned else "baler (model-free)")
    if not ok:
        msg = (f"FAIL: {label} on {os.path.basename(path)} at R={rel:g}: max error {maxf:.6f} "
               f"of the bound (> 1), some values are outside the error bound")
        print("!" * 100 + "\n" + msg + "\n" + "!" * 100, file=sys.stderr)
        FAILURES.append(msg)
    return dict(codec=label, size=size, total=size + blob, maxf=maxf, rmse=rmse, tc=tc, td=td,
                self_mbs=self_mbs, ok=ok)


# ------------------------------------------------------------------------------------ baselines

def sz3_row(data, rel, per_column):
    from pysz import sz, szConfig, szErrorBoundMode

    abs_bound, rng = bounds_for(data, rel, per_column)
    parts = [np.ascontiguousarray(data[:, j]) for j in range(data.shape[1])] if per_column else [data]
    ebs = list(np.atleast_1d(abs_bound)) if per_column else [float(abs_bound)]

    def cfg(a, eb):
        c = szConfig(a.shape)
        c.errorBoundMode = szErrorBoundMode.ABS
        c.absErrorBound = float(eb)
        c.openmp = False
        return c

    cfgs = [cfg(a, eb) for a, eb in zip(parts, ebs)]
    tc, comps = best_time(lambda: [sz.compress(a, c)[0] for a, c in zip(parts, cfgs)])
    td, decs = best_time(lambda: [sz.decompress(c, np.float64, a.shape)[0] for a, c in zip(parts, comps)])
    rec = np.stack(decs, axis=1) if per_column else decs[0]
    size = sum(c.nbytes for c in comps)
    maxf, rmse, ok = errors(data, rec, abs_bound, rng)
    return dict(codec="SZ3", size=size, total=size, maxf=maxf, rmse=rmse, tc=tc, td=td, ok=ok)


def zfp_row(data, rel, per_column):
    import zfpy

    abs_bound, rng = bounds_for(data, rel, per_column)
    parts = [np.ascontiguousarray(data[:, j]) for j in range(data.shape[1])] if per_column else [data]
    ebs = list(np.atleast_1d(abs_bound)) if per_column else [float(abs_bound)]
    tc, comps = best_time(lambda: [zfpy.compress_numpy(a, tolerance=float(eb)) for a, eb in zip(parts, ebs)])
    td, decs = best_time(lambda: [zfpy.decompress_numpy(c) for c in comps])
    rec = np.stack(decs, axis=1) if per_column else decs[0]
    size = sum(len(c) for c in comps)
    maxf, rmse, ok = errors(data, rec, abs_bound, rng)
    return dict(codec="ZFP", size=size, total=size, maxf=maxf, rmse=rmse, tc=tc, td=td, ok=ok)


def zstd_row(data, rel, per_column):
    import zstandard

    raw = np.ascontiguousarray(data).tobytes()
    cctx, dctx = zstandard.ZstdCompressor(level=19), zstandard.ZstdDecompressor()
    tc, comp = best_time(lambda: cctx.compress(raw), reps=min(REPS, 3))
    td, back = best_time(lambda: dctx.decompress(comp))
    rec = np.frombuffer(back, dtype=np.float64).reshape(data.shape)
    abs_bound, rng = bounds_for(data, rel, per_column)
    maxf, rmse, ok = errors(data, rec, abs_bound, rng)
    return dict(codec="zstd -19 (lossless)", size=len(comp), total=len(comp), maxf=maxf, rmse=rmse,
                tc=tc, td=td, ok=ok)


def codec_bench():
    """Codec-only encode MB/s from the criterion bench, {(data, codec, rel): MB/s}, or {}."""
    exe = os.environ.get("BALER_CODEC_BENCH")
    if not exe:
        return {}
    p = subprocess.run([exe, "--bench", "encode", "--warm-up-time", "1", "--measurement-time", "3"],
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        FAILURES.append(f"codec bench failed ({p.returncode}): {p.stderr.strip()[-300:]}")
        return {}
    found, name = {}, None
    units = {"KiB/s": 1024 / 1e6, "MiB/s": 2**20 / 1e6, "GiB/s": 2**30 / 1e6}
    for line in p.stdout.splitlines():
        m = re.match(r"^bounded/(\S+)/encode/(\S+)", line.strip())
        if m:
            name = (m.group(1), float(m.group(2)))
        t = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+)", line)
        if t and name:
            found[name] = float(t.group(1)) * units.get(t.group(2), float("nan"))
            name = None
    return found


# --------------------------------------------------------------------------------------- report

def fmt_rmse(x):
    return "0" if x == 0 else f"{x:.2e}"


def main():
    out_md = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "compare-bounded.md")
    data_dir = os.environ.get("BALER_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")
    if not os.path.isdir(data_dir):
        print(f"SKIPPED: data directory {data_dir} is absent (set BALER_DATA_DIR)")
        return 0
    baler = os.environ.get("BALER_BIN") or os.path.join(ROOT, "target", "release", "baler")
    if not os.access(baler, os.X_OK):
        print(f"error: {baler} is missing; run cargo build --release -p baler-cli", file=sys.stderr)
        return 2
    pin_one_core()

    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="compare-bounded-") as tmp:
        for name, fname, per_column, model_env in DATASETS:
            path = os.path.join(data_dir, fname)
            if not os.path.exists(path):
                print(f"SKIPPED: {path} is absent")
                continue
            with np.load(path) as z:
                data = np.ascontiguousarray(z["data"], dtype=np.float64)
            raw = data.size * 8
            model = os.environ.get(model_env)
            if model and not os.path.isfile(model):
                print(f"warning: {model_env}={model} is not a file; no autoencoder row", file=sys.stderr)
                model = None
            for rel in BOUNDS:
                print(f"== {name} R={rel:g}", file=sys.stderr)
                rs = [baler_row(baler, path, data, rel, per_column, tmp),
                      baler_row(baler, path, data, rel, per_column, tmp, learned=True)]
                if model:
                    rs.append(baler_row(baler, path, data, rel, per_column, tmp, model=model))
                rs += [sz3_row(data, rel, per_column), zfp_row(data, rel, per_column),
                       zstd_row(data, rel, per_column)]
                for r in rs:
                    r.update(data=name, rel=rel, raw=raw)
                    if not r["ok"] and not r["codec"].startswith("baler"):
                        print(f"warning: {r['codec']} on {name} at R={rel:g} exceeded the bound "
                              f"({r['maxf']:.6f} of it)", file=sys.stderr)
                    if r.get("self_mbs") is not None:
                        notes.append(f"{name} {rel:.0e} {r['codec']}: {r['self_mbs']:.1f} MB/s")
                rows += rs
            if model:
                notes.append(f"{name} autoencoder: {os.path.basename(model)}, {os.path.getsize(model)} bytes")

    head = (f"Machine: {cpu_model()}, one core (taskset -c {CPU}); "
            f"date {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}; "
            f"baler {git_describe()}; pysz {version('pysz')}, zfpy {version('zfpy')}, "
            f"zstandard {version('zstandard')}, numpy {np.__version__}.")
    cap = ("Error-bounded compression, all codecs measured in the same run on one core each. "
           "Bound = R x each column's range for hzz (SZ3 and ZFP compress each column separately "
           "with its own absolute bound, sizes summed) and R x the whole array's range for "
           "CFD_animation (SZ3 and ZFP on the whole 3-D array). Ratio = raw float64 bytes / "
           "compressed bytes; \"decoder counted\" adds the model blob for the autoencoder row "
           "(SZ3, ZFP and zstd decoders are libraries, counted as 0). Max err / bound is the worst "
           "value over all columns; RMSE / range is the RMS of (error / that value's range). "
           f"MB/s = raw float64 bytes / wall seconds, best of {REPS}: for baler, the wall time of the "
           "whole `baler compress`/`baler decompress` process (start-up and reading/writing .npz "
           "files included); for SZ3, ZFP and zstd, the in-process Python call on in-memory arrays "
           "(zstd compress best of " f"{min(REPS, 3)}).")
    lines = [f"# Error-bounded compression: baler vs SZ3, ZFP, zstd", "", head, "", cap, "",
             "| data | bound (x range) | codec | ratio (decoder counted) | ratio (stream only) "
             "| max err / bound | RMSE / range | compress MB/s | decompress MB/s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mb = r["raw"] / 1e6
        lines.append(
            f"| {r['data']} | {r['rel']:.0e} | {r['codec']} | {r['raw'] / r['total']:.2f} "
            f"| {r['raw'] / r['size']:.2f} | {r['maxf']:.3f}{'' if r['ok'] else ' FAIL'} "
            f"| {fmt_rmse(r['rmse'])} | {mb / r['tc']:.1f} | {mb / r['td']:.1f} |")
    codec = codec_bench()
    if codec:
        lines += ["", "Compress throughput of the codec alone (`benches/bounded_throughput`: no I/O, "
                  "no fitting; criterion's mean) next to SZ3's in-process compress, same run, same "
                  "core, MB/s of raw float64:", "",
                  "| data | bound (x range) | baler model-free | baler learned (field predictor / table relations) | SZ3 | default baler / SZ3 |",
                  "|---|---|---:|---:|---:|---:|"]
        for name, key in (("hzz", "hzz"), ("CFD_animation", "cfd")):
            for rel in BOUNDS:
                sz3 = [r for r in rows if r["data"] == name and r["rel"] == rel and r["codec"] == "SZ3"]
                free = codec.get((key, rel))
                learned = codec.get((f"{key}-learned", rel), codec.get((f"{key}-relations", rel)))
                if not sz3 or free is None:
                    continue
                sz3_mbs = sz3[0]["raw"] / 1e6 / sz3[0]["tc"]
                default = free if learned is None else learned  # what compress picks by default
                lines.append(f"| {name} | {rel:.0e} | {free:.0f} | "
                             f"{'' if learned is None else f'{learned:.0f}'} | {sz3_mbs:.0f} "
                             f"| {default / sz3_mbs:.2f} |")
    if notes:
        lines += ["", "baler's own in-process compress throughput (from its report line, "
                  f"start-up and file I/O excluded; best of {REPS}) and models used:", ""]
        lines += [f"- {n}" for n in notes]
    if FAILURES:
        lines += ["", "**FAILURES:**", ""] + [f"- {f}" for f in FAILURES]
    md = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    with open(out_md, "w") as f:
        f.write(md)
    print(md)
    print(f"(written to {out_md})", file=sys.stderr)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
