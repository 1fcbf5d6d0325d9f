"""The package's build backend: maturin, after building the HDF5 filter plugin.

The HDF5 plugin (`hdf5-filter/`, a cdylib of its own: HDF5 programs load it without Python)
is built by cargo first and copied into `baler_rs/hdf5_plugin/`, so the wheel carries it and
`import baler_rs` can point HDF5 at it. Everything else is maturin's (PEP 517 hooks
re-exported unchanged).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from maturin import (  # noqa: F401  (the PEP 517 hooks this backend serves)
    build_sdist,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)
from maturin import build_editable as _maturin_build_editable
from maturin import build_wheel as _maturin_build_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN_DIR = os.path.join(HERE, "baler_rs", "hdf5_plugin")


def _build_plugin() -> None:
    """Builds `libh5baler` with cargo (release) and copies it into the package."""
    manifest = os.path.join(HERE, "..", "hdf5-filter", "Cargo.toml")
    if not os.path.exists(manifest):
        print("baler-rs: hdf5-filter/ not found; the wheel has no HDF5 plugin", file=sys.stderr)
        return
    cargo = os.environ.get("CARGO", "cargo")
    run = subprocess.run(
        [cargo, "build", "--release", "--manifest-path", manifest, "--message-format=json"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    libraries = []
    for line in run.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and "cdylib" in message["target"]["kind"]:
            libraries += message["filenames"]
    plugins = [f for f in libraries if f.endswith((".so", ".dylib", ".dll"))]
    if not plugins:
        raise RuntimeError("cargo built no HDF5 plugin library")
    os.makedirs(PLUGIN_DIR, exist_ok=True)
    for plugin in plugins:
        shutil.copy2(plugin, PLUGIN_DIR)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _build_plugin()
    return _maturin_build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _build_plugin()
    return _maturin_build_editable(wheel_directory, config_settings, metadata_directory)
