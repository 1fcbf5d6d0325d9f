# Sourced by test.sh and fuzz.sh: sets `features` to the cargo flags every debug build of theirs
# shares, so that each later cargo call reuses what `cargo test --workspace` built (a build of
# one package, or without the HDF5 feature, resolves other features and recompiles the chain).
# With libhdf5 found (pkg-config hdf5; Debian: libhdf5-dev) the `baler` command is built and
# tested with HDF5 datasets as inputs and outputs (`--features baler-cli/hdf5`).
#   BALER_REQUIRE_HDF5=1   fail, not skip, when libhdf5 is missing
features=()
if pkg-config --exists hdf5 2>/dev/null; then
  features=(--features baler-cli/hdf5)
elif [ -n "${BALER_REQUIRE_HDF5:-}" ]; then
  echo "error: libhdf5 not found (pkg-config hdf5); install libhdf5-dev" >&2
  exit 1
else
  echo "NOTE: libhdf5 not found (pkg-config hdf5): the command's HDF5 inputs are not built or tested (Debian: libhdf5-dev)"
fi
