import zipfile

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from mstgat_core.data import io
from mstgat_core.data.preprocess import valid_mask
from mstgat_core.errors import DataError

# --------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def south_china(shared_data):
    return io.load_grid(shared_data / "south-china-li")


def test_south_china_grid(south_china):
    info = io.grid_info(south_china)
    assert len(info["elements"]) == 39
    assert "Y" in info["elements"] and "xx" not in info["elements"] and "yy" not in info["elements"]
    assert info["shape"] == [163, 141]
    assert info["crs"] == "EPSG:32650"
    assert info["valid_cells"] == 20460
    assert all(v.dtype == np.float32 and v.dims == ("y", "x") for v in south_china.data_vars.values())


def test_south_china_deposits_fall_in_21_cells(south_china, shared_data):
    deposits = io.load_deposits(shared_data / "south-china-li" / "Li_deposits0.tif")
    cells = io.deposit_cells(south_china, deposits)
    assert cells.dtype == bool and cells.dims == ("y", "x")
    assert cells.attrs["n_deposits"] == 23
    assert cells.attrs["n_inside"] == 23
    assert cells.attrs["n_outside"] == 0
    assert cells.attrs["n_cells"] == 21 == int(cells.sum())


def test_bundled_asset_matches_source(south_china):
    from pathlib import Path

    from mstgat_core.data.support import without_support

    asset = Path(__file__).resolve().parents[1] / "assets" / "south_china_li.nc"
    xr.testing.assert_identical(without_support(io.load_grid(asset)), south_china)  # its support: test_support.py
    deposits = io.load_deposits(asset.with_name("south_china_li_deposits.csv"))
    assert io.deposit_cells(south_china, deposits).attrs["n_cells"] == 21


def test_element_subset_and_unknown(shared_data):
    ds = io.load_grid(shared_data / "south-china-li", elements=["Li", "Be"])
    assert list(ds.data_vars) == ["Li", "Be"]
    with pytest.raises(DataError, match="Unobtainium"):
        io.load_grid(shared_data / "south-china-li", elements=["Li", "Unobtainium"])


@pytest.fixture(scope="module")
def lapland(shared_data):
    return io.load_points(shared_data / "lapland-till" / "till_geochem_511p.csv")


def test_lapland_points(lapland):
    assert len(lapland.table) == 1112
    assert len(lapland.elements) == 22
    assert lapland.crs.to_string() == "EPSG:3067"  # inferred from the tm35fin suffix
    assert lapland.censored["Zr"] == 166
    assert lapland.censored["Th"] == 19
    assert lapland.units["Zr"] == "ppm"
    assert (lapland.table["Zr"] >= 0).all()  # flagged zeros became half a detection limit


def test_lapland_gpkg_matches_csv(lapland, shared_data):
    gpkg = io.load_points(shared_data / "lapland-till" / "IOCG_CLB_Till_Geochem_reg_511p.gpkg")
    assert len(gpkg.table) == len(lapland.table)
    assert gpkg.elements == lapland.elements
    assert gpkg.censored == lapland.censored


def test_lapland_grid_and_deposits(lapland, shared_data):
    grid = io.points_to_grid(lapland, 2000.0)
    info = io.grid_info(grid)
    assert info["crs"] == "EPSG:3067" and info["cell_size"] == [2000.0, 2000.0]
    mask = valid_mask(grid)
    assert 0 < mask.sum() < mask.size  # far cells are masked
    # every cell holding a sample is finite
    rows, cols = rasterio.transform.rowcol(
        grid.rio.transform(), lapland.table.geometry.x.values, lapland.table.geometry.y.values, op=np.floor
    )
    assert mask[np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)].all()
    deposits = io.load_deposits(shared_data / "lapland-till" / "IOCG_Deps_Prosp_Occs.csv")
    cells = io.deposit_cells(grid, deposits)
    assert cells.attrs["n_deposits"] == 13
    assert cells.attrs["n_outside"] == 0
    assert cells.attrs["n_masked"] == 0
    assert cells.attrs["n_inside"] == 13


def test_nearest_gridding_and_max_distance(lapland):
    near = io.points_to_grid(lapland, 2000.0, method="nearest", max_distance=1500.0)
    idw = io.points_to_grid(lapland, 2000.0)
    assert valid_mask(near).sum() < valid_mask(idw).sum()


# ---------------------------------------------------------- round trips


def test_netcdf_round_trip_is_lossless(small_scenario, tmp_path):
    ds = small_scenario.grid
    ds.attrs["note"] = "kept"
    io.save_grid(ds, tmp_path / "g.nc")
    back = io.load_grid(tmp_path / "g.nc")
    xr.testing.assert_identical(back, ds)
    assert back.rio.crs == ds.rio.crs and back["Li"].attrs["units"] == "ppm"
    assert not list(tmp_path.glob(".*tmp*"))


