"""The dashboard's parts as Panel ``Viewer`` components over one :class:`~.state.Session`: the sidebar's
data, model and export cards, the status bar, and the map, data, training, evaluation and learn tabs.
Each is a :class:`Component`: it builds its widgets once, for one browser session;
:func:`~.views.create_app` lays them out."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param
from panel.viewable import Viewer

from . import plots_charts, plots_map
from .exercise_view import exercise_card
from .explain_view import explanation_panel, sample_panel
from .exports import export_layers, export_png
from .jobs import Jobs
from .learn import faithfulness_report, learn_text
from .map_view import brush_panel, map_panel, region_panel
from .panes import error_alert, error_toast, notice_alert, report_upload, upload_alert
from .state import Session
from .state_data import SOURCES
from .targets_view import model_curves_panel, thresholds_card

OPAQUE = "var(--background-color, white)"  # the sticky status bar's background: the page scrolls beneath it


class Component(Viewer):
    """A part of one session's page, after Lumen's ``View``: the ``session`` and its ``jobs`` are params, a
    subclass writes :meth:`_build`, run once when the component is made, and ``__panel__`` shows what it
    built. Widgets are made from the session's params (``from_param``), never as class attributes."""

    session = param.ClassSelector(class_=Session, constant=True, doc="The session this part shows and drives")
    jobs = param.ClassSelector(class_=Jobs, constant=True, doc="Runs the session's long work off the event loop")

    def __init__(self, session: Session | None = None, jobs: Jobs | None = None, **params):
        super().__init__(session=session, jobs=jobs, **params)
        self._layout = self._build()

    def _build(self) -> pn.viewable.Viewable:
        """The component's layout (made once)."""
        raise NotImplementedError

    def __panel__(self):
        return self._layout


def built_when_shown(component: type[Component], session: Session, jobs: Jobs, name: str) -> pn.viewable.Viewable:
    """A hidden tab's component, made when the tab is first rendered, not with the page: in
    ``pn.Tabs(dynamic=True)`` a new session renders only the open tab, and now builds only its widgets."""
    built: list[Component] = []  # the one component, once made (``.built`` for tests)

    def build():
        if not built:
            built.append(component(session, jobs))
        return built[0]

    placeholder = pn.param.ParamFunction(build, lazy=True, name=name, sizing_mode="stretch_width")
    placeholder.built = built
    return placeholder


class DataCard(Component):
    """Where the data come from: the demo, a synthetic scenario, or uploaded grids, points and deposits."""

    def _build(self):
        session, jobs = self.session, self.jobs
        source = pn.widgets.Select.from_param(
            session.data.param.source, name="Data source", css_classes=["mstgat-source"]
        )
        synth = pn.Column(
            pn.widgets.IntInput.from_param(session.data.param.synth_rows),
            pn.widgets.IntInput.from_param(session.data.param.synth_cols),
            pn.widgets.IntInput.from_param(session.data.param.synth_seed),
            visible=pn.bind(lambda s: s == SOURCES[1], session.data.param.source),
        )
        load_btn = pn.widgets.Button(name="Load data", button_type="primary", css_classes=["mstgat-load"])

        async def do_load(event=None):
            if not session.confirm_new_data():
                return
            if session.data.source == SOURCES[0]:
                await jobs.run("loading the demo", session.load_demo)
            elif session.data.source == SOURCES[1]:
                await jobs.run("making the synthetic scenario", session.load_synthetic)
            else:
                session.activity.error = "drop a grid file below to load your own data"

        load_btn.on_click(do_load)
        self.load_data = do_load  # what the button does, for tests and notebooks
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

        grid_alert = upload_alert("mstgat-grid-upload-error")
        deposit_alert = upload_alert("mstgat-deposit-upload-error")

        async def on_grid(event):
            if event.new:
                await jobs.run("loading the upload", session.load_grid_upload, dict(event.new))
                report_upload(grid_alert, session)

        async def on_deps(event):
            if event.new:
                await jobs.run("loading deposits", session.load_deposits_upload, dict(event.new))
                report_upload(deposit_alert, session)

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
            pn.widgets.FloatInput.from_param(session.data.param.cell_size),
            pn.widgets.Select.from_param(session.data.param.support_choice),
            grid_drop,
            grid_alert,
            pn.pane.Markdown("Deposits: CSV (x, y or lon, lat), GPKG, GeoJSON or Parquet points."),
            pn.widgets.TextInput.from_param(session.data.param.site_commodity),
            pn.widgets.TextInput.from_param(session.data.param.site_type),
            pn.widgets.TextInput.from_param(session.data.param.site_status),
            dep_drop,
            deposit_alert,
            pn.pane.Markdown(
                pn.bind(
                    lambda *_: session.data.reports_markdown(),
                    session.data.param.import_report,
                    session.data.param.site_report,
                ),
                css_classes=["mstgat-import-report"],
                sizing_mode="stretch_width",
                styles={"font-size": "11px"},
            ),
            pn.widgets.Select.from_param(session.data.param.transform),
            title="Data",
            sizing_mode="stretch_width",
        )

        return data_card


class ModelCard(Component):
    """Train a model, score point samples, or load and download a checkpoint."""

    def _build(self):
        session, jobs = self.session, self.jobs
        train_btn = pn.widgets.Button(name="Train", button_type="primary", css_classes=["mstgat-train"])
        cancel_btn = pn.widgets.Button(name="Cancel", button_type="warning", css_classes=["mstgat-cancel"])
        cancel_btn.on_click(lambda e: session.activity.cancel_event.set())
        history: list = []

        async def do_train(event=None):
            history.clear()
            session.activity.history = []
            await jobs.run("training", session.train, heavy=True, history=history, on_epoch=history.append)

        train_btn.on_click(do_train)
        score_btn = pn.widgets.Button(
            name="Score the samples (label-free)", button_type="default", css_classes=["mstgat-score-samples"]
        )

        async def do_score(event=None):
            history.clear()
            session.activity.history = []
            await jobs.run(
                "scoring the samples", session.score_samples, heavy=True, history=history, on_epoch=history.append
            )

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
                return session.model.checkpoint_bytes()
            except Exception as exc:
                session.activity.fail(exc)
                return None

        model_card = pn.Card(
            pn.pane.Markdown(pn.bind(lambda m: f"**Model:** {m}", session.model.param.label)),
            pn.pane.Markdown(
                pn.bind(
                    lambda label, fitted: session.model.provenance(),
                    session.model.param.label,
                    session.model.param.fitted,
                ),
                css_classes=["mstgat-provenance"],
                sizing_mode="stretch_width",
            ),
            pn.widgets.Select.from_param(session.model.param.variant),
            pn.widgets.TextInput.from_param(session.model.param.scales),
            pn.widgets.Checkbox.from_param(session.model.param.pretraining, css_classes=["mstgat-pretraining"]),
            pn.widgets.Checkbox.from_param(session.model.param.use_deposits, css_classes=["mstgat-use-deposits"]),
            pn.widgets.IntInput.from_param(session.model.param.members, css_classes=["mstgat-members"]),
            pn.widgets.IntInput.from_param(session.model.param.epochs, css_classes=["mstgat-epochs"]),
            pn.widgets.IntInput.from_param(session.model.param.seed),
            pn.widgets.IntInput.from_param(session.model.param.d_model),
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

        return model_card


class ExportCard(Component):
    """Download the maps, the current map image and the evaluation table."""

    def _build(self):
        session = self.session

        def downloader(func, *args):
            def cb():
                try:
                    return func(*args)
                except Exception as exc:
                    session.activity.fail(exc)
                    return None

            return cb

        export_card = pn.Card(
            pn.widgets.FileDownload(
                callback=downloader(export_layers, session, "tif"),
                filename="mstgat_maps.tif",
                label="Maps as GeoTIFF",
                button_type="light",
            ),
            pn.widgets.FileDownload(
                callback=downloader(export_layers, session, "nc"),
                filename="mstgat_maps.nc",
                label="Maps as NetCDF",
                button_type="light",
            ),
            pn.widgets.FileDownload(
                callback=downloader(export_png, session),
                filename="mstgat_map.png",
                label="Current map as PNG",
                button_type="light",
            ),
            pn.widgets.FileDownload(
                callback=downloader(session.evaluation.csv),
                filename="mstgat_evaluation.csv",
                label="Evaluation table CSV",
                button_type="light",
            ),
            title="Export",
            sizing_mode="stretch_width",
            collapsed=True,
        )

        return export_card


class StatusBar(Component):
    """Errors (one line), the status line, and the running job's progress."""

    def _build(self):
        session = self.session
        status = pn.pane.Markdown(
            pn.bind(lambda d, s: f"**{d}** · {s}", session.data.param.label, session.activity.param.status),
            name="status",
            css_classes=["mstgat-status"],
            sizing_mode="stretch_width",
            min_height=44,  # room for two lines: the map below must not jump when the status changes
        )
        progress = pn.widgets.Progress(
            value=session.activity.param.progress,
            max=session.activity.param.progress_max,
            sizing_mode="stretch_width",
            bar_color="primary",
            height=12,
        )
        progress_text = pn.pane.Markdown(
            pn.bind(
                lambda t, b: t if (t or b) else "", session.activity.param.progress_text, session.activity.param.busy
            ),
            name="progress",
            css_classes=["mstgat-progress"],
            sizing_mode="stretch_width",
            height=30,  # the same height idle or busy, so that the map below never jumps
            margin=(0, 10, 8, 10),
            # its text overflowed the sticky bar's box and was drawn over the map scrolled beneath: opaque too
            styles={"background": OPAQUE},
        )
        alert = error_alert(session)
        if session.activity.error:
            alert.object, alert.visible = f"**Error:** {session.activity.error}", True

        # sticky: the status and the progress stay in view while the page scrolls to the plots below the map
        return pn.Column(
            error_toast(alert, session),  # over the bar: the page below does not move when an error shows
            notice_alert(session),
            status,
            pn.Row(progress),
            progress_text,
            sizing_mode="stretch_width",
            css_classes=["mstgat-status-bar"],
            styles={"position": "sticky", "top": "0", "z-index": "10", "background": OPAQUE},
        )


class MapTab(Component):
    """The map with its layer menu and outlines, linked brushing, the region summary and the explanation."""

    def _build(self):
        session, jobs = self.session, self.jobs
        layer_sel = pn.widgets.Select(
            name="Map layer",
            groups=session.selection.layer_groups() or {"": []},
            value=session.selection.layer,
            width=260,
            css_classes=["mstgat-layer"],
        )

        def sync_layer_menu(*events):
            groups = session.selection.layer_groups() or {"": []}
            if groups != layer_sel.groups:
                layer_sel.groups = groups
            if layer_sel.value != session.selection.layer:
                layer_sel.value = session.selection.layer

        session.selection.param.watch(sync_layer_menu, ["version", "layer"])
        layer_sel.param.watch(lambda event: setattr(session.selection, "layer", event.new), "value")
        map_controls = pn.FlexBox(
            layer_sel,
            pn.widgets.Select.from_param(
                session.selection.param.top_share, width=220, css_classes=["mstgat-top-share"]
            ),
            pn.widgets.Checkbox.from_param(session.selection.param.show_zones),
            pn.widgets.Checkbox.from_param(session.selection.param.log_elements, css_classes=["mstgat-log-colours"]),
            pn.widgets.Checkbox.from_param(session.selection.param.show_deposits),
            pn.widgets.Checkbox.from_param(session.selection.param.show_samples),
            pn.widgets.Checkbox.from_param(session.selection.param.show_truth),
            pn.widgets.Checkbox.from_param(session.selection.param.basemap, css_classes=["mstgat-basemap"]),
        )
        zone_readout = pn.pane.Markdown(
            pn.bind(
                lambda share, version, probability: session.selection.zone_readout(),
                session.selection.param.top_share,
                session.selection.param.version,
                session.model.param.probability,
            ),
            css_classes=["mstgat-zone-readout"],
            sizing_mode="stretch_width",
        )
        maps_btn = pn.widgets.Button(name="Compute attention maps", button_type="default")
        attr_btn = pn.widgets.Button(name="Compute attribution maps (slow)", button_type="default")

        async def do_maps(event=None):
            await jobs.run("attention maps", session.compute_maps, heavy=True, progress=True)

        async def do_attr(event=None):
            await jobs.run("attribution maps", session.compute_attributions, heavy=True, progress=True)

        maps_btn.on_click(do_maps)
        attr_btn.on_click(do_attr)
        the_map = map_panel(session, jobs)
        fold_readout = pn.pane.Markdown(
            pn.bind(lambda fold, version: session.evaluation.fold_readout(), session.evaluation.param.fold,
                    session.selection.param.version),
            css_classes=["mstgat-fold-readout"],
            sizing_mode="stretch_width",
        )  # fmt: skip
        # the explanation wraps below the map when the window is too narrow for both (1366 px clipped it)
        map_tab = pn.FlexBox(
            pn.Column(
                map_controls,
                zone_readout,
                pn.Row(maps_btn, attr_btn),
                the_map,
                fold_readout,
                brush_panel(session),
                region_panel(session),
                thresholds_card(session),
                width=720,
            ),
            pn.Column(
                sample_panel(session, jobs),
                explanation_panel(session),
                sizing_mode="stretch_width",
                styles={"flex": "1 1 440px", "min-width": "0"},
            ),
            flex_wrap="wrap",
            align_items="flex-start",
            sizing_mode="stretch_width",
            name="Map & explanation",
        )

        return map_tab


class DataTab(Component):
    """An element's map and distribution, and the correlation of the chosen elements."""

    def _build(self):
        session = self.session

        def element_map(element, version):
            da = session.data.ds[element] if (session.data.ds is not None and element in session.data.ds) else None
            return (
                plots_map.image(da, title=f"{element}")
                * plots_map.deposit_points(
                    session.data.deposits, session.data.ds.rio.crs if session.data.ds is not None else None
                )
            ).opts(
                hv.opts.Image(data_aspect=1, frame_height=420, cmap="viridis", logz=False),
                hv.opts.Overlay(**plots_map.crs_axes(session.data.ds.rio.crs if session.data.ds is not None else None)),
            )

        def hist(element, version):
            return plots_charts.histogram(
                session.data.ds[element] if (session.data.ds is not None and element in session.data.ds) else None
            )

        def import_report(*_):
            report = session.data.reports_markdown()
            if not report:
                return ""
            return (
                "**How the files were read** (no-data codes, below-detection values, units, columns dropped):\n\n"
                + report
            )

        explore_tab = pn.Column(
            pn.Row(
                pn.widgets.Select.from_param(session.selection.param.explore_element, width=200),
                pn.widgets.MultiChoice.from_param(session.data.param.elements, sizing_mode="stretch_width"),
            ),
            pn.pane.Markdown(
                pn.bind(import_report, session.data.param.import_report, session.data.param.site_report),
                css_classes=["mstgat-data-import-report"],
                sizing_mode="stretch_width",
                styles={"font-size": "12px", "overflow-x": "auto"},
            ),
            pn.Row(
                pn.pane.HoloViews(
                    pn.bind(element_map, session.selection.param.explore_element, session.selection.param.version)
                ),
                pn.pane.HoloViews(
                    pn.bind(hist, session.selection.param.explore_element, session.selection.param.version),
                    sizing_mode="stretch_width",
                ),
                sizing_mode="stretch_width",
            ),
            pn.pane.HoloViews(
                pn.bind(
                    lambda els, v: plots_charts.correlation(session.data.ds, list(els)[:60]),
                    session.data.param.elements,
                    session.selection.param.version,
                ),
                sizing_mode="stretch_width",
            ),
            name="Data",
            sizing_mode="stretch_width",
            css_classes=["mstgat-data-tab"],
        )

        return explore_tab


class TrainingTab(Component):
    """The loss (and validation ROC-AUC) per epoch of the last training."""

    def _build(self):
        session = self.session
        train_tab = pn.Column(
            pn.pane.Markdown(
                "### Training\nWith pretraining (the default): the masked-element reconstruction loss per epoch "
                "(no labels); the heads are then fitted in seconds, their settings chosen by cross-validation inside "
                "the deposits (the status line says which). From scratch: loss and validation ROC-AUC (spatially "
                "separated inner split) per epoch; the best epoch's weights are kept."
            ),
            pn.pane.HoloViews(
                pn.bind(plots_charts.training_curves, session.activity.param.history),
                sizing_mode="stretch_width",
                name="training-curves",
            ),
            name="Training",
            sizing_mode="stretch_width",
        )

        return train_tab


class EvaluationTab(Component):
    """Spatial cross-validation from the page, its curves, table, and folds drawn on the map."""

    def _build(self):
        session, jobs = self.session, self.jobs
        cv_btn = pn.widgets.Button(name="Run cross-validation", button_type="primary", css_classes=["mstgat-cv-run"])

        async def do_cv(event=None):
            rep = await jobs.run("cross-validation", session.evaluation.cross_validate, heavy=True, progress=True)
            if rep is not None:
                session.activity.status = "cross-validation done"

        cv_btn.on_click(do_cv)
        eval_tab = pn.Column(
            pn.pane.Markdown(
                "### Spatial cross-validation\nHeld-out folds are spatial blocks separated by a buffer, so a model "
                "cannot score well by memorising the neighbourhood of training deposits. The defaults are small "
                "for interactivity (**3 folds x 1 seed**, short training); use the CLI (`mstgat evaluate`) for the "
                "full protocol (5 folds x 3 seeds)."
            ),
            pn.Row(
                pn.widgets.MultiChoice.from_param(session.evaluation.param.methods, width=420),
                pn.widgets.IntInput.from_param(session.evaluation.param.folds, width=100),
                pn.widgets.IntInput.from_param(session.evaluation.param.seeds, width=100),
                pn.widgets.IntInput.from_param(
                    session.evaluation.param.epochs, width=160, css_classes=["mstgat-cv-epochs"]
                ),
                cv_btn,
            ),
            pn.Row(
                pn.pane.HoloViews(
                    pn.bind(plots_charts.roc_curves, session.evaluation.param.report), sizing_mode="stretch_width"
                ),
                pn.pane.HoloViews(
                    pn.bind(plots_charts.success_curves, session.evaluation.param.report), sizing_mode="stretch_width"
                ),
                sizing_mode="stretch_width",
            ),
            pn.Row(
                pn.widgets.Select.from_param(
                    session.evaluation.param.fold, width=200, css_classes=["mstgat-fold-shown"]
                ),
                pn.pane.Markdown(
                    "The chosen fold is drawn on the map (Map tab): its test region dashed, the deposit cells it "
                    "held out as magenta squares, those it trained on as green dots, those the buffer dropped as "
                    "grey crosses."
                ),
            ),
            pn.pane.DataFrame(
                pn.bind(lambda r: session.evaluation.table(), session.evaluation.param.report),
                float_format="{:.3f}".format,
                sizing_mode="stretch_width",
                name="cv-table",
            ),
            model_curves_panel(session),
            name="Evaluation",
            sizing_mode="stretch_width",
        )

        return eval_tab


class LearnTab(Component):
    """The exercise that checks a student's answers (at the top), then the teaching notes: what the model
    does and how to read its explanations."""

    def _build(self):
        curves = plots_charts.faithfulness_curves(faithfulness_report())
        return pn.Column(
            exercise_card(self.session, self.jobs),
            pn.pane.Markdown(learn_text(), sizing_mode="stretch_width"),
            *([] if curves is None else [pn.pane.HoloViews(curves, css_classes=["mstgat-faithfulness"])]),
            name="Learn",
            sizing_mode="stretch_width",
            max_width=900,
        )
