"""The dashboard's map and what is linked to it: the layer image, outlines, deposits, samples, folds,
the clicked cell's neighbours, box and lasso selection, linked brushing, kept selections and the region summary."""

from __future__ import annotations

import contextlib
import time

import holoviews as hv
import numpy as np
import panel as pn
from holoviews.operation.datashader import rasterize

from ..errors import DataError
from . import plots_charts, plots_explain, plots_map
from .jobs import Jobs
from .panes import after_page_drawn, pane, updating_together
from .selections_view import kept_selections_panel
from .server import tile_url
from .state import Session

MAP_PIXELS = 600  # resolution the map's image is resampled to (about the plot's size in pixels)


def map_panel(session: Session, jobs: Jobs):
    """The linked map, drawn again when the basemap is switched on or off (a map projected onto web tiles
    is another kind of plot); see :func:`map_view`."""
    return pn.panel(pn.bind(lambda basemap: map_view(session, jobs, basemap), session.selection.param.basemap))


def map_view(session: Session, jobs: Jobs, basemap: bool = False):
    """The linked map: chosen layer, anomaly outline, deposits, kept selections, tap, box- and lasso-select
    streams.

    The ``Tap``/``BoundsXY``/``Lasso`` streams are attached to the DynamicMap of the *image alone*
    (the element Bokeh actually renders and that owns the tap/box-select tools); zones,
    deposits and the selected-cell marker are separate DynamicMaps overlaid on it. A stream
    whose source is a DynamicMap returning a whole overlay never receives the click.

    Without a basemap every layer is drawn in the grid's own CRS (axes in km naming it). With one,
    GeoViews projects every layer onto web-Mercator tiles from :func:`~.server.tile_url`, and gives
    the clicks and boxes back in the grid's CRS.
    """

    def crs():
        return session.data.ds.rio.crs if session.data.ds is not None else None

    def place(element):
        """The element as it is drawn: unchanged, or as a GeoViews element in the grid's CRS (projected
        over the grid's whole extent)."""
        if not basemap or crs() is None:
            return element
        limits = plots_map.extent(session.data.ds[next(iter(session.data.ds.data_vars))])
        bounds = (*limits["xlim"], *limits["ylim"]) if limits else None
        return plots_map.on_basemap(element, crs(), bounds)

    def render_image(layer, log_elements, version):
        da = session.selection.layer_data(layer)
        key = session.selection.layer_key(layer)
        log = log_elements and key is not None and key.kind == "element"
        colours = key.colours if key is not None else "value"
        image = plots_map.image(da, title=layer or "no data", kind=colours, log=log)
        # explicit limits: new data (demo -> synthetic -> upload, another CRS) must not keep the old extent
        image = image.opts(
            data_aspect=1, frame_width=420, tools=["hover", "tap", "box_select", "lasso_select"], framewise=True
        )
        if basemap and crs() is not None:
            return place(image).opts(**plots_map.extent(da, to_web_mercator=crs()))
        return image.opts(**plots_map.extent(da), **plots_map.crs_axes(crs()))

    def render_unsupported(version):
        return place(plots_map.unsupported_ground(session.data.ds))

    def render_zones(top_share, show_zones, version):
        cut = session.selection.zone_cut()
        if show_zones and cut is not None:
            return place(plots_map.zones(session.model.probability, cut))
        return place(plots_map.zones(None, 0.0))

    def render_deposits(show_deposits, version):
        return place(plots_map.deposit_points(session.data.deposits if show_deposits else None, crs()))

    def sample_tables(show_samples):
        """(locations, scores) of the samples to draw: (None, None) when hidden or absent."""
        if not show_samples or session.data.samples is None:
            return None, None
        if session.model.point_scores is not None:
            return None, session.model.point_scores
        return session.data.sample_names(), None

    def render_samples(show_samples, version, x_range=None, y_range=None):
        # few samples in view: dots with hover; many: none here, the raster below draws them
        limit = None if basemap else plots_map.SAMPLE_GLYPHS
        return place(plots_map.sample_points(*sample_tables(show_samples), x_range, y_range, max_glyphs=limit))

    def render_sample_raster(show_samples, version, x_range=None, y_range=None):
        if basemap:  # no datashader on projected tiles: the dots layer draws every sample (no hover when many)
            return place(plots_map.sample_raster(None, None))
        return plots_map.sample_raster(*sample_tables(show_samples), x_range, y_range, MAP_PIXELS, MAP_PIXELS)

    def render_fold(fold, version):
        if session.data.ds is None:
            return place(plots_map.fold_overlay(None, np.zeros(1), np.zeros(1), None))
        deposits = (
            np.asarray(session.data.deposit_mask.values, dtype=bool) if session.data.deposit_mask is not None else None
        )
        x, y = session.data.ds["x"].values, session.data.ds["y"].values
        return place(plots_map.fold_overlay(session.evaluation.fold_shown(), x, y, deposits))

    def render_truth(show_truth, version):
        return place(plots_map.truth_overlay(session.data.truth_table() if show_truth else None))

    def marker(explanation):
        return place(plots_map.cell_marker(explanation))

    def sample_marker(sample, show_samples):
        return place(plots_map.sample_marker(sample if show_samples else None))

    img = hv.DynamicMap(
        pn.bind(
            render_image,
            layer=session.selection.param.layer,
            log_elements=session.selection.param.log_elements,
            version=session.selection.param.version,
        )
    )
    if not basemap:
        # the browser gets the grid resampled to the screen's pixels for each view (datashader), never
        # the whole grid: a 4-million-cell grid pans and zooms like the 20,000-cell demo
        img = rasterize(img, width=MAP_PIXELS, height=MAP_PIXELS)
        view = next(stream for stream in img.streams if isinstance(stream, hv.streams.RangeXY))

        def forget_the_view(*events):  # new data are resampled whole, not over the old data's view
            view.reset()

        session.data.param.watch(forget_the_view, ["ds"])  # a new grid is set before its layers are chosen
    unsupported = hv.DynamicMap(pn.bind(render_unsupported, version=session.selection.param.version))
    if not basemap:
        # the same view streams as the layer's image: Bokeh draws the map once, then HoloViews resamples it
        # to the drawn extent once per view stream, each time redrawing the whole overlay (0.4 s a time)
        unsupported = rasterize(unsupported, width=MAP_PIXELS, height=MAP_PIXELS, streams=img.streams)
    zones = hv.DynamicMap(
        pn.bind(
            render_zones,
            top_share=session.selection.param.top_share,
            show_zones=session.selection.param.show_zones,
            version=session.selection.param.version,
        )
    )
    deposits = hv.DynamicMap(
        pn.bind(
            render_deposits,
            show_deposits=session.selection.param.show_deposits,
            version=session.selection.param.version,
        )
    )
    selected = hv.DynamicMap(pn.bind(marker, explanation=session.explanation.param.cell))
    selected_sample = hv.DynamicMap(
        pn.bind(sample_marker, session.explanation.param.sample, session.selection.param.show_samples)
    )

    def render_neighbours(explanation, head):
        x = session.data.ds["x"].values if session.data.ds is not None else np.zeros(0)
        y = session.data.ds["y"].values if session.data.ds is not None else np.zeros(0)
        return place(plots_map.neighbour_segments(explanation, head, x, y))

    neighbours = hv.DynamicMap(
        pn.bind(render_neighbours, session.explanation.param.cell, session.explanation.param.gat_head)
    )
    # a survey of tens of thousands of samples is rasterised for the view (datashader) and drawn as dots with
    # hover once few enough of them are in view: both layers follow the map's view range
    sample_streams = [view] if not basemap else []
    samples = hv.DynamicMap(
        pn.bind(
            render_samples, show_samples=session.selection.param.show_samples, version=session.selection.param.version
        ),
        streams=list(sample_streams),  # a copy each: DynamicMap appends its own streams to the list
    )
    sample_raster = hv.DynamicMap(
        pn.bind(
            render_sample_raster,
            show_samples=session.selection.param.show_samples,
            version=session.selection.param.version,
        ),
        streams=list(sample_streams),  # a copy each: DynamicMap appends its own streams to the list
    )
    truth = hv.DynamicMap(
        pn.bind(render_truth, show_truth=session.selection.param.show_truth, version=session.selection.param.version)
    )

    tap = hv.streams.Tap(source=img, x=None, y=None)
    box = hv.streams.BoundsXY(source=img, bounds=None)
    lasso = hv.streams.Lasso(source=img, geometry=None)

    def forget_the_box(*events):  # the old data's box is not drawn over new data
        if box.bounds is not None:
            box.event(bounds=None)

    def forget_a_replaced_box(*events):  # nor a box cleared, or replaced by a lasso or the scatter's pick
        if session.selection.brush_origin != "a box on the map":
            forget_the_box()

    session.data.param.watch(forget_the_box, ["ds"])
    session.selection.param.watch(forget_a_replaced_box, ["brush_origin"])

    async def on_tap(x, y):
        if x is None or y is None or not np.isfinite([x, y]).all():
            return
        with contextlib.suppress(DataError):  # the cell clicked, model or not (the Learn exercise reads it)
            session.explanation.clicked = session.explanation.cell_at(x, y)
        if session.model.point_scores is not None and session.selection.show_samples:
            sample = await jobs.run("explaining the sample", session.explanation.explain_sample_at, x, y)
            if sample is not None:
                session.explanation.sample = sample
                session.activity.status = f"explained sample {sample['name']} (percentile {sample['percentile']:.1f})"
            if session.model.fitted is None:
                return
        t0 = time.perf_counter()
        exp = await jobs.run("explaining the cell", session.explanation.explain_at, x, y)
        if exp is None:
            return
        with updating_together():
            session.explanation.cell = exp  # assigned on the event loop, not in the worker thread
            session.activity.status = (
                f"explained row {exp.attrs['row']}, col {exp.attrs['col']} in {time.perf_counter() - t0:.1f} s"
            )

    def render_brushed(brushed):
        """The cells picked by a box on the scatter plot (or the map), outlined on the map."""
        xy = ([], [])
        if brushed is not None and session.data.ds is not None:
            rows, cols = np.unravel_index(plots_charts.some_cells(brushed, 20_000), brushed.shape)
            xy = (session.data.ds["x"].values[cols], session.data.ds["y"].values[rows])
        return place(  # one label, empty or not (see plots_map.KEEP_SELECTED)
            hv.Points(xy, kdims=["x", "y"], label="picked cells").opts(
                color=plots_charts.BRUSH_COLOUR, marker="square", size=4, alpha=0.3, nonselection_alpha=0.3
            )
        )

    def render_kept(kept):
        """The kept selections, see-through in their colours, under the current pick."""
        ds = session.data.ds

        def cell_centres(index):
            if ds is None:
                return np.zeros(0), np.zeros(0)
            rows, cols = np.unravel_index(index, (ds.sizes["y"], ds.sizes["x"]))
            return ds["x"].values[cols], ds["y"].values[rows]

        return place(plots_charts.kept_points(kept if ds is not None else [], cell_centres, ["x", "y"]))

    async def summarise_the_pick():
        """The region summary of the cells just picked on the map (a box or a lasso)."""
        picked = session.selection.brushed
        if session.model.fitted is None or picked is None:
            return  # the region summary needs a model; the brushing does not
        # the previous region's summary must not stand for the new pick while this one is computed
        session.explanation.region = {"pending": True, "n_picked": int(np.asarray(picked).sum())}
        if session.explanation.maps is None:
            await jobs.run("attention maps", session.compute_maps, heavy=True, progress=True)
        summary = await jobs.run("summarising the region", session.explanation.summarise_cells, picked)
        if summary is not None:
            session.explanation.region = summary
            session.activity.status = (
                f"summarised a region of {summary['n_cells']:,} cells on measured ground "
                f"(of {summary['n_picked']:,} picked)"
            )

    async def on_box(bounds):
        if bounds is None:
            return
        session.selection.brush_map_box(*bounds)
        await summarise_the_pick()

    async def on_lasso(geometry):
        if geometry is None or len(geometry) == 0:
            return
        geometry = np.asarray(geometry, dtype=float)
        if basemap and crs() is not None:  # GeoViews gives a lasso in the tiles' web-Mercator metres
            from pyproj import Transformer

            to_grid = Transformer.from_crs("EPSG:3857", crs(), always_xy=True)
            geometry = np.column_stack(to_grid.transform(geometry[:, 0], geometry[:, 1]))
        try:
            session.selection.brush_map_lasso(geometry)
        except DataError as exc:
            session.activity.fail(exc)
            return
        await summarise_the_pick()

    async def tap_watch(*events):  # one call per click, with one event per changed parameter
        await on_tap(tap.x, tap.y)

    async def box_watch(*events):
        await on_box(box.bounds)

    async def lasso_watch(*events):
        await on_lasso(lasso.geometry)

    tap.param.watch(tap_watch, ["x", "y"], onlychanged=False)
    box_outline = hv.DynamicMap(lambda bounds: place(plots_map.selection_box(bounds)), streams=[box])
    box.param.watch(box_watch, ["bounds"])
    lasso.param.watch(lasso_watch, ["geometry"], onlychanged=False)
    kept = hv.DynamicMap(pn.bind(render_kept, session.selection.param.kept))
    brushed = hv.DynamicMap(pn.bind(render_brushed, session.selection.param.brushed))
    fold = hv.DynamicMap(pn.bind(render_fold, session.evaluation.param.fold, session.selection.param.version))
    # the picked cells see-through and under every mark (outline, truth, samples, deposits): they hid them
    overlay = (
        img
        * unsupported
        * kept
        * brushed
        * zones
        * truth
        * sample_raster
        * samples
        * deposits
        * fold
        * neighbours
        * selected
        * selected_sample
    )
    overlay = overlay * box_outline
    if basemap and crs() is not None:
        overlay = plots_map.tiles(tile_url()) * overlay
    # the legend above the frame: over the map it swallowed clicks on the cells beneath it, and on its right
    # it widened the plot until its toolbar slid under the explanation column
    overlay = overlay.opts(
        hv.opts.Overlay(legend_position="top", framewise=True, hooks=[plots_map.legend_of_drawn_layers])
    )
    pane = pn.pane.HoloViews(overlay, name="map", css_classes=["mstgat-map"], linked_axes=False)
    pane.tap_stream, pane.box_stream, pane.lasso_stream = tap, box, lasso  # handy for tests / notebooks
    return pane


