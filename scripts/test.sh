#!/usr/bin/env bash
# All the tests: Rust (`cargo test --workspace`), then Python (the baler_rs package built with
# maturin into a virtualenv, and pytest). The README's test command and CI both run this.
#   BALER_VENV=DIR   the virtualenv to use (default .venv; made if missing)
#   BALER_SKIP_RUST=1 / BALER_SKIP_PYTHON=1   run one half only
#   BALER_REQUIRE_HDF5=1   fail, not skip, when libhdf5, h5py, netCDF4 or h5dump is missing
# With libhdf5 found (pkg-config hdf5; Debian: libhdf5-dev) the `baler` command is built and
# tested with HDF5 datasets as inputs and outputs (`--features baler-cli/hdf5`).
set -euo pipefail
cd "$(dirname "$0")/.."

features=()
if pkg-config --exists hdf5 2>/dev/null; then
  features=(--features baler-cli/hdf5)
elif [ -n "${BALER_REQUIRE_HDF5:-}" ]; then
  echo "error: libhdf5 not found (pkg-config hdf5); install libhdf5-dev" >&2
  exit 1
else
  echo "NOTE: libhdf5 not found (pkg-config hdf5): the command's HDF5 inputs are not built or tested (Debian: libhdf5-dev)"
fi

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
  # without it). The package's build (python/build_backend.py) builds the HDF5 filter plugin.
  cargo build -q -p baler-cli "${features[@]}"
  "$venv/bin/python" -m pytest python/tests -q
fi
