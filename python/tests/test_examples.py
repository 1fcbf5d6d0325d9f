"""The examples run as a user would run them."""

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_root_to_zarr(tmp_path, capsys):
    pytest.importorskip("uproot")
    pytest.importorskip("awkward")
    load("root_to_zarr").main(str(tmp_path / "hzz.zarr"))
    out = capsys.readouterr().out
    assert "2421 events x 21 flat branches" in out
    assert "worst error 1.000 of the bound" in out
    assert "Zarr v3" in out