def brush_panel(session: Session):
    """ioGAS-style linked brushing: a box or a lasso on the map highlights its cells in a scatter plot of two
    elements and in the histogram of the map's layer; one on the scatter plot shows its cells on the map. A
    pick can be kept under a name, in its own colour, on both (:func:`~.selections_view.kept_selections_panel`)."""

    def scatter(x_element, y_element, version):
        if session.data.ds is None or x_element not in session.data.ds or y_element not in session.data.ds:
            return pn.pane.Markdown("No data.")
        ds = session.data.ds
        deposits = session.data.deposit_mask.values if session.data.deposit_mask is not None else None
        layers = plots_charts.brush_scatter(ds, x_element, y_element, None, deposits)
        picked = hv.DynamicMap(
            pn.bind(
                lambda brushed: plots_charts.brush_scatter(ds, x_element, y_element, brushed)["picked"],
                session.selection.param.brushed,
            )
        )
        lx, ly = (plots_charts._log10(ds[element].values).ravel() for element in (x_element, y_element))
        kept = hv.DynamicMap(
            pn.bind(
                lambda kept: plots_charts.kept_points(kept, lambda i: (lx[i], ly[i]), layers["cells"].kdims, size=3),
                session.selection.param.kept,
            )
        )
        box = hv.streams.BoundsXY(source=layers["cells"], bounds=None)
        lasso = hv.streams.Lasso(source=layers["cells"], geometry=None)

        def pick(*events):
            if box.bounds is not None:
                session.selection.brush_scatter_box(*box.bounds)

        def pick_lasso(*events):
            if lasso.geometry is not None and len(lasso.geometry):
                try:
                    session.selection.brush_scatter_lasso(lasso.geometry)
                except DataError as exc:
                    session.activity.fail(exc)

        box.param.watch(pick, ["bounds"])
        lasso.param.watch(pick_lasso, ["geometry"], onlychanged=False)
        scatter_pane = pane(layers["cells"] * kept * picked * layers["deposits"], "mstgat-brush-scatter")
        scatter_pane.box_stream, scatter_pane.lasso_stream = box, lasso  # handy for tests / notebooks
        return scatter_pane

    def histogram(layer, version):
        da = session.selection.layer_data(layer)
        key = session.selection.layer_key(layer)
        log = key is not None and key.kind == "element"
        deposits = session.data.deposit_mask.values if session.data.deposit_mask is not None else None
        view = hv.DynamicMap(
            pn.bind(
                lambda picked: plots_charts.brush_histogram(da, picked, deposits, log=log),
                session.selection.param.brushed,
            )
        )
        return pane(view, "mstgat-brush-histogram")

    clear = pn.widgets.Button(name="Clear the selection", button_type="light", css_classes=["mstgat-brush-clear"])
    clear.on_click(lambda event: session.selection.clear_brush())  # the current pick only: kept ones stay
    return pn.Card(
        pn.pane.Markdown(
            pn.bind(
                lambda brushed, origin, version: session.selection.brush_readout(),
                session.selection.param.brushed,
                session.selection.param.brush_origin,
                session.selection.param.version,
            ),
            css_classes=["mstgat-brush-readout"],
            sizing_mode="stretch_width",
        ),
        pn.Row(
            pn.widgets.Select.from_param(session.selection.param.brush_x, width=160),
            pn.widgets.Select.from_param(session.selection.param.brush_y, width=160),
            clear,
        ),
        kept_selections_panel(session),
        pn.Row(
            after_page_drawn(
                lambda: pn.panel(
                    pn.bind(
                        scatter,
                        session.selection.param.brush_x,
                        session.selection.param.brush_y,
                        session.selection.param.version,
                    )
                )
            ),
            after_page_drawn(
                lambda: pn.panel(pn.bind(histogram, session.selection.param.layer, session.selection.param.version))
            ),
            sizing_mode="stretch_width",
        ),
        title="Linked brushing: map, scatter plot and histogram",
        sizing_mode="stretch_width",
        css_classes=["mstgat-brushing"],
    )


