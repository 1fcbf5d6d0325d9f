#!/usr/bin/env python3
"""Writes a synthetic event table whose columns are related by physics, to check error-bounded
compression beyond hzz: two muons and a jet (px, py, pz, E, pt, eta, phi each), the dimuon
invariant mass and a jet count. E, pt, eta, phi and the mass are functions of other columns.

Usage: python3 scripts/synthetic_events.py OUT.npz [EVENTS]   (default 50000 events, seed 1)
"""
import sys

import numpy as np


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "synthetic_events.npz"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    rng = np.random.default_rng(1)
    cols = {}
    for name, mass in (("mu1", 0.10566), ("mu2", 0.10566), ("jet1", None)):
        pt = rng.exponential(25, n) + 5
        eta = rng.normal(0, 1.5, n)
        phi = rng.uniform(-np.pi, np.pi, n)
        m = np.full(n, mass) if mass else rng.gamma(4, 3, n)
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
        for key, v in (("px", px), ("py", py), ("pz", pz), ("E", e), ("pt", pt), ("eta", eta), ("phi", phi)):
            cols[f"{name}_{key}"] = v
    e, px, py, pz = (cols[f"mu1_{k}"] + cols[f"mu2_{k}"] for k in ("E", "px", "py", "pz"))
    cols["mll"] = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0))
    cols["njet"] = rng.poisson(2, n).astype(float)
    names = list(cols)
    np.savez(out, data=np.stack([cols[k] for k in names], 1), names=np.array(names))
    print(f"{out}: {n} events x {len(names)} columns")


if __name__ == "__main__":
    main()
