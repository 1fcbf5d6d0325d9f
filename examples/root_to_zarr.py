"""ROOT to baler: read TTree branches with uproot, compress them, store them in Zarr, compare.

    python examples/root_to_zarr.py [--store hzz.zarr]

Makes a small ROOT file from the shipped collider events (examples/data/hzz.npz) with
uproot.recreate: a flat TTree of per-event branches, and a jagged muon collection (a variable
number of muons per event). Then it reads both back as an analysis would and compresses:
- the flat branches as one table (each column within 1e-3 of its range);
- the jagged collection as a per-object table plus its offsets, the offsets losslessly.
The flat table also goes into a Zarr v3 array through the baler codec, its column names as
an attribute. Needs: pip install uproot awkward zarr.
"""

import argparse
import pathlib
import tempfile

import awkward as ak
import numpy as np
import uproot

import baler_rs
from baler_rs.zarr3 import BalerCodec

HZZ = pathlib.Path(__file__).resolve().parent / "data" / "hzz.npz"


def make_root_file(path):
    with np.load(HZZ) as npz:
        data, names = npz["data"], [str(n) for n in npz["names"]]
    columns = {name: data[:, i] for i, name in enumerate(names)}
    n_muon = columns["NMuon"].astype(np.int32)
    # The leading muons' momenta as a jagged collection: 0, 1 or 2 muons per event.
    count = np.minimum(n_muon, 2)
    px = np.stack([columns["Muon1_Px"], columns["Muon2_Px"]], axis=1)
    pz = np.stack([columns["Muon1_Pz"], columns["Muon2_Pz"]], axis=1)
    keep = np.arange(2)[None, :] < count[:, None]
    muons = ak.zip({"px": ak.unflatten(px[keep], count), "pz": ak.unflatten(pz[keep], count)})
    with uproot.recreate(path) as f:
        f["events"] = {name: columns[name] for name in names if not name.startswith("Muon")}
        f["muons"] = {"Muon": muons}
    return len(data)


def report(what, original, stream, bound):
    back = baler_rs.decompress(stream)
    worst = np.max(np.abs(back.astype(np.float64) - original), axis=0) / np.maximum(bound, 1e-300)
    print(f"{what}: {original.nbytes} -> {len(stream)} bytes (ratio {original.nbytes / len(stream):.1f}), "
          f"worst error {worst.max():.3f} of the bound")
    assert np.all(worst <= 1.0)


def to_zarr(table, names, store):
    """The table in a Zarr v3 array, chunks of 1024 events, every value within 1e-3 of its
    column's range: one absolute bound per array, so the tightest column's."""
    import zarr

    ranges = table.max(axis=0) - table.min(axis=0)
    eps = 1e-3 * float(ranges[ranges > 0].min())
    z = zarr.create_array(store=store, shape=table.shape, chunks=(1024, table.shape[1]),
                          dtype="f8", serializer=BalerCodec(error_bound=eps), overwrite=True)
    z[:] = table
    z.attrs["columns"] = names
    back = zarr.open_array(store, mode="r")
    assert np.all(np.abs(back[:] - table) <= eps)
    print(f"Zarr v3 at {store}: {back.shape[0]} events x {back.shape[1]} columns, "
          f"every value within {eps:.3g}")


def main(store=None):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "hzz.root"
        events = make_root_file(path)
        with uproot.open(path) as f:
            flat = f["events"].arrays(library="np")
            jagged = f["muons"].arrays()

        names = list(flat)
        table = np.stack([flat[n] for n in names], axis=1).astype(np.float64)
        stream = baler_rs.compress(table, rel_error_bound=1e-3, names=names)
        ranges = table.max(axis=0) - table.min(axis=0)
        report(f"{events} events x {len(names)} flat branches", table, stream, 1e-3 * ranges)

        # Jagged: the objects as one table (one row per muon), the offsets exactly.
        counts = ak.num(jagged["Muon"]).to_numpy().astype(np.int32)
        objects = np.stack([ak.flatten(jagged["Muon"][c]).to_numpy() for c in ("px", "pz")], axis=1)
        objects_stream = baler_rs.compress(objects.astype(np.float64), rel_error_bound=1e-3, names=["px", "pz"])
        counts_stream = baler_rs.compress(counts, error_bound=0.5)  # integers: lossless
        assert np.array_equal(baler_rs.decompress(counts_stream), counts)
        obj_ranges = objects.max(axis=0) - objects.min(axis=0)
        report(f"{len(objects)} muons (jagged, offsets lossless in {len(counts_stream)} bytes)",
               objects.astype(np.float64), objects_stream, 1e-3 * obj_ranges)
        rebuilt = ak.unflatten(baler_rs.decompress(objects_stream)[:, 0], baler_rs.decompress(counts_stream))
        assert ak.all(ak.num(rebuilt) == ak.num(jagged["Muon"]))
        to_zarr(table, names, store or str(pathlib.Path(tmp) / "hzz.zarr"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="where to write the Zarr array (default: a temporary folder)")
    main(parser.parse_args().store)