def test_zarr_round_trip(small_scenario, tmp_path):
    io.save_grid(small_scenario.grid, tmp_path / "g.zarr")
    back = io.load_grid(tmp_path / "g.zarr")
    xr.testing.assert_equal(back, small_scenario.grid)
    assert back.rio.crs == small_scenario.grid.rio.crs


def test_multiband_geotiff_round_trip(small_scenario, tmp_path):
    ds = small_scenario.grid
    io.save_grid(ds, tmp_path / "g.tif")
    back = io.load_grid(tmp_path / "g.tif")
    assert list(back.data_vars) == list(ds.data_vars)
    np.testing.assert_array_equal(back.to_array().values, ds.to_array().values)
    np.testing.assert_allclose(back.x, ds.x)
    np.testing.assert_allclose(back.y, ds.y)
    assert back.rio.crs == ds.rio.crs


def write_layer_folder(ds, folder, prefix="Idw_"):
    folder.mkdir()
    for name in ds.data_vars:
        io.save_grid(ds[[name]], folder / f"{prefix}{name}.tif")
    io.save_grid(ds[[next(iter(ds.data_vars))]], folder / f"{prefix}xx.tif")  # coordinate helper: skipped
    return folder


def test_geotiff_folder_round_trip_skips_helpers(small_scenario, tmp_path):
    ds = small_scenario.grid
    folder = write_layer_folder(ds, tmp_path / "layers")
    back = io.load_grid(folder)
    assert sorted(back.data_vars) == sorted(ds.data_vars)
    for name in ds.data_vars:
        np.testing.assert_array_equal(back[name].values, ds[name].values)
    assert back.rio.crs == ds.rio.crs


def test_zip_of_geotiffs(small_scenario, tmp_path):
    folder = write_layer_folder(small_scenario.grid, tmp_path / "layers")
    archive = tmp_path / "layers.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"survey/{f.name}")
    back = io.load_grid(archive)
    assert sorted(back.data_vars) == sorted(small_scenario.grid.data_vars)
    np.testing.assert_array_equal(back["Li"].values, small_scenario.grid["Li"].values)


# ---------------------------------------------------------- bad grids


def test_mismatched_layers_name_the_file(small_scenario, tmp_path):
    folder = write_layer_folder(small_scenario.grid, tmp_path / "layers")
    io.save_grid(small_scenario.grid[["Li"]].isel(x=slice(0, 10)), folder / "Idw_Zz.tif")
    with pytest.raises(DataError, match="Idw_Zz.tif"):
        io.load_grid(folder)


def test_all_nan_layer_is_named(small_scenario, tmp_path):
    ds = small_scenario.grid.copy()
    ds["Be"] = ds["Be"] * np.nan
    io.save_grid(ds, tmp_path / "g.nc")
    with pytest.raises(DataError, match="Be"):
        io.load_grid(tmp_path / "g.nc")


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        io.load_grid(tmp_path / "nope.nc")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="unknown grid format"):
        io.load_grid(tmp_path / "notes.txt")


def test_failed_save_leaves_nothing(small_scenario, tmp_path):
    with pytest.raises(DataError):
        io.save_grid(small_scenario.grid, tmp_path / "g.xyz")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------- censoring

CENSOR_CSV = """x,y,Cu_ppm,Cu_T,Pb_ppm,Zn_ppm,As_ppb_icp
0,0,10,,<0.5,5,-9999
1,0,2,<,7,-2,3
2,0,0,<,8,6,4
3,0,4,,<1,9,-999
"""


@pytest.mark.parametrize(
    "rule, cu, pb, zn",
    [
        ("half", [10, 1, 2, 4], [0.25, 7, 8, 0.5], [5, 1, 6, 9]),
        ("dl", [10, 2, 4, 4], [0.5, 7, 8, 1], [5, 2, 6, 9]),
    ],
)
def test_every_censored_form(tmp_path, rule, cu, pb, zn):
    path = tmp_path / "s.csv"
    path.write_text(CENSOR_CSV)
    s = io.load_points(path, crs="EPSG:32650", censor=rule)
    assert s.elements == ["Cu", "Pb", "Zn", "As"]
    assert s.units == {"Cu": "ppm", "Pb": "ppm", "Zn": "ppm", "As": "ppm"}  # As_ppb_icp converted to ppm
    # flag "<" with a value (2 -> DL 2); flag with 0 -> DL = smallest positive uncensored value (4)
    np.testing.assert_allclose(s.table["Cu"], cu)
    np.testing.assert_allclose(s.table["Pb"], pb)  # "<0.5" strings
    np.testing.assert_allclose(s.table["Zn"], zn)  # negative = below |v|
    np.testing.assert_allclose(s.table["As"], [np.nan, 0.003, 0.004, np.nan])  # sentinels are missing; ppb -> ppm
    assert s.censored == {"Cu": 2, "Pb": 2, "Zn": 1, "As": 0}


