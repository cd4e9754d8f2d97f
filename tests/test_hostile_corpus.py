"""A hostile-input corpus, generated here (nothing large is committed): each file gets its one-line
error and exit 2 with nothing written, or goes through a documented path."""

import zipfile

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mstgat_core.cli import main


def _grid(path, values):
    xr.Dataset(
        {"Au": (("y", "x"), values.astype("float32")), "As": (("y", "x"), np.ones(values.shape, "float32"))},
        coords={
            "y": 7_000_000.0 - np.arange(values.shape[0]) * 100.0,
            "x": 400_000.0 + np.arange(values.shape[1]) * 100.0,
        },
    ).to_netcdf(path)


def _zip(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _points(path, x, y, columns=("X", "Y")):
    n = len(x)
    pd.DataFrame({columns[0]: x, columns[1]: y, "Au_ppb": np.linspace(1, 2, n), "As_ppm": np.linspace(3, 1, n)}).to_csv(
        path, index=False
    )


def _polygons(path):
    import geopandas as gpd
    from shapely.geometry import box

    cells = [box(4e5 + i * 100, 7e6, 4e5 + i * 100 + 50, 7e6 + 50) for i in range(3)]
    gpd.GeoDataFrame({"Au_ppb": [1.0, 2, 3], "As_ppm": [3.0, 2, 1]}, geometry=cells, crs="EPSG:32650").to_file(path)


def _sites(path):
    pd.DataFrame({"lon": [117.0, 117.1], "lat": [-33.0, -33.1], "comm_main": ["Cu, Zn", "Pb"]}).to_csv(
        path, index=False
    )


CASES = {
    "zip_escaping_member": (
        lambda d: _zip(d / "in.zip", {"g/Au.tif": b"x", "../../evil.tif": b"x"}),
        ["info", "in.zip"],
        "in.zip: member '../../evil.tif' points outside the archive; refused",
    ),
    "zip_absolute_member": (
        lambda d: _zip(d / "in.zip", {"/etc/evil.tif": b"x"}),
        ["info", "in.zip"],
        "points outside the archive",
    ),
    "zip_bomb": (
        lambda d: _zip(d / "in.zip", {"g/Au.tif": b"\0" * (20 * 1024**2)}),
        ["info", "in.zip"],
        "is compressed",
    ),
    "not_a_zip": (lambda d: (d / "in.zip").write_bytes(b"PK\x03\x04 garbage"), ["info", "in.zip"], "not a valid zip"),
    "nan_only_layer": (
        lambda d: _grid(d / "in.nc", np.full((5, 5), np.nan)),
        ["info", "in.nc"],
        "layer Au in in.nc has no valid values",
    ),
    "inf_only_layer": (
        lambda d: _grid(d / "in.nc", np.full((5, 5), np.inf)),
        ["info", "in.nc"],
        "layer Au in in.nc has no valid values",
    ),
    "lonlat_out_of_range": (
        lambda d: _points(d / "in.csv", [117.0, 517.0, 118.0], [-33.0, -33.5, -34.0], columns=("lon", "lat")),
        ["info", "in.csv"],
        "out of range",
    ),
    "all_samples_at_one_point": (
        lambda d: _points(d / "in.csv", [400_000.0] * 12, [7_000_000.0] * 12),
        ["score", "in.csv", "--out", "out.csv", "--crs", "EPSG:32650", "--neighbours", "3", "--epochs", "1"],
        "all 12 samples lie at one point",
    ),
    "duplicate_column_names": (
        lambda d: (d / "in.csv").write_text("X,Y,Au_ppb,Cu_ppm,Cu_ppm\n0,0,1,2,3\n1,1,2,3,4\n"),
        ["info", "in.csv", "--crs", "EPSG:32650"],
        "in.csv: column 'Cu_ppm' appears more than once",
    ),
    "element_column_is_text": (
        lambda d: (d / "in.csv").write_text("X,Y,Au_ppb,Cu_ppm\n0,0,1,high\n1,1,2,low\n"),
        ["info", "in.csv", "--crs", "EPSG:32650"],
        "column Cu_ppm holds text, not numbers",
    ),
    "unknown_unit": (
        lambda d: (d / "in.csv").write_text("X,Y,Au_furlong,Cu_ppm\n0,0,1,2\n1,1,2,3\n"),
        ["info", "in.csv", "--crs", "EPSG:32650"],
        "column Au_furlong: unknown unit 'furlong'",
    ),
    "samples_not_points": (
        lambda d: _polygons(d / "in.geojson"),
        ["info", "in.geojson"],
        "in.geojson: expected point geometries, found Polygon",
    ),
    "parquet_without_coordinates": (
        lambda d: pd.DataFrame({"Au_ppb": [1.0, 2.0], "Cu_ppm": [3.0, 4.0]}).to_parquet(d / "in.parquet"),
        ["info", "in.parquet"],
        "in.parquet: no coordinate columns found",
    ),
    "where_with_a_function_call": (
        lambda d: _points(d / "in.csv", [117.0, 117.1, 117.2], [-33.0, -33.1, -33.2], columns=("lon", "lat")),
        ["info", "in.csv", "--where", "__import__('os').getcwd() == 1"],
        "a function call is not allowed",
    ),
    "no_site_matches_the_commodity": (
        lambda d: _sites(d / "in.csv"),
        ["info", "in.csv", "--sites", "--commodity", "Au"],
        "in.csv: no site matches --commodity Au in comm_main (values there: Cu, Zn, Pb)",
    ),
    "survey_smaller_than_its_scales": (
        lambda d: _points(d / "in.csv", np.arange(6) * 100.0 + 4e5, np.arange(6) * 50.0 + 7e6),
        ["score", "in.csv", "--out", "out.csv", "--crs", "EPSG:32650"],
        "the survey has 6 samples: a scale of 48 nearest samples needs at least 49",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_gets_one_line_and_nothing_written(case, tmp_path, capsys, monkeypatch):
    make, argv, message = CASES[case]
    make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1], err
    assert "Traceback" not in "\n".join(err) and str(tmp_path) not in err[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_duplicate_sample_coordinates_are_scored(tmp_path):
    """Field duplicates (two samples at one site) are legitimate: each keeps its own row and score."""
    x = np.r_[np.arange(20) * 100.0, [0.0, 0.0]] + 4e5
    y = np.r_[np.arange(20) * 70.0, [0.0, 0.0]] + 7e6
    _points(tmp_path / "in.csv", x, y)
    out = tmp_path / "out.csv"
    argv = ["score", str(tmp_path / "in.csv"), "--out", str(out), "--crs", "EPSG:32650", "--neighbours", "3,6"]
    assert main(argv + ["--epochs", "1"]) == 0
    scores = pd.read_csv(out)
    assert len(scores) == 22 and np.isfinite(scores["anomaly_score"]).all()


def test_deposits_in_another_crs_are_reprojected_to_the_grid(tmp_path):
    """Mixed CRSs: deposits in lon/lat on a UTM grid land in the right cells (a documented path)."""
    import geopandas as gpd

    from mstgat_core.data.io import deposit_cells, load_deposits, load_grid

    _grid(tmp_path / "g.nc", np.ones((20, 20)))
    grid = load_grid(tmp_path / "g.nc").rio.write_crs("EPSG:32650")
    cell = gpd.GeoSeries(gpd.points_from_xy([400_500.0], [6_999_500.0]), crs="EPSG:32650").to_crs("EPSG:4326")
    pd.DataFrame({"lon": cell.x, "lat": cell.y}).to_csv(tmp_path / "d.csv", index=False)
    mask = deposit_cells(grid, load_deposits(tmp_path / "d.csv"))
    rows, cols = np.nonzero(mask.values)
    assert (rows.tolist(), cols.tolist()) == ([5], [5])


def _giant_grid(path):
    import netCDF4

    with netCDF4.Dataset(path, "w") as nc:  # declared, never written: a few kB on disk
        nc.createDimension("y", 200_000)
        nc.createDimension("x", 200_000)
        nc.createVariable("Au", "f4", ("y", "x"))


UPLOADS = {
    "zip_escaping_member": ("zip_escaping_member", "points outside the archive"),
    "zip_absolute_member": ("zip_absolute_member", "points outside the archive"),
    "zip_bomb": ("zip_bomb", "is compressed"),
    "not_a_zip": ("not_a_zip", "not a valid zip"),
    "nan_only_layer": ("nan_only_layer", "has no valid values"),
    "lonlat_out_of_range": ("lonlat_out_of_range", "out of range"),
    "giant_declared_grid": (None, "declares 200,000 x 200,000 cells"),
    "duplicate_column_names": ("duplicate_column_names", "column 'Cu_ppm' appears more than once"),
    "element_column_is_text": ("element_column_is_text", "column Cu_ppm holds text"),
    "unknown_unit": ("unknown_unit", "unknown unit 'furlong'"),
    "samples_not_points": ("samples_not_points", "expected point geometries, found Polygon"),
    "parquet_without_coordinates": ("parquet_without_coordinates", "no coordinate columns found"),
}


@pytest.mark.parametrize("case", sorted(UPLOADS))
def test_hostile_uploads_leave_the_dashboard_session_as_it_was(case, tmp_path, small_scenario):
    """The same corpus through the dashboard's upload path: one line without server paths, the session's
    data untouched, and nothing in its folder but the upload itself."""
    from mstgat_core.dashboard.state import Session

    corpus, message = UPLOADS[case]
    if corpus is None:
        _giant_grid(tmp_path / "in.nc")
    else:
        CASES[corpus][0](tmp_path)
    (upload,) = tmp_path.iterdir()
    session = Session()
    session.data.cell_size = 500.0
    try:
        session.set_data(small_scenario.grid, small_scenario.deposits, "small synthetic")
        grid, label = session.data.ds, session.data.label
        with pytest.raises(Exception) as caught:
            session.load_grid_upload({upload.name: upload.read_bytes()})
        shown = session.activity.fail(caught.value)
        assert message in shown and "\n" not in shown, shown
        assert str(session.folder.path) not in shown and "/tmp" not in shown
        assert session.data.ds is grid and session.data.label == label
        assert [p.name for p in session.folder.path.rglob("*")] == [upload.name]
    finally:
        session.cleanup()
    assert not session.folder.path.exists()
