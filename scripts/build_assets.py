"""Build the bundled South China demo data in assets/.

    python scripts/build_assets.py [SOURCE_FOLDER]

SOURCE_FOLDER defaults to ../shared/data/south-china-li next to the project.
Writes assets/south_china_li.nc (39 elements, float32, zlib, with the sample support estimated from the
texture of the IDW surfaces as its `support` coordinate: about 37 % of the cells are measured ground),
assets/south_china_li_deposits.csv (deposit cell centres of Li_deposits0.tif)
and assets/LICENSE-south-china-li.txt (the source's MIT licence).
"""

import shutil
import sys
from pathlib import Path

import geopandas as gpd

from mstgat_core.data import io
from mstgat_core.data.support import describe, estimate_support, support_summary, with_support

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "south-china-li"
ASSETS = ROOT / "assets"


def deposits_table(deposits: gpd.GeoDataFrame):
    """x, y in the grid CRS, lon, lat in WGS 84 and a crs column."""
    lonlat = deposits.to_crs("EPSG:4326").geometry
    table = deposits.drop(columns="geometry").copy()
    table["x"] = deposits.geometry.x.values
    table["y"] = deposits.geometry.y.values
    table["lon"] = lonlat.x.values.round(6)
    table["lat"] = lonlat.y.values.round(6)
    table["crs"] = deposits.crs.to_string()
    return table[["x", "y", "lon", "lat", "crs"]]


def main(source=DEFAULT_SOURCE) -> None:
    source = Path(source)
    grid = io.load_grid(source)
    grid = with_support(grid, estimate_support(grid))
    deposits = io.load_deposits(source / "Li_deposits0.tif")
    cells = io.deposit_cells(grid, deposits)
    io.save_grid(grid, ASSETS / "south_china_li.nc")
    deposits_table(deposits).to_csv(ASSETS / "south_china_li_deposits.csv", index=False)
    shutil.copyfile(source / "LICENSE", ASSETS / "LICENSE-south-china-li.txt")
    info = io.grid_info(grid)
    print(
        f"{len(info['elements'])} elements, {info['shape']}, {info['valid_cells']} valid cells; "
        f"{cells.attrs['summary']}\n{describe(support_summary(grid))}"
    )


if __name__ == "__main__":
    main(*sys.argv[1:2])
