#!/usr/bin/env python3
"""How much could a neural model gain in the error-bounded mode? An upper bound, measured.

Usage: python scripts/neural_ceiling.py [--bounds 1e-2,1e-3,1e-4] [--baler target/release/baler]
       [--only hzz,CFD_animation,...]
       (needs numpy and scikit-learn; reads the shared data from ../shared/data)

For each data set and bound R it compares baler's real stream (`baler compress
--rel-error-bound R`, the best non-neural path `--use-model auto` finds) with two neural
designs of issue 21, each given every advantage:
- **a nonlinear causal predictor**: an MLP (two hidden layers of 32, scikit-learn, float,
  trained on the data it is judged on) that corrects a least-squares linear predictor over the
  same causal context: the values of the earlier columns of the row for a table, ten causal
  neighbours (this frame and the one before) for a field;
- **a learned entropy model**: an MLP classifier giving the distribution of each residual
  (clipped to +-31, the rest one escape class) from the magnitudes of its causal
  neighbours' residuals, against a hand-made context of the same neighbours (8 classes).
The predictors see the values as a decoder would (each within the bound of the original: a
uniform error of up to the bound added, not the decoder's own reconstruction), their
residuals cost their empirical entropy (no coder overhead, no adaptation) and their model
costs nothing. So each figure is a ceiling: what a quantized integer version
could at best approach. The issue's target is 1.15x over the best non-neural path with the
model counted; where even the ceiling falls short, no design of that kind can reach it.
The harness itself is optimistic too (ideal entropy, no side information, open loop), so its
absolute bytes are not comparable with a real stream; the gains are: the MLP-corrected
predictor against the linear one on the same context (both at order-0 entropy), and the
learned entropy model against the hand-made context on the same residuals. Prints a Markdown
table with the real stream's bytes beside them.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("BALER_DATA_DIR", os.path.join(os.path.dirname(ROOT), "shared", "data"))
SAMPLE = 60_000  # training rows for each MLP
CLIP = 31


def entropy_bits(q):
    """Empirical order-0 entropy of integer codes, in bits (total)."""
    _, counts = np.unique(q, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def conditional_bits(q, ctx):
    """Empirical entropy of q given a small integer context, in bits (total)."""
    total = 0.0
    for c in np.unique(ctx):
        total += entropy_bits(q[ctx == c])
    return total


def mlp_correction(x, y, seed=0):
    """Least-squares prediction of y from x, corrected by an MLP fitted to its residual."""
    from sklearn.neural_network import MLPRegressor

    design = np.column_stack([x, np.ones(len(x))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    linear = design @ coef
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), min(SAMPLE, len(x)), replace=False)
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-30
    r = y - linear
    rs = r.std() + 1e-30
    net = MLPRegressor(hidden_layer_sizes=(32, 32), max_iter=60, early_stopping=True,
                       random_state=seed, tol=1e-5)
    net.fit((x[rows] - mu) / sd, r[rows] / rs)
    mlp_correction.last = (coef, mu, sd, rs, net)
    return linear, linear + net.predict((x - mu) / sd) * rs


def closed_loop_bits(x, rel):
    """Order-0 bits of the linear and of the MLP-corrected field predictor in a real closed
    loop: every value predicted from the values decoded before it, coded, then decoded (the
    models fitted as in `field_predictions`), counted on the values whose neighbours all exist
    and scaled to the whole field. Slow: a value at a time."""
    field_predictions(x, rel)
    coef, mu, sd, rs, net = mlp_correction.last
    weights = [(w.T, b) for w, b in zip(net.coefs_, net.intercepts_)]
    eb = rel * float(x.max() - x.min())
    offsets = [(0, 0, -1), (0, -1, 0), (0, -1, -1), (0, -1, 1), (0, 0, -2), (0, -2, 0),
               (-1, 0, 0), (-1, -1, 0), (-1, 0, -1), (-1, -1, -1)]
    t, h, w = x.shape
    out = []
    for use_mlp in (False, True):
        rec = np.zeros((t + 1, h + 3, w + 3))
        q = np.zeros(x.shape, dtype=np.int64)
        for i in range(t):
            for j in range(h):
                for k in range(w):
                    # The edge padding of `field_predictions` repeats the nearest value; here the
                    # border reads the decoded neighbours where they exist and 0 elsewhere.
                    ctx = np.array([rec[i + 1 + a, j + 2 + b, k + 2 + c] for a, b, c in offsets])
                    pred = ctx @ coef[:-1] + coef[-1]
                    if use_mlp:
                        z = (ctx - mu) / sd
                        for n, (wt, bias) in enumerate(weights):
                            z = wt @ z + bias
                            if n + 1 < len(weights):
                                z = np.maximum(z, 0)
                        pred += float(z[0]) * rs
                    code = int(np.round((x[i, j, k] - pred) / (2 * eb)))
                    q[i, j, k] = code
                    rec[i + 1, j + 2, k + 2] = pred + 2 * eb * code
        # Only the values whose ten neighbours all exist (the open-loop figures pad the edges).
        out.append(entropy_bits(q[1:, 2:, 2:-1].ravel()) * q.size / q[1:, 2:, 2:-1].size)
    return out


def escape_bits(q, group):
    """What the values beyond +-CLIP cost on top of their escape class: order-0 within each
    group (a table's column), the same for both models."""
    big = np.abs(q) > CLIP
    return sum(entropy_bits(q[big & (group == g)]) for g in np.unique(group[big]))


def hand_bits(q, ctx, group):
    """The hand-made context model on the same clipped classes as the learned one."""
    return conditional_bits(np.clip(q, -CLIP - 1, CLIP + 1), ctx) + escape_bits(q, group)


def learned_entropy_bits(q, features, group, seed=0):
    """Cross-entropy of q (clipped, one escape class) under an MLP classifier of the features,
    plus the escaped values' cost."""
    from sklearn.neural_network import MLPClassifier

    cls = np.clip(q, -CLIP - 1, CLIP + 1)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(q), min(SAMPLE, len(q)), replace=False)
    net = MLPClassifier(hidden_layer_sizes=(32,), max_iter=40, early_stopping=True,
                        random_state=seed)
    net.fit(features[rows], cls[rows])
    p = net.predict_proba(features)
    index = np.searchsorted(net.classes_, cls)
    seen = index < len(net.classes_)
    seen[seen] = net.classes_[index[seen]] == cls[seen]
    prob = np.where(seen, p[np.arange(len(q)), np.minimum(index, len(net.classes_) - 1)], 1e-6)
    return float(-np.log2(np.maximum(prob, 1e-9)).sum()) + escape_bits(q, group)


