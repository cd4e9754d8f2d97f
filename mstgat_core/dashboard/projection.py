"""The cartopy projection a grid is drawn from on the basemap, its domain covering the whole grid.

Cartopy limits an EPSG projection to the code's area of use, and GeoViews cuts what it projects to that
domain: the South China grid, in UTM zone 50N (area of use 114-120 degrees E) but reaching 111 degrees E, was
cut at about 113.6 degrees E while its deposits, drawn as points, were not. Imported only with a basemap
(cartopy is slow to import).
"""

from __future__ import annotations

from cartopy import crs as ccrs
from pyproj import CRS


class GridProjection(ccrs.Projection):
    """A projected CRS whose domain is its area of use (if any) widened to ``bounds`` (x0, x1, y0, y1) and a
    5 % margin."""

    def __init__(self, wkt: str, bounds=None):
        super().__init__(wkt)
        self.grid_bounds = tuple(float(b) for b in bounds) if bounds is not None else None
        if self.grid_bounds is not None:
            x0, x1, y0, y1 = self.grid_bounds
            margin = 0.05 * max(x1 - x0, y1 - y0)
            box = (x0 - margin, x1 + margin, y0 - margin, y1 + margin)
            old = self.bounds or box
            self.bounds = (min(old[0], box[0]), max(old[1], box[1]), min(old[2], box[2]), max(old[3], box[3]))
        if self.bounds is None:
            raise ValueError("a projection without an area of use needs the grid's bounds")
        x0, x1, y0, y1 = self.bounds
        self.threshold = min(x1 - x0, y1 - y0) / 100.0

    def __reduce__(self):
        return self.__class__, (self.to_wkt(), self.grid_bounds)


def grid_projection(crs, bounds=None) -> ccrs.Projection:
    """The cartopy projection of a grid's ``crs``: plate carrée for a geographic CRS, else a
    :class:`GridProjection` covering ``bounds`` (the grid's extent in ``crs``, x0, x1, y0, y1)."""
    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        return ccrs.PlateCarree()
    return GridProjection(crs.to_wkt(), bounds)
