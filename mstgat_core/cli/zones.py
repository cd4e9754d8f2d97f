"""``mstgat zones``: a layer's thresholds (C-A, cumulative frequency, population break) and its top share as target
zones in a GeoPackage; with deposits, the P-A crossing and the success-rate AUC."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import DataError
from .common import add_site_args, add_support_arg, check_output_folder, load_site_file, load_survey_grid


def add_zones_args(p):
    """Arguments of ``mstgat zones``."""
    p.add_argument("data", help="grid (.nc, .zarr, .tif, folder, .zip): the survey, for the leading elements")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="predict the score map with this model (.safetensors)")
    source.add_argument(
        "--scores", help="read the layer from this grid instead (e.g. what mstgat predict wrote, same cells)"
    )
    p.add_argument(
        "--layer",
        help="the layer to threshold: a predicted layer (default probability) with --checkpoint or --scores, "
        "else a layer of the grid (required then, e.g. an element)",
    )
    p.add_argument("--out", required=True, help="target zones to write (.gpkg)")
    p.add_argument("--top", type=float, default=5.0, help="percent of the measured ground outlined as target zones")
    p.add_argument("--segments", choices=("auto", "2", "3"), default="auto", help="C-A segments (auto: by BIC)")
    p.add_argument("--leading", type=int, default=3, help="leading elements listed per zone")
    p.add_argument(
        "--elements",
        nargs="+",
        help="elements for the leading elements (default: the model's, else every other layer of the grid)",
    )
    p.add_argument("--deposits", help="known deposits, counted per zone (.csv, .parquet, .gpkg, .geojson, .shp)")
    add_site_args(p)
    p.add_argument(
        "--crs",
        help="CRS of the deposits' coordinates when the file and its column names give none (default: the grid's)",
    )
    add_support_arg(p)


def _score_layer(args, grid):
    """The layer to threshold and the elements that describe the zones."""
    from ..data import io

    elements = args.elements
    if args.checkpoint:
        from ..training.checkpoint import load_checkpoint

        fitted = load_checkpoint(args.checkpoint)
        layers = fitted.predict_layers(grid)
        elements = elements or fitted.elements
    elif args.scores:
        layers = io.load_grid(args.scores)
    else:
        if not args.layer:
            raise DataError("name the layer to threshold, or give a checkpoint or a scores grid", setting="layer")
        layers = grid
    name = args.layer or "probability"
    if name not in layers:
        raise DataError(f"no layer {name!r}; the layers are {', '.join(map(str, layers.data_vars))}", setting="layer")
    scores = layers[name]
    if scores.shape != (grid.sizes["y"], grid.sizes["x"]):
        raise DataError(
            f"the layer {name!r} {scores.shape} is not on the grid's cells {grid.sizes['y'], grid.sizes['x']}"
        )
    if elements is None:
        elements = [e for e in grid.data_vars if e != name]
    return name, scores, list(elements)


def cmd_zones(args) -> int:
    """``mstgat zones``: print a layer's thresholds and write its top share as target zones (.gpkg)."""
    import numpy as np

    from ..data import io
    from ..data.preprocess import valid_mask
    from ..evaluation.prediction_area import prediction_area, success_rate
    from ..evaluation.thresholds import threshold_lines
    from ..evaluation.zones import target_zones, write_zones

    out = Path(args.out)
    if out.suffix.lower() != ".gpkg":
        raise DataError(f"--out must end in .gpkg, got {out.name}")
    check_output_folder(out)
    if not 0 < args.top <= 100:
        raise DataError(f"--top must be a percent in (0, 100], got {args.top:g}")
    grid = load_survey_grid(args, elements=None)
    name, scores, elements = _score_layer(args, grid)
    ground = valid_mask(grid, elements) & np.isfinite(scores.values)
    if not ground.any():
        raise DataError(f"the layer {name!r} has no finite value on measured ground")
    print(f"thresholds of {name} ({int(ground.sum()):,} cells on measured ground):")
    segments = args.segments if args.segments == "auto" else int(args.segments)
    for line in threshold_lines(scores.values[ground], segments):
        print(f"  {line}")
    sites = None
    if args.deposits:
        sites = load_site_file(args, default_crs=grid.rio.crs)
        cells = io.deposit_cells(grid, sites)
        pa = prediction_area(scores, cells, ground)
        _, _, auc = success_rate(scores, cells, ground)
        print(
            f"against {pa.n_deposit_cells} deposit cells: P-A crossing at {pa.crossing:.4g}, "
            f"{100 * pa.prediction_rate:.0f} % of them in {100 * (1 - pa.prediction_rate):.0f} % of the area "
            f"(normalised density {pa.normalised_density:.2f}); success-rate AUC {auc:.3f}"
        )
        print(
            "  these are in-sample if the layer's model was fitted on these deposits (as `mstgat fit` and the "
            "bundled checkpoint were): optimistic; `mstgat evaluate` gives held-out figures"
        )
    zones = target_zones(
        scores,
        args.top / 100,
        ground=ground,
        grid=grid if elements else None,
        elements=elements,
        deposits=sites,
        n_leading=args.leading,
    )
    write_zones(zones, out)
    held = f", holding {int(zones['n_deposits'].sum())} of {len(sites)} deposits" if sites is not None else ""
    area, cut = zones["area_km2"].sum(), zones["score_cut"].iloc[0]
    print(
        f"wrote {out}: {len(zones)} target zones, the top {args.top:g} % of {name} (>= {cut:.4g}), "
        f"{int(zones['n_cells'].sum())} cells" + (f", {area:.1f} km²" if np.isfinite(area) else "") + held
    )
    if zones.crs is None:
        print("note: the grid has no CRS: the zones have none and no area in km²", file=sys.stderr)
    return 0