def hand_context(features):
    """8 classes from the mean log-magnitude of the neighbours' residuals."""
    m = features.mean(axis=1)
    return np.minimum((m * 2).astype(int), 7)


def decoded(x, eb, seed=1):
    """What a decoder sees in place of x: x plus a quantization error uniform in +-eb."""
    rng = np.random.default_rng(seed)
    return x + rng.uniform(-1, 1, x.shape) * eb


def table_predictions(x, rel):
    """Per column, the linear and the MLP-corrected prediction from the earlier columns as the
    decoder has them (within rel x their range)."""
    seen = decoded(x, rel * (x.max(axis=0) - x.min(axis=0)))
    out = [(np.full(len(x), x[:, 0].mean()),) * 2]
    for c in range(1, x.shape[1]):
        out.append(mlp_correction(seen[:, :c], x[:, c]))
    return out


def table_study(x, predictions, rel):
    """Bits of the two ceilings on a table (rows x columns), bound rel x each column's range."""
    rows, cols = x.shape
    span = x.max(axis=0) - x.min(axis=0)
    pred_bits, linear_bits, q_all = 0.0, 0.0, []
    for c in range(cols):
        eb = rel * span[c]
        if eb == 0:
            q_all.append(np.zeros(rows, dtype=np.int64))
            continue
        linear, pred = predictions[c]
        q = np.round((x[:, c] - pred) / (2 * eb)).astype(np.int64)
        pred_bits += entropy_bits(q)
        q_all.append(np.round((x[:, c] - linear) / (2 * eb)).astype(np.int64))
        linear_bits += entropy_bits(q_all[-1])
    # Entropy model: each column's residual from the magnitudes of up to 4 earlier columns'.
    q = np.stack(q_all, axis=1)
    mag = np.log1p(np.abs(q))
    feats, targets = [], []
    for c in range(cols):
        f = np.zeros((rows, 4))
        for k in range(1, 5):
            if c - k >= 0:
                f[:, k - 1] = mag[:, c - k]
        feats.append(np.column_stack([f, np.full(rows, c / cols)]))
        targets.append(q[:, c])
    feats, targets = np.concatenate(feats), np.concatenate(targets)
    hand = np.stack([hand_context(feats[:, :4]), (feats[:, 4] * cols).astype(int)], axis=1)
    hand_ctx = hand[:, 0] * 1000 + hand[:, 1]
    column = hand[:, 1]
    return (linear_bits, pred_bits, hand_bits(targets, hand_ctx, column),
            learned_entropy_bits(targets, feats, column))


def field_predictions(x, rel):
    """The linear and the MLP-corrected prediction of every value from ten causal neighbours,
    as the decoder has them (within rel x the array's range)."""
    f = np.pad(decoded(x, rel * float(x.max() - x.min())), ((1, 0), (2, 1), (2, 1)), mode="edge")
    t, y, w = x.shape
    T, Y, X = np.meshgrid(np.arange(1, t + 1), np.arange(2, y + 2), np.arange(2, w + 2),
                          indexing="ij")
    offsets = [(0, 0, -1), (0, -1, 0), (0, -1, -1), (0, -1, 1), (0, 0, -2), (0, -2, 0),
               (-1, 0, 0), (-1, -1, 0), (-1, 0, -1), (-1, -1, -1)]
    ctx = np.stack([f[T + a, Y + b, X + c].ravel() for a, b, c in offsets], axis=1)
    return mlp_correction(ctx, x.ravel())


