"""Thin Panel views over :class:`~mstgat_core.dashboard.state.Session`.

Everything here is created inside :func:`create_app`, which Panel calls once per
browser session, so no widget, stream or state object is shared between users.
Long work runs in a worker thread (``asyncio.to_thread``); the event loop polls
its progress and copies it into the session's params.
"""

from __future__ import annotations

import asyncio
import time

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from ..paths import DEMO_DEPOSITS, DEMO_GRID
from . import plots
from .learn import learn_text
from .state import HEAVY_JOBS, JOB_SLOTS, SOURCES, Session, load_demo_cached, remove_stale_session_folders

hv.extension("bokeh", logo=False)

cached_demo = pn.cache(load_demo_cached)  # keyed on the two path strings


class Jobs:
    """Runs one blocking job at a time for a session, with progress polling and cancel."""

    def __init__(self, session: Session):
        self.s = session

    async def run(self, name: str, func, *args, history: list | None = None, **kwargs):
        s = self.s
        if s.busy:
            s.error = f"'{s.busy}' is still running: wait for it or press Cancel"
            return None
        s.busy, s.error = name, ""
        s.progress, s.progress_max, s.progress_text = 0, 1, f"{name}..."
        heavy = name in HEAVY_JOBS
        if heavy and not await self._wait_for_slot(name):
            return None
        try:
            return await self._run(name, func, *args, history=history, **kwargs)
        finally:
            if heavy:
                JOB_SLOTS.finish()

    async def _wait_for_slot(self, name: str) -> bool:
        """Queue for one of the server's heavy-job slots, showing the position; False if cancelled."""
        s = self.s
        ticket = object()
        JOB_SLOTS.join(ticket)
        s.cancel_event.clear()
        try:
            while not JOB_SLOTS.try_start(ticket):
                if s.cancel_event.is_set():
                    s.busy, s.status, s.progress_text = "", "cancelled", f"{name}: cancelled while queued"
                    return False
                ahead = JOB_SLOTS.ahead(ticket)
                s.progress_text = (
                    f"{name}: queued - {JOB_SLOTS.running} heavy job(s) running on this server, "
                    f"{ahead} waiting before yours"
                )
                await asyncio.sleep(0.3)
            return True
        finally:
            JOB_SLOTS.leave(ticket)

    async def _run(self, name: str, func, *args, history: list | None = None, **kwargs):
        s = self.s
        box = {"done": 0, "total": 1, "msg": ""}

        def progress(done, total, msg=""):
            box.update(done=int(done), total=max(int(total), 1), msg=str(msg or ""))

        if "progress" in kwargs:
            kwargs["progress"] = progress
        task = asyncio.create_task(asyncio.to_thread(func, *args, **kwargs))
        seen = 0
        t0 = time.perf_counter()
        try:
            while not task.done():
                await asyncio.wait([task], timeout=0.4)
                self._sync(box, history, seen, name, t0)
                if history is not None:
                    seen = len(history)
            result = task.result()
            self._sync(box, history, seen, name, t0)
            return result
        except Exception as exc:  # shown in the page, never as a traceback
            s.fail(exc)
            return None
        finally:
            s.busy = ""
            s.progress = s.progress_max
            if history is None:
                s.progress_text = f"{name}: finished in {time.perf_counter() - t0:.1f} s"

    def _sync(self, box, history, seen, name, t0):
        s = self.s
        if history is not None and len(history) != seen:
            logs = list(history)
            s.history = [dict(epoch=e.epoch, loss=e.loss, val_auc=getattr(e, "val_auc", float("nan"))) for e in logs]
            last = logs[-1]
            s.progress_max = max(int(s.epochs), 1)
            s.progress = min(last.epoch, s.progress_max)
            auc = getattr(last, "val_auc", None)
            stage = "pretraining" if auc is None else "training"
            s.progress_text = f"{name}: {stage} epoch {last.epoch}/{s.epochs}, loss {last.loss:.4f}" + (
                f", val AUC {auc:.3f}" if auc is not None else ""
            )
        elif history is None:
            s.progress_max, s.progress = box["total"], min(box["done"], box["total"])
            s.progress_text = f"{name}: {box['done']}/{box['total']} {box['msg']}".strip()
        if history is not None and not history:
            s.progress_text = f"{name}: preparing ({time.perf_counter() - t0:.0f} s)"


