"""Shared helpers: the repository's paths, and a way to find the `baler` binary."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STREAMS = ROOT / "tests" / "streams"
HZZ = ROOT / "examples" / "data" / "hzz.npz"


def baler_binary():
    """The `baler` command built by cargo (debug or release), or None."""
    for profile in ("release", "debug"):
        path = ROOT / "target" / profile / "baler"
        if path.exists() and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture
def baler_cli():
    path = baler_binary()
    if path is None:
        pytest.skip("SKIPPED: no target/{release,debug}/baler; run cargo build -p baler-cli first")
    return path