def field_study(x, predictions, rel):
    """Bits of the two ceilings on a field (frames x h x w), bound rel x the array's range."""
    eb = rel * float(x.max() - x.min())
    t, y, w = x.shape
    target = x.ravel()
    linear, pred = predictions
    q = np.round((target - pred) / (2 * eb)).astype(np.int64)
    pred_bits = entropy_bits(q)
    ql = np.round((target - linear) / (2 * eb)).astype(np.int64).reshape(x.shape)
    g = np.pad(np.log1p(np.abs(ql)), ((1, 0), (1, 1), (1, 1)))
    T, Y, X = np.meshgrid(np.arange(1, t + 1), np.arange(1, y + 1), np.arange(1, w + 1),
                          indexing="ij")
    feats = np.stack([g[T + a, Y + b, X + c].ravel() for a, b, c in
                      [(0, 0, -1), (0, -1, 0), (0, -1, -1), (-1, 0, 0)]], axis=1)
    flat = ql.ravel()
    one = np.zeros(len(flat), dtype=np.int64)
    return (entropy_bits(flat), pred_bits, hand_bits(flat, hand_context(feats), one),
            learned_entropy_bits(flat, feats, one))


def baler_bytes(exe, array, rel, tmp):
    src, out = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.baler")
    np.savez(src, data=array)
    subprocess.run([exe, "compress", "--input", src, "--output", out, "--rel-error-bound",
                    repr(rel)], check=True, capture_output=True)
    return os.path.getsize(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bounds", default="1e-2,1e-3,1e-4")
    ap.add_argument("--baler", default=os.path.join(ROOT, "target", "release", "baler"))
    ap.add_argument("--only", help="comma-separated data set names")
    ap.add_argument("--closed-loop", action="store_true",
                    help="also code each field in a real closed loop (slow: a value at a time)")
    args = ap.parse_args()
    synthetic = os.path.join(tempfile.gettempdir(), "baler-neural-ceiling-synthetic.npz")
    if not os.path.exists(synthetic):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "synthetic_events.py"),
                        synthetic, "10000"], check=True, capture_output=True)
    sets = [("hzz", "table", os.path.join(ROOT, "examples", "data", "hzz.npz")),
            ("synthetic events (10,000)", "table", synthetic),
            ("dev_delphes_ttbar", "table", os.path.join(DATA, "dev_delphes_ttbar.npz")),
            ("dev_allpix_timepix", "table", os.path.join(DATA, "dev_allpix_timepix.npz")),
            ("CFD_animation", "field", os.path.join(DATA, "CFD_animation.npz")),
            ("dev_um_u_monthly", "field", os.path.join(DATA, "dev_um_u_monthly.npz")),
            ("dev_colpex_theta", "field", os.path.join(DATA, "dev_colpex_theta.npz")),
            ("dev_name_ash", "field", os.path.join(DATA, "dev_name_ash.npz"))]
    print("| data | R | baler stream (best non-neural) | linear predictor | + MLP correction | "
          "predictor gain | linear + hand-made context | linear + learned entropy model | "
          "entropy-model gain |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, path in sets:
            if args.only and name.split(" ")[0] not in args.only.split(","):
                continue
            if not os.path.exists(path):
                print(f"skipping {name}: {path} not found", file=sys.stderr)
                continue
            with np.load(path) as z:
                x = np.asarray(z["data"], dtype=np.float64)
            predict, study = ((table_predictions, table_study) if kind == "table"
                              else (field_predictions, field_study))
            for rel in (float(b) for b in args.bounds.split(",")):
                real = baler_bytes(args.baler, x, rel, tmp)
                predictions = predict(x, rel)
                lin, pred, hand, learned = (b / 8 for b in study(x, predictions, rel))
                print(f"| {name} | {rel:g} | {real:,} B | {lin:,.0f} B | {pred:,.0f} B | "
                      f"{lin / pred:.3f}x | {hand:,.0f} B | {learned:,.0f} B | "
                      f"{hand / learned:.3f}x |", flush=True)
                if args.closed_loop and kind == "field":
                    lin_c, mlp_c = (b / 8 for b in closed_loop_bits(x, rel))
                    print(f"| {name}, closed loop | {rel:g} | | {lin_c:,.0f} B | {mlp_c:,.0f} B | "
                          f"{lin_c / mlp_c:.3f}x | | | |", flush=True)


if __name__ == "__main__":
    main()