def region_panel(session: Session):
    """The summary of the region boxed on the map: its cells, score, leading elements and attention matrix."""

    def text(summary):
        if not summary:
            return "Select a region with the box-select or lasso-select tool to summarise it."
        if summary.get("pending"):
            return (
                f"**Summarising the {summary['n_picked']:,} picked cells...** (progress in the status bar; "
                "the previous region's summary is gone)"
            )
        lines = [region_line(summary)]
        if summary.get("elements_by_attention"):
            lines.append(
                "Elements with more [CLS] attention inside than outside: "
                + ", ".join(summary["elements_by_attention"][:8])
            )
        attributed, cells = summary.get("attributed_cells"), summary.get("n_cells")
        if attributed is not None and cells is not None and attributed < cells:
            lines.append(f"The attributions below are means over a random {attributed:,} of the {cells:,} cells.")
        if summary.get("elements_by_enrichment"):
            lines.append(
                "Indicator elements (mean attribution carried by enriched elements inside): "
                + ", ".join(summary["elements_by_enrichment"][:8])
            )
        if summary.get("elements_by_attribution"):
            lines.append(
                "Elements with the largest mean attribution inside (depletions included): "
                + ", ".join(summary["elements_by_attribution"][:8])
            )
        if summary.get("scale_weights"):
            lines.append(
                "Mean scale weights: " + ", ".join(f"{k}: {float(v):.2f}" for k, v in summary["scale_weights"].items())
            )
        return "\n\n".join(lines)

    return pn.Column(
        pn.pane.Markdown(pn.bind(text, session.explanation.param.region), css_classes=["mstgat-region"]),
        pn.pane.HoloViews(
            pn.bind(plots_explain.matrix_heatmap, session.explanation.param.region), sizing_mode="stretch_width"
        ),
        sizing_mode="stretch_width",
    )


def region_line(summary: dict) -> str:
    """The region summary's first line: its cells on measured ground (what it describes) of the cells picked,
    as the brushing readout counts them, and their mean probability."""
    picked = summary.get("n_picked")
    of = f" (of {picked:,} picked)" if picked is not None else ""
    return (
        f"**Region:** {summary.get('n_cells', 0):,} cells on measured ground{of}, mean probability "
        f"{summary.get('mean_probability', float('nan')):.3f}"
    )
