import json
import time

import numpy as np
import pytest
import xarray as xr

from mstgat_core.data import io
from mstgat_core.data.synthetic import make_scenario


def test_same_seed_same_scenario_other_seed_differs():
    a, b, c = make_scenario(seed=1), make_scenario(seed=1), make_scenario(seed=2)
    xr.testing.assert_identical(a.grid, b.grid)
    assert a.truth == b.truth and a.deposits.equals(b.deposits)
    assert not np.allclose(a.grid["Li"].fillna(0), c.grid["Li"].fillna(0))
    assert a.truth != c.truth


def test_grid_conventions_and_truth():
    s = make_scenario()
    info = io.grid_info(s.grid)
    assert info["shape"] == [64, 64] and info["crs"] == "EPSG:32650" and info["cell_size"] == [1000.0, 1000.0]
    assert 0 < info["valid_cells"] < 64 * 64  # an irregular survey boundary
    assert all(v.dtype == np.float32 for v in s.grid.data_vars.values())
    truth = json.loads(json.dumps(s.truth))
    ore, decoy = truth["anomalies"]
    assert ore["elements"] == ["Li", "Be", "Nb"] and ore["hosts_deposits"] and len(ore["centres"]) == 6
    assert not decoy["hosts_deposits"] and len(decoy["centres"]) == 4
    assert not set(ore["elements"]) & set(decoy["elements"])


def test_deposits_lie_inside_hosting_anomalies():
    for seed in range(5):
        s = make_scenario(seed=seed)
        assert s.anomaly_mask[s.deposits["row"], s.deposits["col"]].all()
        ore = s.truth["anomalies"][0]
        assert 6 <= len(s.deposits) <= 18
        cells = io.deposit_cells(s.grid, s.deposits)
        assert cells.attrs["n_inside"] == len(s.deposits)
        assert not (cells.values & ~s.anomaly_mask).any()
        centres = np.array(ore["centres"])
        gap = np.hypot(
            s.deposits["row"].values[:, None] - centres[:, 0], s.deposits["col"].values[:, None] - centres[:, 1]
        )
        assert (gap.min(axis=1) <= ore["scale"]).all()


def test_anomalies_are_enriched_and_decoys_too():
    s = make_scenario(seed=4)
    for anomaly in s.truth["anomalies"]:
        for element in anomaly["elements"]:
            values = s.grid[element].values
            at_centres = np.array([values[r, c] for r, c in anomaly["centres"]])
            assert np.median(at_centres) > np.nanmedian(values)


def test_n_deposits_and_custom_anomalies():
    s = make_scenario(n_elements=4, anomalies=[{"elements": ["Li"], "scale": 2, "n": 3}], n_deposits=7)
    assert len(s.deposits) == 7 and s.truth["elements"] == ["Li", "Be", "Nb", "Sn"]


@pytest.mark.slow
def test_scales_to_millions_of_cells():
    start = time.perf_counter()
    s = make_scenario(shape=(2000, 2000))
    assert time.perf_counter() - start < 30
    assert s.grid["Li"].dtype == np.float32 and s.grid.sizes == {"y": 2000, "x": 2000}
