"""Shared helpers: the repository's paths, and a way to find the `baler` binary."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STREAMS = ROOT / "tests" / "streams"
HZZ = ROOT / "examples" / "data" / "hzz.npz"


def baler_binary():
    """The `baler` command built by cargo, the newer of the debug and release builds (a
    stale one may lack what the tests check), or None."""
    built = [ROOT / "target" / profile / "baler" for profile in ("release", "debug")]
    built = [p for p in built if p.exists() and os.access(p, os.X_OK)]
    return max(built, key=lambda p: p.stat().st_mtime, default=None)


@pytest.fixture
def baler_cli():
    path = baler_binary()
    if path is None:
        pytest.skip("SKIPPED: no target/{release,debug}/baler; run cargo build -p baler-cli first")
    return path
