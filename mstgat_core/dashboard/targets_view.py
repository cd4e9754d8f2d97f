"""The map tab's Thresholds card (the current layer's thresholds and its target zones as a GeoPackage) and the
Evaluation tab's P-A plot and success-rate curve of the current model, as Panel objects over one session."""

from __future__ import annotations

import panel as pn

from . import plots_thresholds
from .state import Session
from .targets import ZONES_FILE, export_target_zones, model_curves, thresholds_markdown


def thresholds_card(session: Session) -> pn.Card:
    """The Thresholds card: computed only while it is open (a mixture fit per layer change otherwise)."""
    card = pn.Card(title="Thresholds", collapsed=True, sizing_mode="stretch_width", css_classes=["mstgat-thresholds"])

    def text(layer, version, probability, collapsed):
        return "" if collapsed else thresholds_markdown(session)

    def zones():
        try:
            return export_target_zones(session)
        except Exception as exc:
            session.activity.fail(exc)
            return None

    card.extend(
        [
            pn.pane.Markdown(
                pn.bind(
                    text,
                    session.selection.param.layer,
                    session.selection.param.version,
                    session.model.param.probability,
                    card.param.collapsed,
                ),
                sizing_mode="stretch_width",
                name="thresholds",
            ),
            pn.pane.Markdown(
                "C-A: the log-log plot of the area at or above each value, fitted by straight segments (least "
                "squares); a breakpoint separates two populations. Target zones: the outlined top share of this "
                "layer as polygons, with area, maximum, leading elements and deposits.",
                styles={"font-size": "11px"},
            ),
            pn.widgets.FileDownload(
                callback=zones, filename=ZONES_FILE, label="Target zones (GeoPackage)", button_type="light"
            ),
        ]
    )
    return card


def model_curves_panel(session: Session) -> pn.Column:
    """The P-A plot and the success-rate curve of the current model against the loaded deposits."""

    def plots(probability, deposits):
        curves = model_curves(session)
        pa, success = curves if curves is not None else (None, None)
        return pn.Row(
            pn.pane.HoloViews(plots_thresholds.prediction_area_plot(pa), sizing_mode="stretch_width"),
            pn.pane.HoloViews(plots_thresholds.success_rate_plot(success), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    return pn.Column(
        pn.pane.Markdown(
            "### The current model against the loaded deposits\nOn measured ground only. A model fitted on these "
            "deposits scores them in-sample: these curves are optimistic; the cross-validated curves above are "
            "the honest measure."
        ),
        pn.panel(pn.bind(plots, session.model.param.probability, session.data.param.deposit_mask)),
        sizing_mode="stretch_width",
        name="model-curves",
    )