def _alert(session: Session) -> pn.pane.Alert:
    alert = pn.pane.Alert(
        "", alert_type="danger", visible=False, name="error", css_classes=["mstgat-error"], sizing_mode="stretch_width"
    )

    def show(event=None):
        alert.object = f"**Error:** {session.error}" if session.error else ""
        alert.visible = bool(session.error)

    session.param.watch(show, "error")
    return alert


def map_panel(session: Session, jobs: Jobs):
    """The linked map: chosen layer, anomaly outline, deposits, tap and box-select streams.

    The ``Tap``/``BoundsXY`` streams are attached to the DynamicMap of the *image alone*
    (the element Bokeh actually renders and that owns the tap/box-select tools); zones,
    deposits and the selected-cell marker are separate DynamicMaps overlaid on it. A stream
    whose source is a DynamicMap returning a whole overlay never receives the click.
    """

    def render_image(layer, log_elements, version):
        da = session.layer_data(layer)
        log = log_elements and bool(layer) and layer.startswith("element")
        image = plots.image(da, title=layer or "no data", kind=plots.layer_kind(layer), log=log)
        # explicit limits: new data (demo -> synthetic -> upload, another CRS) must not keep the old extent
        return image.opts(
            data_aspect=1,
            frame_width=420,
            tools=["hover", "tap", "box_select"],
            framewise=True,
            **plots.extent(da),
        )

    def render_zones(top_share, show_zones, version):
        cut = session.zone_cut()
        if show_zones and cut is not None:
            return plots.zones(session.probability, cut)
        return hv.Contours([]).opts(line_color="white")

    def render_deposits(show_deposits, version):
        crs = session.ds.rio.crs if session.ds is not None else None
        return plots.deposit_points(session.deposits if show_deposits else None, crs)

    def render_samples(show_samples, version):
        if not show_samples or session.samples is None:
            return plots.sample_points(None, None)
        geometry = session.samples.table.geometry
        xy = None if session.point_scores is not None else pd.DataFrame({"x": geometry.x, "y": geometry.y})
        return plots.sample_points(xy, session.point_scores)

    def render_truth(show_truth, version):
        return plots.truth_overlay(session.truth_table() if show_truth else None)

    def marker(explanation):
        if explanation is None:
            return hv.Points([], kdims=["x", "y"])
        return hv.Points([(explanation.attrs["x"], explanation.attrs["y"])], kdims=["x", "y"]).opts(
            marker="square", size=14, fill_alpha=0, line_color="cyan", line_width=3
        )

    img = hv.DynamicMap(
        pn.bind(
            render_image,
            layer=session.param.layer,
            log_elements=session.param.log_elements,
            version=session.param.version,
        )
    )
    zones = hv.DynamicMap(
        pn.bind(
            render_zones,
            top_share=session.param.top_share,
            show_zones=session.param.show_zones,
            version=session.param.version,
        )
    )
    deposits = hv.DynamicMap(
        pn.bind(render_deposits, show_deposits=session.param.show_deposits, version=session.param.version)
    )
    selected = hv.DynamicMap(pn.bind(marker, explanation=session.param.explanation))
    samples = hv.DynamicMap(
        pn.bind(render_samples, show_samples=session.param.show_samples, version=session.param.version)
    )
    truth = hv.DynamicMap(pn.bind(render_truth, show_truth=session.param.show_truth, version=session.param.version))

    tap = hv.streams.Tap(source=img, x=None, y=None)
    box = hv.streams.BoundsXY(source=img, bounds=None)

    async def on_tap(x, y):
        if x is None or y is None or not np.isfinite([x, y]).all():
            return
        if session.point_scores is not None and session.show_samples:
            sample = await jobs.run("explaining the sample", session.explain_sample_at, x, y)
            if sample is not None:
                session.sample_explanation = sample
                session.status = f"explained sample {sample['sample']} (percentile {sample['percentile']:.1f})"
            if session.fitted is None:
                return
        t0 = time.perf_counter()
        exp = await jobs.run("explaining the cell", session.explain_at, x, y)
        if exp is not None:
            session.explanation = exp  # assigned on the event loop, not in the worker thread
            session.status = (
                f"explained row {exp.attrs['row']}, col {exp.attrs['col']} in {time.perf_counter() - t0:.1f} s"
            )

    async def on_box(bounds):
        if bounds is None:
            return
        if session.fitted is None:
            session.error = "no model yet: train or load one to summarise a region"
            return
        if session.maps is None:
            await jobs.run("attention maps", session.compute_maps, progress=True)
        summary = await jobs.run("summarising the region", session.summarise_region, *bounds)
        if summary is not None:
            session.region_summary = summary
            session.status = f"summarised a region of {summary.get('n_cells', '?')} cells"

    async def tap_watch(*events):  # one call per click, with one event per changed parameter
        await on_tap(tap.x, tap.y)

    async def box_watch(*events):
        await on_box(box.bounds)

    tap.param.watch(tap_watch, ["x", "y"], onlychanged=False)
    box_outline = hv.DynamicMap(plots.selection_box, streams=[box])
    box.param.watch(box_watch, ["bounds"])
    overlay = (img * zones * truth * samples * deposits * selected * box_outline).opts(
        hv.opts.Overlay(legend_position="bottom_right", framewise=True)
    )
    pane = pn.pane.HoloViews(overlay, name="map", css_classes=["mstgat-map"], linked_axes=False)
    pane.tap_stream, pane.box_stream = tap, box  # handy for tests / notebooks
    return pane


def explanation_panel(session: Session):
    def header(exp, fitted, busy):
        if fitted is None:
            return "### Explanation\nNo model yet: train one (Model tab) or load a checkpoint, then click the map."
        if exp is None:
            return "### Explanation\nClick a cell of the map to explain it; drag a box (box-select tool) for a region."
        a = exp.attrs
        lines = [
            f"### Cell row {a['row']}, col {a['col']} · probability {a['probability']:.4g}",
            f"x = {a['x']:.0f}, y = {a['y']:.0f} · variant {a.get('variant', '?')} · "
            f"IG convergence delta {a.get('ig_delta', float('nan')):.2g}",
        ]
        if "percentile" in a:
            lines.append(f"Rank: percentile {a['percentile']:.1f} of the valid cells (100 = highest).")
        if "uncertainty" in a:
            lines.append(
                f"Uncertainty: the ensemble members' scores spread by {a['uncertainty']:.3f} (sd); "
                f"{a.get('top_agreement', float('nan')):.0%} of them put the cell in their top 5 %."
            )
        if "novelty" in a:
            unlike = " — unlike the training grid: read with care" if a["novelty"] > 1 else ""
            lines.append(f"Novelty {a['novelty']:.2f} (1 = the training grid's 99.5th percentile){unlike}.")
        return "\n\n".join(lines)

    head = pn.pane.Markdown(
        pn.bind(header, session.param.explanation, session.param.fitted, session.param.busy),
        name="explanation-header",
        css_classes=["mstgat-explain-header"],
        sizing_mode="stretch_width",
    )
    controls = pn.Row(
        pn.widgets.Select.from_param(session.param.att_layer, width=140),
        pn.widgets.Select.from_param(session.param.att_head, width=140),
        pn.widgets.Select.from_param(session.param.gat_head, width=140),
    )
    bars = pn.pane.HoloViews(
        pn.bind(plots.cls_bars, session.param.explanation, session.param.att_layer, session.param.att_head),
        sizing_mode="stretch_width",
        linked_axes=False,
        css_classes=["mstgat-attention-bars"],
    )
    heat = pn.pane.HoloViews(
        pn.bind(plots.attention_heatmap, session.param.explanation, session.param.att_layer, session.param.att_head),
        sizing_mode="stretch_width",
        linked_axes=False,
    )

    def neighbours(exp, head):
        panes = [pn.pane.HoloViews(p, linked_axes=False) for p in plots.neighbour_images(exp, head)]
        return pn.GridBox(*panes, ncols=2, css_classes=["mstgat-neighbours"])

    nb = pn.panel(pn.bind(neighbours, session.param.explanation, session.param.gat_head))
    scales = pn.pane.HoloViews(pn.bind(plots.scale_bars, session.param.explanation), linked_axes=False)
    ig = pn.pane.HoloViews(
        pn.bind(plots.attribution_bars, session.param.explanation),
        sizing_mode="stretch_width",
        linked_axes=False,
        css_classes=["mstgat-ig-bars"],
    )
    return pn.Column(
        head,
        controls,
        bars,
        ig,
        pn.pane.Markdown(
            "**GAT neighbour weights into the cell (last GAT layer, one heatmap per scale; grey = no edge)**"
        ),
        pn.Row(nb, scales),
        heat,
        sizing_mode="stretch_width",
        css_classes=["mstgat-explanation"],
    )