def test_censor_nan_rule(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(CENSOR_CSV)
    s = io.load_points(path, crs="EPSG:32650", censor="nan")
    assert np.isnan(s.table["Cu"]).sum() == 2


def test_unparseable_value_names_column(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("x,y,Cu_ppm\n0,0,1\n1,1,abc\n")
    with pytest.raises(DataError, match="Cu_ppm.*abc"):
        io.load_points(path, crs="EPSG:32650")


def test_csv_without_coordinates(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("Cu_ppm\n1\n")
    with pytest.raises(DataError, match="coordinate"):
        io.load_points(path)


def test_lon_lat_inferred_and_projected_needs_crs(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("lon,lat,Cu_ppm\n114,28,1\n114.1,28.1,2\n")
    samples = io.load_points(path)
    assert samples.source_crs.to_string() == "EPSG:4326" and samples.crs.to_epsg() == 32650  # UTM 50N (114-120 E)
    assert io.load_points(path, project=False).crs.to_string() == "EPSG:4326"
    path.write_text("easting,northing,Cu_ppm\n1,2,1\n")  # small numbers, but easting/northing are projected
    with pytest.raises(DataError, match="--crs"):
        io.load_points(path)


def test_deposits_from_csv_with_crs_column_and_outside(small_scenario, tmp_path):
    table = small_scenario.deposits.drop(columns="geometry")
    table["crs"] = "EPSG:32650"
    table.loc[len(table)] = table.iloc[0]
    table.loc[len(table) - 1, "x"] = -1e6  # far outside
    table.to_csv(tmp_path / "d.csv", index=False)
    deposits = io.load_deposits(tmp_path / "d.csv")
    cells = io.deposit_cells(small_scenario.grid, deposits)
    assert cells.attrs["n_outside"] == 1
    assert cells.attrs["n_inside"] == len(small_scenario.deposits)


def test_no_deposit_inside_is_an_error(small_scenario):
    far = small_scenario.deposits.copy()
    far.geometry = far.geometry.translate(1e7, 0)
    with pytest.raises(DataError, match="none of the"):
        io.deposit_cells(small_scenario.grid, far)


def test_deposit_raster_mask(tmp_path, small_scenario):
    ds = small_scenario.grid
    mask = np.full((ds.sizes["y"], ds.sizes["x"]), 3, dtype="uint8")
    mask[10, 12] = 1
    profile = dict(
        driver="GTiff",
        width=mask.shape[1],
        height=mask.shape[0],
        count=1,
        dtype="uint8",
        crs=ds.rio.crs,
        transform=ds.rio.transform(),
        nodata=3,
    )
    with rasterio.open(tmp_path / "dep.tif", "w", **profile) as dst:
        dst.write(mask, 1)
    deposits = io.load_deposits(tmp_path / "dep.tif")
    assert len(deposits) == 1
    assert deposits.geometry.x.iloc[0] == pytest.approx(float(ds.x[12]))
    assert deposits.geometry.y.iloc[0] == pytest.approx(float(ds.y[10]))


def test_sample_support_is_the_distance_to_the_nearest_sample(tmp_path):
    """Brute force: each valid cell's distance to its nearest sample; the median spacing of the samples."""
    from mstgat_core.data.points import sample_support

    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 5000, size=(40, 2)) + [400_000, 7_000_000]
    pd.DataFrame(
        {"X": xy[:, 0], "Y": xy[:, 1], "Au_ppb": rng.lognormal(size=40), "As_ppm": rng.lognormal(size=40)}
    ).to_csv(tmp_path / "s.csv", index=False)
    samples = io.load_points(tmp_path / "s.csv", crs="EPSG:32650")
    grid = io.points_to_grid(samples, 250.0)
    support = sample_support(grid, samples)
    gx, gy = np.meshgrid(grid.x.values, grid.y.values)
    brute = np.hypot(gx[..., None] - xy[:, 0], gy[..., None] - xy[:, 1]).min(axis=-1)
    valid = np.isfinite(grid["Au"].values)
    np.testing.assert_allclose(support.values[valid], brute[valid])
    assert np.isnan(support.values[~valid]).all() and (~valid).any()
    pairwise = np.hypot(xy[:, None, 0] - xy[:, 0], xy[:, None, 1] - xy[:, 1]) + np.diag(np.full(40, np.inf))
    assert support.attrs["median_spacing"] == pytest.approx(np.median(pairwise.min(axis=1)))
    assert support.attrs["units"] == "m"
