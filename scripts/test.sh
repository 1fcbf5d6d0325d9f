#!/usr/bin/env bash
# All the tests: Rust (`cargo test --workspace`), then Python (the baler_rs package built with
# maturin into a virtualenv, and pytest). The README's test command and CI both run this.
#   BALER_VENV=DIR   the virtualenv to use (default .venv; made if missing)
#   BALER_SKIP_RUST=1 / BALER_SKIP_PYTHON=1   run one half only
#   BALER_REQUIRE_HDF5=1   fail, not skip, when libhdf5 is missing (h5py, netCDF4 and h5dump too,
#                          in the Python tests); scripts/features.sh says what it adds
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/features.sh
source scripts/features.sh

if [ -z "${BALER_SKIP_RUST:-}" ]; then
  echo "== Rust tests"
  cargo test --workspace "${features[@]}"
fi

if [ -z "${BALER_SKIP_PYTHON:-}" ]; then
  echo "== Python tests (python/tests)"
  venv="${BALER_VENV:-.venv}"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip
  # The package and what its tests need (zarr, dask.distributed, pytest).
  "$venv/bin/python" -m pip install -q "./python[test]"
  # The interop tests run the baler command the Rust tests built (they skip, saying so,
  # without it): the same call as theirs, so nothing is rebuilt after them. The package's
  # build (python/build_backend.py) builds the HDF5 filter plugin.
  cargo test -q --workspace "${features[@]}" --no-run
  "$venv/bin/python" -m pytest python/tests -q
fi