def sample_markdown(exp: dict | None) -> str:
    """A scored sample's explanation as text a geochemist reads: score, leading elements, neighbours."""
    if not exp:
        return ""
    lines = [
        f"### Sample {exp['sample']} · label-free score {exp['anomaly_score']:.3f} "
        f"(percentile {exp['percentile']:.1f})",
        f"x = {exp['x']:.0f}, y = {exp['y']:.0f}. Elements furthest from what the sample's other elements and its "
        "neighbours predict (+ richer, - poorer): "
        + ", ".join(f"{e}{'+' if exp['residuals'][e] >= 0 else '-'}" for e in list(exp["contributions"].index[:5])),
    ]
    attention = sorted(exp["element_attention"].items(), key=lambda kv: -kv[1])[:5]
    lines.append("[CLS] attention (last layer): " + ", ".join(f"{e} {w:.2f}" for e, w in attention))
    for i, (scale, reach) in enumerate(zip(exp["neighbours"], exp["reach"]), start=1):
        top = sorted(zip(scale["weight"][1:], scale["sample"][1:], scale["distance"][1:]), reverse=True)[:3]
        lines.append(
            f"Scale {i} (median reach {reach:,.0f} m): self-weight {scale['weight'][0]:.2f}; strongest neighbours "
            + ", ".join(f"sample {s} at {d:,.0f} m ({w:.2f})" for w, s, d in top)
        )
    lines.append("Scale weights: " + ", ".join(f"{w:.2f}" for w in exp["scale_weights"]))
    return "\n\n".join(lines)


def sample_panel(session: Session):
    text = pn.pane.Markdown(
        pn.bind(sample_markdown, session.param.sample_explanation),
        css_classes=["mstgat-sample-explanation"],
        sizing_mode="stretch_width",
    )
    bars = pn.pane.HoloViews(pn.bind(plots.contribution_bars, session.param.sample_explanation))
    return pn.Column(
        text, bars, sizing_mode="stretch_width", visible=pn.bind(lambda s: s is not None, session.param.samples)
    )


