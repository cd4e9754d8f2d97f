"""Untrusted zips: bombs, escaping names, symlinks and too many members are refused before any write."""

import stat
import zipfile

import numpy as np
import pytest

from mstgat_core.cli import main
from mstgat_core.data.archives import ArchiveLimits, extract_members
from mstgat_core.errors import DataError


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_zip_bomb_is_refused_by_its_declared_ratio_before_anything_is_written(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("layers/Au.tif", b"\0" * (20 * 1024**2))  # 20 MiB of zeros: about 1000 to 1
    assert bomb.stat().st_size < 100_000
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match=r"bomb.zip: member 'Au.tif' is compressed [\d,]+ to 1; the limit is 200"):
        extract_members(bomb, out, [".tif"])
    assert _listing(out) == []


def test_total_size_and_member_count_limits(tmp_path):
    archive = tmp_path / "many.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(5):
            zf.writestr(f"g/E{i}.tif", rng.bytes(300_000))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match=r"many.zip would unpack to 1 MiB; the limit is 1,000,000 bytes"):
        extract_members(archive, out, [".tif"], ArchiveLimits(max_bytes=1_000_000))
    with pytest.raises(DataError, match="many.zip has 5 entries; the limit is 4"):
        extract_members(archive, out, [".tif"], ArchiveLimits(max_members=4))
    assert _listing(out) == []
    assert len(extract_members(archive, out, [".tif"])) == 5


@pytest.mark.parametrize("name", ["../evil.tif", "a/../../evil.tif", "/tmp/evil.tif", "C:/evil.tif", "C:\\evil.tif"])
def test_members_that_escape_the_folder_are_refused(tmp_path, name):
    archive = tmp_path / "escape.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/A.tif", b"x")
        zf.writestr(name, b"x")
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    with pytest.raises(DataError, match="points outside the archive; refused"):
        extract_members(archive, out, [".tif"])
    assert _listing(tmp_path) == ["deep", "deep/out", "escape.zip"]


def test_symbolic_links_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("g/A.tif")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="points outside the archive"):
        extract_members(archive, tmp_path, [".tif"])


def test_a_member_larger_than_it_declares_is_stopped(tmp_path):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("g/A.tif", b"y" * 3 * 1024**2)
    data = bytearray(archive.read_bytes())
    # forge the declared size in the central directory (offset 24 of the entry) to 1 MiB
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1024**2).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError):
        extract_members(archive, out, [".tif"])
    assert _listing(out) in ([], ["g"])


def test_cli_names_the_limit_in_one_line_without_server_paths(tmp_path, capsys):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("layers/Au.tif", b"\0" * (20 * 1024**2))
    assert main(["info", str(bomb)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bomb.zip: member 'Au.tif' is compressed") and "\n" not in err
    assert "/tmp" not in err and str(tmp_path) not in err


def test_a_giant_declared_grid_is_refused_before_it_is_read(tmp_path, capsys):
    """3 MB on disk, 149 GiB declared: one line, exit 2, no allocation."""
    import netCDF4

    path = tmp_path / "huge.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("y", 200_000)
        nc.createDimension("x", 200_000)
        nc.createVariable("Au", "f4", ("y", "x"), zlib=True, fill_value=np.float32(np.nan))
    assert path.stat().st_size < 5_000_000
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: huge.nc declares 200,000 x 200,000 cells x 1 layer(s) = 149.0 GiB") and "\n" not in err
    )


def test_the_memory_budget_can_be_set(tmp_path, monkeypatch, small_scenario):
    from mstgat_core.data.io import load_grid

    path = tmp_path / "grid.nc"
    small_scenario.grid.to_netcdf(path)
    monkeypatch.setenv("MSTGAT_MEMORY_BUDGET", "10000")
    with pytest.raises(DataError, match=r"the memory budget is 0.0 GiB \(MSTGAT_MEMORY_BUDGET\)"):
        load_grid(path)
    monkeypatch.delenv("MSTGAT_MEMORY_BUDGET")
    assert load_grid(path).sizes["y"] == 64


def test_a_deposits_file_with_a_million_rows_is_refused_quickly(tmp_path, capsys):
    import time

    import pandas as pd

    path = tmp_path / "deposits.csv"
    n = 1_000_000
    pd.DataFrame({"x": np.arange(n) % 1000 * 10.0, "y": np.arange(n) // 1000 * 10.0}).to_csv(path, index=False)
    grid = tmp_path / "grid.nc"
    import xarray as xr

    xr.Dataset(
        {"Au": (("y", "x"), np.ones((4, 4), dtype="float32"))}, coords={"y": np.arange(4.0), "x": np.arange(4.0)}
    ).to_netcdf(grid)
    t0 = time.perf_counter()
    argv = [
        "train",
        str(grid),
        "--deposits",
        str(path),
        "--crs",
        "EPSG:32650",
        "--out",
        str(tmp_path / "m.safetensors"),
    ]
    assert main(argv) == 2
    assert time.perf_counter() - t0 < 60  # generous; it takes about a second
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "error: deposits.csv has more than 100,000 rows; the limit for deposits is 100,000 (MSTGAT_MAX_DEPOSITS)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deposits.csv", "grid.nc"]


def test_point_row_limit_can_be_set(tmp_path, monkeypatch):
    import pandas as pd

    from mstgat_core.data.points import load_points

    path = tmp_path / "points.csv"
    pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0), "Au_ppb": 1.0}).to_csv(path, index=False)
    monkeypatch.setenv("MSTGAT_MAX_ROWS", "40")
    with pytest.raises(DataError, match=r"more than 40 rows; the limit for points is 40 \(MSTGAT_MAX_ROWS\)"):
        load_points(path, crs="EPSG:32650")
    monkeypatch.setenv("MSTGAT_MAX_ROWS", "50")
    assert len(load_points(path, crs="EPSG:32650").table) == 50
