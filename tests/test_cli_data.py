import json
import subprocess
import sys

import numpy as np
import pytest

from mstgat_core.cli import main
from mstgat_core.data import io


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


# --------------------------------------------------------------------- info


def test_info_grid_json(capsys, shared_data):
    code, out, _ = run(capsys, "info", shared_data / "south-china-li", "--json")
    info = json.loads(out)
    assert code == 0
    assert len(info["elements"]) == 39 and info["shape"] == [163, 141]
    assert info["crs"] == "EPSG:32650" and info["valid_cells"] == 20460 and len(info["cell_size"]) == 2
    # the source files carry no support; info says how much of the grid looks like interpolation ramps
    assert info["support"]["method"] is None and info["support_estimate"]["ramps_found"]
    assert 7000 < info["support_estimate"]["supported_cells"] < 8000


def test_info_grid_text(capsys, small_scenario, tmp_path):
    io.save_grid(small_scenario.grid, tmp_path / "g.nc")
    code, out, _ = run(capsys, "info", tmp_path / "g.nc")
    assert code == 0 and "valid cells:" in out and "EPSG:32650" in out


def test_info_points_json(capsys, shared_data):
    code, out, _ = run(capsys, "info", shared_data / "lapland-till" / "till_geochem_511p.csv", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["n_samples"] == 1112 and info["crs"] == "EPSG:3067"
    assert len(info["elements"]) == 22 and info["censored"]["Zr"] == 166


def test_grid_command(capsys, shared_data, tmp_path):
    out_path = tmp_path / "till.nc"
    code, out, _ = run(
        capsys,
        "grid",
        shared_data / "lapland-till" / "till_geochem_511p.csv",
        "--cell-size",
        2000,
        "--out",
        out_path,
        "--elements",
        "Cu",
        "Zr",
    )
    assert code == 0 and out_path.exists()
    grid = io.load_grid(out_path)
    assert list(grid.data_vars) == ["Cu", "Zr"] and io.grid_info(grid)["crs"] == "EPSG:3067"


def test_synth_command_outputs_load_back(capsys, tmp_path):
    code, _, _ = run(
        capsys,
        "synth",
        tmp_path / "s.nc",
        "--shape",
        64,
        64,
        "--seed",
        5,
        "--n-elements",
        8,
        "--deposits-out",
        tmp_path / "d.csv",
        "--truth-out",
        tmp_path / "t.json",
    )
    assert code == 0
    grid = io.load_grid(tmp_path / "s.nc")
    assert len(grid.data_vars) == 8
    deposits = io.load_deposits(tmp_path / "d.csv")  # CRS from the crs column
    cells = io.deposit_cells(grid, deposits)
    assert cells.attrs["n_inside"] == len(deposits) > 0
    assert json.loads((tmp_path / "t.json").read_text())["seed"] == 5


def test_module_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mstgat_core", "info", tmp_path / "missing.nc"], capture_output=True, text=True
    )
    assert_one_line_error(result.returncode, result.stderr)


# ------------------------------------------------------------------ bad input


def test_missing_file(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "info", tmp_path / "nope.nc")[::2])


def test_unknown_format(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    assert_one_line_error(*run(capsys, "info", tmp_path / "notes.txt")[::2])


def test_bad_arguments(capsys):
    assert_one_line_error(*run(capsys, "grid", "x.csv")[::2])
    assert_one_line_error(*run(capsys)[::2])


def test_csv_without_coordinates_writes_nothing(capsys, tmp_path):
    (tmp_path / "s.csv").write_text("Cu_ppm,Zn_ppm\n1,2\n")
    out_path = tmp_path / "g.nc"
    code, _, err = run(capsys, "grid", tmp_path / "s.csv", "--cell-size", 100, "--out", out_path)
    assert_one_line_error(code, err)
    assert "coordinate" in err and not out_path.exists()


def test_unparseable_values_write_nothing(capsys, tmp_path):
    (tmp_path / "s.csv").write_text("x,y,Cu_ppm\n0,0,1\n10,10,n/d?\n")
    out_path = tmp_path / "g.nc"
    code, _, err = run(capsys, "grid", tmp_path / "s.csv", "--cell-size", 5, "--crs", "EPSG:32650", "--out", out_path)
    assert_one_line_error(code, err)
    assert "Cu_ppm" in err and not out_path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]


def test_mismatched_layers(capsys, small_scenario, tmp_path):
    folder = tmp_path / "layers"
    folder.mkdir()
    io.save_grid(small_scenario.grid[["Li"]], folder / "Li.tif")
    io.save_grid(small_scenario.grid[["Be"]].isel(y=slice(0, 20)), folder / "Be.tif")
    code, _, err = run(capsys, "info", folder)
    assert_one_line_error(code, err)
    assert "Li.tif" in err or "Be.tif" in err


def test_all_nan_layer(capsys, small_scenario, tmp_path):
    ds = small_scenario.grid[["Li", "Be"]].copy()
    ds["Be"] = ds["Be"] * np.nan
    io.save_grid(ds, tmp_path / "g.tif")
    code, _, err = run(capsys, "info", tmp_path / "g.tif")
    assert_one_line_error(code, err)
    assert "Be" in err


@pytest.mark.parametrize("target", ["missing-folder/out.nc"])
def test_unwritable_output(capsys, small_scenario, tmp_path, target):
    code, _, err = run(
        capsys, "synth", tmp_path / target, "--deposits-out", tmp_path / "d.csv", "--truth-out", tmp_path / "t.json"
    )
    assert_one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []
