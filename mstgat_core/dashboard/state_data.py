"""The data part of a dashboard session: the grid, the deposits, the point samples a grid was made from
and a synthetic scenario's planted truth (Panel-free; see :mod:`.state`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import param
import xarray as xr

from ..data import io as mio
from ..data import points as mpoints
from ..data import tables as mtables
from ..data.preprocess import TRANSFORMS
from ..data.sites import place_report, site_report
from ..data.support import apply_support, describe, support_mask, support_summary
from ..errors import DataError, one_line
from .activity import Activity

SOURCES = ["South China demo", "Synthetic scenario", "Uploaded files"]
DEMO_ELEMENT = "Li"
DEMO_LABEL = "South China demo (Li, 39 elements)"


class DataState(param.Parameterized):
    """The survey one user works on: where it comes from, its grid of element layers, the deposits and
    their cells, the point samples it was gridded from (and each cell's distance to them), and a
    synthetic scenario's planted truth. New data are installed by :meth:`.state.Session.set_data`."""

    # ---- where the data come from
    source = param.Selector(default=SOURCES[0], objects=SOURCES, doc="Where the data come from")
    synth_rows = param.Integer(default=64, bounds=(32, 512), label="Synthetic rows")
    synth_cols = param.Integer(default=64, bounds=(32, 512), label="Synthetic columns")
    synth_seed = param.Integer(default=0, bounds=(0, None), label="Synthetic seed")
    cell_size = param.Number(default=1000.0, bounds=(0, None), label="Cell size for point data (CRS units)")
    support_choice = param.Selector(
        default="auto",
        objects=["auto", "estimate", "none"],
        label="Sample support of an uploaded grid (auto: its own layer; estimate: from its texture)",
    )
    transform = param.Selector(default="clr", objects=list(TRANSFORMS), label="Transform")
    site_commodity = param.String(
        default="", label="Sites: commodity to keep (Au, Gold, Cu, REE; several: Au,Cu; empty: every site)"
    )
    site_type = param.String(default="", label="Sites: site types to keep (e.g. Mine,Prospect; empty: all)")
    site_status = param.String(default="", label="Sites: statuses to keep (e.g. Active; empty: all)")
    elements = param.ListSelector(default=[], objects=[], label="Elements used by the model")

    # ---- the data
    ds = param.Parameter(default=None, precedence=-1)
    deposits = param.Parameter(default=None, precedence=-1)  # GeoDataFrame
    deposit_mask = param.Parameter(default=None, precedence=-1)  # DataArray bool (y, x)
    support = param.Parameter(default=None, precedence=-1)  # distance to the nearest sample, for gridded points
    truth = param.Parameter(default=None, precedence=-1)  # a synthetic scenario's planted anomalies
    samples = param.Parameter(default=None, precedence=-1)  # PointSamples of an uploaded point survey
    import_report = param.Parameter(default=None, precedence=-1)  # the uploaded samples' report, plain data
    site_report = param.Parameter(default=None, precedence=-1)  # the uploaded sites' report, plain data
    label = param.String(default="", precedence=-1)

    def reports_markdown(self) -> str:
        """The last imports' reports (samples, then sites) as preformatted lines, or "" when there are none."""
        from ..data.tables import ImportReport

        blocks = ["\n".join(ImportReport(**r).lines()) for r in (self.import_report, self.site_report) if r]
        return "".join(f"```\n{block}\n```\n" for block in blocks)

    def __init__(self, activity: Activity, **params):
        super().__init__(**params)
        self.activity = activity

    @property
    def grid_elements(self) -> list[str]:
        """The grid's element layers (none without data)."""
        return list(self.ds.data_vars) if self.ds is not None else []

    def install(self, ds: xr.Dataset, deposits, label: str, samples=None) -> None:
        """Make ``ds`` the data, with the deposits on its cells (dropped, saying why, when they do not fall
        on it) and the ``samples`` it was gridded from; every element is selected, no truth is kept."""
        deposit_mask = None
        if deposits is not None and len(deposits):
            try:
                deposit_mask = mio.deposit_cells(ds, deposits)
            except DataError as exc:
                self.activity.error = one_line(exc)
                deposits = None
        self.ds = ds
        self.deposits = deposits
        self.deposit_mask = deposit_mask
        self.site_report = site_report(deposits) if deposits is not None else None
        self.param.elements.objects = list(ds.data_vars)
        self.elements = list(ds.data_vars)
        self.label = label
        self.samples = samples
        self.import_report = samples.report.as_dict() if getattr(samples, "report", None) is not None else None
        self.support = mpoints.sample_support(ds, samples) if samples is not None else None
        self.truth = None

    def sample_names(self) -> pd.DataFrame | None:
        """The point samples' x, y (the grid's CRS), name (their ID column, else their row in the file) and lon,
        lat in degrees; None without samples. Made once per survey."""
        samples = self.samples
        if samples is None:
            return None
        cached = getattr(self, "_sample_names", None)
        if cached is not None and cached[0] is samples:
            return cached[1]
        _, names = mpoints.sample_ids(samples)
        lonlat = mpoints.sample_lonlat(samples)
        geometry = samples.table.geometry
        table = pd.DataFrame(
            {
                "x": geometry.x.to_numpy(),
                "y": geometry.y.to_numpy(),
                "sample": names,
                "lon": lonlat[:, 0],
                "lat": lonlat[:, 1],
            }
        )
        self._sample_names = (samples, table)
        return table

    def read_grid(self, path: Path):
        """An uploaded file as a grid (blocking): point files (CSV, GeoPackage, GeoJSON) gridded at
        ``cell_size``, grids given the chosen sample support. Returns ``(grid, samples or None)``."""
        suffix = path.suffix.lower()
        if suffix in mtables.POINT_TABLE_SUFFIXES and suffix != ".shp":
            samples = mio.load_points(path)
            if not self.cell_size or self.cell_size <= 0:
                raise DataError("give a positive cell size to grid point data")
            return mio.points_to_grid(samples, self.cell_size), samples
        return apply_support(mio.load_grid(path), self.support_choice), None

    def deposits_on(self, ds: xr.Dataset):
        """The current deposits if they fall on the cells of ``ds``, else None."""
        if self.deposits is None:
            return None
        try:
            mio.deposit_cells(ds, self.deposits)
        except DataError:
            return None
        return self.deposits

    def upload_status(self, name: str) -> str:
        """The status line after an upload named ``name``: its size, elements and support, and for points
        how they were gridded."""
        ds, samples = self.ds, self.samples
        status = f"loaded {name}: {ds.sizes['y']}x{ds.sizes['x']} cells, {len(ds.data_vars)} elements; " + describe(
            support_summary(ds)
        )
        if samples is not None:
            status += (
                f" (gridded from {len(samples.table)} samples by IDW; 'Score the samples' scores the samples "
                "themselves)" + (f"; {samples.note}" if samples.note else "")
            )
        return status

    def load_deposits(self, path: Path) -> str:
        """Read the sites of ``path`` onto the grid's cells (blocking): their coordinates and CRS found as for
        samples (lon/lat included, reprojected to the grid's CRS; the grid's CRS only where the file gives none),
        chosen by ``site_commodity``, ``site_type`` and ``site_status``. Keeps their import report as plain
        data (:attr:`site_report`) and returns its one-line summary."""
        gdf = mio.load_deposits(path, default_crs=self.ds.rio.crs, **self.site_options())
        mask = mio.deposit_cells(self.ds, gdf)
        report = place_report(gdf, mask)
        self.deposits = gdf
        self.deposit_mask = mask
        self.site_report = report.as_dict() if report is not None else None
        summary = mask.attrs.get("summary", "")
        if report is not None and report.selection:
            chosen = "; ".join(
                f"{s['kept']} of {s['kept'] + s['dropped']} kept by {s['filter']}" for s in report.selection
            )
            summary = f"{chosen}; {summary}"
        return summary

    def site_options(self) -> dict:
        """The site filters chosen in the page, as keywords of :func:`~mstgat_core.data.io.load_deposits`."""
        return {
            "commodity": self.site_commodity.strip() or None,
            "site_type": self.site_type.strip() or None,
            "status": self.site_status.strip() or None,
        }

    def synthetic(self):
        """The synthetic scenario of the chosen size and seed (see :func:`synthetic_scenario`)."""
        return synthetic_scenario(self.synth_rows, self.synth_cols, self.synth_seed)

    def truth_table(self) -> pd.DataFrame | None:
        """The planted anomalies as rows (x, y, radius in map units, kind, elements), or None."""
        if self.truth is None or self.ds is None:
            return None
        xs, ys = self.ds["x"].values, self.ds["y"].values
        cell = abs(float(xs[1] - xs[0])) if len(xs) > 1 else 1.0
        rows = []
        for anomaly in self.truth["anomalies"]:
            kind = "ore (hosts deposits)" if anomaly["hosts_deposits"] else "decoy (no deposits)"
            for r, c in anomaly["centres"]:
                rows.append(
                    dict(
                        x=float(xs[c]),
                        y=float(ys[r]),
                        radius=anomaly["scale"] * cell,
                        kind=kind,
                        elements="-".join(anomaly["elements"]),
                    )
                )
        return pd.DataFrame(rows)

    def valid_cells(self) -> np.ndarray:
        """Cells with a value in any element (y, x)."""
        valid = np.zeros((self.ds.sizes["y"], self.ds.sizes["x"]), dtype=bool)
        for name in self.ds.data_vars:
            valid |= np.isfinite(self.ds[name].values)
        return valid

    def cell_composition(self, row: int, col: int, elements: list[str]) -> pd.DataFrame:
        """The cell's measured values (as loaded, with units) and their percentile among the grid's valid
        cells, per element: the geochemistry to read beside the attention and attribution."""
        rows = []
        for element in elements:
            layer = self.ds[element]
            values = np.asarray(layer.values, dtype=float)
            value = float(values[row, col])
            valid = values[np.isfinite(values)]
            percentile = 100.0 * float((valid < value).mean() + 0.5 * (valid == value).mean())
            rows.append((element, value, layer.attrs.get("units", ""), percentile))
        return pd.DataFrame(rows, columns=["element", "value", "units", "percentile"])

    def support_readout(self) -> str:
        """A sentence on the grey cells when the grid has a sample support, else ""."""
        if self.ds is None or support_mask(self.ds) is None:
            return ""
        summary = support_summary(self.ds)
        return (
            f" Grey: {summary['cells_with_data'] - summary['supported_cells']:,} cells interpolated far from any "
            f"sample ({1 - summary['supported_share']:.0%}), not scored."
        )


def synthetic_scenario(rows: int, cols: int, seed: int = 0):
    """``make_scenario`` sized for the grid: fewer anomalies on small grids.

    The library's default (6 ore + 4 decoy anomalies) needs about a 64 x 64 grid; smaller
    grids get proportionally fewer anomalies (at least one of each), and if the random
    survey outline still leaves no room the counts are reduced until they fit.
    """
    from ..data.synthetic import default_anomalies, element_names, make_scenario

    base = default_anomalies(element_names(10))
    frac = min(1.0, rows * cols / 64**2)
    counts = [max(1, int(round(a["n"] * frac))) for a in base]
    while True:
        anomalies = [dict(a, n=n) for a, n in zip(base, counts)]
        try:
            return make_scenario(shape=(rows, cols), anomalies=anomalies, seed=seed)
        except DataError as exc:
            if "no room" not in str(exc) or counts == [1, 1]:
                raise DataError(
                    f"a {rows} x {cols} grid is too small for a synthetic scenario "
                    f"({one_line(exc)}); use at least 32 x 32"
                ) from None
            counts = [max(1, n - 1) for n in counts]