def region_panel(session: Session):
    def text(summary):
        if not summary:
            return "Select a region with the box-select tool to summarise it."
        lines = [
            f"**Region:** {summary.get('n_cells', '?')} cells, mean probability "
            f"{summary.get('mean_probability', float('nan')):.3f}"
        ]
        if summary.get("elements_by_attention"):
            lines.append(
                "Elements with more [CLS] attention inside than outside: "
                + ", ".join(summary["elements_by_attention"][:8])
            )
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
        pn.pane.Markdown(pn.bind(text, session.param.region_summary), css_classes=["mstgat-region"]),
        pn.pane.HoloViews(pn.bind(plots.matrix_heatmap, session.param.region_summary), sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )


_STALE_FOLDERS_CLEANED = False


def create_app():
    """Build one session's dashboard (called by Panel for every browser session)."""
    global _STALE_FOLDERS_CLEANED
    if not _STALE_FOLDERS_CLEANED:  # once per server process: folders left by a server that died
        remove_stale_session_folders()
        _STALE_FOLDERS_CLEANED = True
    session = Session()
    jobs = Jobs(session)
    t_start = time.perf_counter()
    try:
        ds, deposits = cached_demo(str(DEMO_GRID), str(DEMO_DEPOSITS))
        session.set_data(ds, deposits, "South China demo (Li, 39 elements)")
        session.use_demo_model()
        session.status = f"loaded {session.data_label}" + (
            f" with {session.model_label}" if session.fitted else " - no model yet: train one in the Model tab"
        )
    except Exception as exc:
        session.fail(exc)
    session.status += f" ({time.perf_counter() - t_start:.1f} s)"

    # ------------------------------------------------------------ data card
    source = pn.widgets.Select.from_param(session.param.source, name="Data source", css_classes=["mstgat-source"])
    synth = pn.Column(
        pn.widgets.IntInput.from_param(session.param.synth_rows),
        pn.widgets.IntInput.from_param(session.param.synth_cols),
        pn.widgets.IntInput.from_param(session.param.synth_seed),
        visible=pn.bind(lambda s: s == SOURCES[1], session.param.source),
    )
    load_btn = pn.widgets.Button(name="Load data", button_type="primary", css_classes=["mstgat-load"])

    async def do_load(event=None):
        if session.source == SOURCES[0]:
            await jobs.run("loading the demo", session.load_demo)
        elif session.source == SOURCES[1]:
            await jobs.run("making the synthetic scenario", session.load_synthetic)
        else:
            session.error = "drop a grid file below to load your own data"

    load_btn.on_click(do_load)
    grid_drop = pn.widgets.FileDropper(
        name="grid",
        multiple=False,
        chunk_size=4_000_000,
        max_file_size="500MB",
        css_classes=["mstgat-grid-upload"],
        sizing_mode="stretch_width",
    )
    dep_drop = pn.widgets.FileDropper(
        name="deposits", multiple=False, css_classes=["mstgat-deposit-upload"], sizing_mode="stretch_width"
    )

    async def on_grid(event):
        if event.new:
            await jobs.run("loading the upload", session.load_grid_upload, dict(event.new))

    async def on_deps(event):
        if event.new:
            await jobs.run("loading deposits", session.load_deposits_upload, dict(event.new))

    grid_drop.param.watch(on_grid, "value")
    dep_drop.param.watch(on_deps, "value")
    data_card = pn.Card(
        source,
        synth,
        load_btn,
        pn.pane.Markdown(
            "**Your data.** Grid: NetCDF, zip of GeoTIFFs, multi-band GeoTIFF, or CSV/GPKG points "
            "(gridded with the cell size below)."
        ),
        pn.widgets.FloatInput.from_param(session.param.cell_size),
        grid_drop,
        pn.pane.Markdown("Deposits: CSV (x, y columns), GPKG or GeoJSON points."),
        dep_drop,
        pn.widgets.Select.from_param(session.param.transform),
        title="Data",
        sizing_mode="stretch_width",
    )

    # ------------------------------------------------------------ model card
    train_btn = pn.widgets.Button(name="Train", button_type="primary", css_classes=["mstgat-train"])
    cancel_btn = pn.widgets.Button(name="Cancel", button_type="warning", css_classes=["mstgat-cancel"])
    cancel_btn.on_click(lambda e: session.cancel_event.set())
    history: list = []

    async def do_train(event=None):
        history.clear()
        session.history = []
        await jobs.run("training", session.train, history=history, on_epoch=history.append)

    train_btn.on_click(do_train)
    score_btn = pn.widgets.Button(
        name="Score the samples (label-free)", button_type="default", css_classes=["mstgat-score-samples"]
    )

    async def do_score(event=None):
        history.clear()
        session.history = []
        await jobs.run("scoring the samples", session.score_samples, history=history, on_epoch=history.append)

    score_btn.on_click(do_score)
    ckpt_drop = pn.widgets.FileDropper(
        name="checkpoint", multiple=False, css_classes=["mstgat-ckpt-upload"], sizing_mode="stretch_width"
    )

    async def on_ckpt(event):
        if event.new:
            await jobs.run("loading the checkpoint", session.load_checkpoint_upload, dict(event.new))

    ckpt_drop.param.watch(on_ckpt, "value")

    def ckpt_download():
        try:
            return session.checkpoint_bytes()
        except Exception as exc:
            session.fail(exc)
            return None

    model_card = pn.Card(
        pn.pane.Markdown(pn.bind(lambda m: f"**Model:** {m}", session.param.model_label)),
        pn.pane.Markdown(
            pn.bind(lambda label, fitted: session.model_provenance(), session.param.model_label, session.param.fitted),
            css_classes=["mstgat-provenance"],
            sizing_mode="stretch_width",
        ),
        pn.widgets.Select.from_param(session.param.variant),
        pn.widgets.TextInput.from_param(session.param.scales),
        pn.widgets.Checkbox.from_param(session.param.pretraining, css_classes=["mstgat-pretraining"]),
        pn.widgets.Checkbox.from_param(session.param.use_deposits, css_classes=["mstgat-use-deposits"]),
        pn.widgets.IntInput.from_param(session.param.members, css_classes=["mstgat-members"]),
        pn.widgets.IntInput.from_param(session.param.epochs, css_classes=["mstgat-epochs"]),
        pn.widgets.IntInput.from_param(session.param.seed),
        pn.widgets.IntInput.from_param(session.param.d_model),
        pn.Row(train_btn, cancel_btn),
        score_btn,
        pn.pane.Markdown("Load a checkpoint (.safetensors):"),
        ckpt_drop,
        pn.widgets.FileDownload(
            callback=ckpt_download,
            filename="mstgat_model.safetensors",
            label="Download checkpoint",
            button_type="light",
        ),
        title="Model",
        sizing_mode="stretch_width",
    )

    # ------------------------------------------------------------ export card
    def downloader(func, *args):
        def cb():
            try:
                return func(*args)
            except Exception as exc:
                session.fail(exc)
                return None

        return cb

    export_card = pn.Card(
        pn.widgets.FileDownload(
            callback=downloader(session.export_layers, "tif"),
            filename="mstgat_maps.tif",
            label="Maps as GeoTIFF",
            button_type="light",
        ),
        pn.widgets.FileDownload(
            callback=downloader(session.export_layers, "nc"),
            filename="mstgat_maps.nc",
            label="Maps as NetCDF",
            button_type="light",
        ),
        pn.widgets.FileDownload(
            callback=downloader(session.export_png),
            filename="mstgat_map.png",
            label="Current map as PNG",
            button_type="light",
        ),
        pn.widgets.FileDownload(
            callback=downloader(session.export_cv_csv),
            filename="mstgat_evaluation.csv",
            label="Evaluation table CSV",
            button_type="light",
        ),
        title="Export",
        sizing_mode="stretch_width",
        collapsed=True,
    )

    # ------------------------------------------------------------ status bar
    status = pn.pane.Markdown(
        pn.bind(lambda d, s: f"**{d}** · {s}", session.param.data_label, session.param.status),
        name="status",
        css_classes=["mstgat-status"],
        sizing_mode="stretch_width",
    )
    progress = pn.widgets.Progress(
        value=session.param.progress,
        max=session.param.progress_max,
        sizing_mode="stretch_width",
        bar_color="primary",
        height=12,
    )
    progress_text = pn.pane.Markdown(
        pn.bind(lambda t, b: t if (t or b) else "", session.param.progress_text, session.param.busy),
        name="progress",
        css_classes=["mstgat-progress"],
        sizing_mode="stretch_width",
    )
    alert = _alert(session)
    if session.error:
        alert.object, alert.visible = f"**Error:** {session.error}", True

    # ------------------------------------------------------------ map tab
    layer_sel = pn.widgets.Select(
        name="Map layer",
        groups=session.layer_groups() or {"": []},
        value=session.layer,
        width=260,
        css_classes=["mstgat-layer"],
    )

    def sync_layer_menu(*events):
        groups = session.layer_groups() or {"": []}
        if groups != layer_sel.groups:
            layer_sel.groups = groups
        if layer_sel.value != session.layer:
            layer_sel.value = session.layer

    session.param.watch(sync_layer_menu, ["version", "layer"])
    layer_sel.param.watch(lambda event: setattr(session, "layer", event.new), "value")
    map_controls = pn.FlexBox(
        layer_sel,
        pn.widgets.Select.from_param(session.param.top_share, width=220, css_classes=["mstgat-top-share"]),
        pn.widgets.Checkbox.from_param(session.param.show_zones),
        pn.widgets.Checkbox.from_param(session.param.log_elements),
        pn.widgets.Checkbox.from_param(session.param.show_deposits),
        pn.widgets.Checkbox.from_param(session.param.show_samples),
        pn.widgets.Checkbox.from_param(session.param.show_truth),
        pn.widgets.Checkbox.from_param(session.param.basemap, disabled=True),
    )
    zone_readout = pn.pane.Markdown(
        pn.bind(
            lambda share, version, probability: session.zone_readout(),
            session.param.top_share,
            session.param.version,
            session.param.probability,
        ),
        css_classes=["mstgat-zone-readout"],
        sizing_mode="stretch_width",
    )
    maps_btn = pn.widgets.Button(name="Compute attention maps", button_type="default")
    attr_btn = pn.widgets.Button(name="Compute attribution maps (slow)", button_type="default")

    async def do_maps(event=None):
        await jobs.run("attention maps", session.compute_maps, progress=True)

    async def do_attr(event=None):
        await jobs.run("attribution maps", session.compute_attributions, progress=True)

    maps_btn.on_click(do_maps)
    attr_btn.on_click(do_attr)
    the_map = map_panel(session, jobs)
    map_tab = pn.Row(
        pn.Column(map_controls, zone_readout, pn.Row(maps_btn, attr_btn), the_map, region_panel(session), width=720),
        pn.Column(sample_panel(session), explanation_panel(session), sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
        name="Map & explanation",
    )

    # ------------------------------------------------------------ data explorer tab
    def element_map(element, version):
        da = session.ds[element] if (session.ds is not None and element in session.ds) else None
        return (
            plots.image(da, title=f"{element}")
            * plots.deposit_points(session.deposits, session.ds.rio.crs if session.ds is not None else None)
        ).opts(hv.opts.Image(data_aspect=1, frame_height=420, cmap="viridis", logz=False))

    def hist(element, version):
        return plots.histogram(session.ds[element] if (session.ds is not None and element in session.ds) else None)

    explore_tab = pn.Column(
        pn.Row(
            pn.widgets.Select.from_param(session.param.explore_element, width=200),
            pn.widgets.MultiChoice.from_param(session.param.elements, sizing_mode="stretch_width"),
        ),
        pn.Row(
            pn.pane.HoloViews(pn.bind(element_map, session.param.explore_element, session.param.version)),
            pn.pane.HoloViews(
                pn.bind(hist, session.param.explore_element, session.param.version), sizing_mode="stretch_width"
            ),
            sizing_mode="stretch_width",
        ),
        pn.pane.HoloViews(
            pn.bind(
                lambda els, v: plots.correlation(session.ds, list(els)[:60]),
                session.param.elements,
                session.param.version,
            ),
            sizing_mode="stretch_width",
        ),
        name="Data",
        sizing_mode="stretch_width",
    )

    # ------------------------------------------------------------ training tab
    train_tab = pn.Column(
        pn.pane.Markdown(
            "### Training\nWith pretraining (the default): the masked-element reconstruction loss per epoch "
            "(no labels); the heads are then fitted in seconds, their settings chosen by cross-validation inside "
            "the deposits (the status line says which). From scratch: loss and validation ROC-AUC (spatially "
            "separated inner split) per epoch; the best epoch's weights are kept."
        ),
        pn.pane.HoloViews(
            pn.bind(plots.training_curves, session.param.history), sizing_mode="stretch_width", name="training-curves"
        ),
        name="Training",
        sizing_mode="stretch_width",
    )

    # ------------------------------------------------------------ evaluation tab
    cv_btn = pn.widgets.Button(name="Run cross-validation", button_type="primary", css_classes=["mstgat-cv-run"])

    async def do_cv(event=None):
        rep = await jobs.run("cross-validation", session.cross_validate, progress=True)
        if rep is not None:
            session.status = "cross-validation done"

    cv_btn.on_click(do_cv)
    eval_tab = pn.Column(
        pn.pane.Markdown(
            "### Spatial cross-validation\nHeld-out folds are spatial blocks separated by a buffer, so a model "
            "cannot score well by memorising the neighbourhood of training deposits. The defaults are small "
            "for interactivity (**3 folds x 1 seed**, short training); use the CLI (`mstgat evaluate`) for the "
            "full protocol (5 folds x 3 seeds)."
        ),
        pn.Row(
            pn.widgets.MultiChoice.from_param(session.param.cv_methods, width=420),
            pn.widgets.IntInput.from_param(session.param.cv_folds, width=100),
            pn.widgets.IntInput.from_param(session.param.cv_seeds, width=100),
            pn.widgets.IntInput.from_param(session.param.cv_epochs, width=160, css_classes=["mstgat-cv-epochs"]),
            cv_btn,
        ),
        pn.Row(
            pn.pane.HoloViews(pn.bind(plots.roc_curves, session.param.cv_report), sizing_mode="stretch_width"),
            pn.pane.HoloViews(pn.bind(plots.success_curves, session.param.cv_report), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        ),
        pn.pane.DataFrame(
            pn.bind(lambda r: session.cv_table(), session.param.cv_report),
            float_format="{:.3f}".format,
            sizing_mode="stretch_width",
            name="cv-table",
        ),
        name="Evaluation",
        sizing_mode="stretch_width",
    )

    learn_tab = pn.pane.Markdown(learn_text(), name="Learn", sizing_mode="stretch_width", max_width=900)

    tabs = pn.Tabs(map_tab, explore_tab, train_tab, eval_tab, learn_tab, dynamic=False, sizing_mode="stretch_width")

    template = pn.template.FastListTemplate(
        title="MSTGAT Explorer",
        sidebar=[data_card, model_card, export_card],
        main=[pn.Column(alert, status, pn.Row(progress), progress_text, tabs, sizing_mode="stretch_width")],
        sidebar_width=340,
        accent="#3b6ea5",
    )
    pn.state.on_session_destroyed(lambda ctx: session.cleanup())
    template.session = session  # handy for tests / notebooks
    return template
