"""The clicked cell's explanation (and a scored sample's): header, attention, composition, attribution,
neighbour weights per scale; plots built once per model and updated in place on each click."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
from bokeh.models.widgets.tables import NumberFormatter

from . import plots_explain
from .exports import export_sample_scores
from .panes import after_page_drawn, pane
from .state import Session


def explanation_panel(session: Session):
    """The clicked cell's explanation: its header, the attention menus and the plots of the current model."""

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
            lines.append(uncertainty_line(a))
        if "nearest_sample" in a:
            far = a["nearest_sample"] > a["median_spacing"]
            lines.append(
                f"Gridded from samples by IDW: the nearest sample is {a['nearest_sample']:,.0f} {a['spacing_units']} "
                f"away (median sample spacing {a['median_spacing']:,.0f})"
                + (" — interpolated between samples, not measured here: read with care." if far else ".")
            )
        if "novelty" in a:
            unlike = " — unlike the training grid: read with care" if a["novelty"] > 1 else ""
            lines.append(f"Novelty {a['novelty']:.2f} (1 = the training grid's 99.5th percentile){unlike}.")
        return "\n\n".join(lines)

    head = pn.pane.Markdown(
        pn.bind(header, session.explanation.param.cell, session.model.param.fitted, session.activity.param.busy),
        name="explanation-header",
        css_classes=["mstgat-explain-header"],
        sizing_mode="stretch_width",
    )
    controls = pn.Row(
        pn.widgets.Select.from_param(session.explanation.param.att_layer, width=140),
        pn.widgets.Select.from_param(session.explanation.param.att_head, width=140),
        pn.widgets.Select.from_param(session.explanation.param.gat_head, width=140),
    )
    return pn.Column(
        head,
        controls,
        # built once the page (and the map) is drawn
        after_page_drawn(
            lambda: pn.panel(
                pn.bind(explanation_plots, session, session.model.param.fitted), sizing_mode="stretch_width"
            ),
            sizing_mode="stretch_width",
        ),
        sizing_mode="stretch_width",
        css_classes=["mstgat-explanation"],
    )


def uncertainty_line(attrs: dict) -> str:
    """The click header's line on the members' spread; an exact 0 is said as such."""
    if attrs["uncertainty"] == 0:
        return (
            "Uncertainty: none measured here. The members agree exactly (the heads' resamples of the deposits "
            "or, on the label-free route, the element groupings the score hides), so their spread says nothing "
            "about this cell."
        )
    return (
        f"Uncertainty: the ensemble members' scores spread by {attrs['uncertainty']:.3f} (sd); "
        f"{attrs.get('top_agreement', float('nan')):.0%} of them put the cell in their top 5 %."
    )


def explanation_plots(session: Session, fitted) -> pn.Column:
    """The explanation's plots for one model. Built again only when the model changes: each is a
    DynamicMap of one fixed element type, so a click updates their data in place instead of replacing
    eight Bokeh figures (which took seconds in the browser)."""
    explanation = session.explanation.param.cell
    n_elements = len(fitted.elements) if fitted is not None else 0
    elements = fitted.elements if fitted is not None else []
    bars = hv.DynamicMap(
        pn.bind(
            plots_explain.cls_bars,
            explanation,
            session.explanation.param.att_layer,
            session.explanation.param.att_head,
            elements=elements,
        )
    )
    ig = hv.DynamicMap(pn.bind(plots_explain.attribution_bars, explanation, elements=elements))
    heat = hv.DynamicMap(
        pn.bind(
            plots_explain.attention_heatmap,
            explanation,
            session.explanation.param.att_layer,
            session.explanation.param.att_head,
            elements=elements,
        )
    )
    framewise = hv.opts.Overlay(framewise=True)
    composition = hv.DynamicMap(pn.bind(plots_explain.composition_bars, explanation, elements=elements))
    tall = hv.opts.Overlay(height=plots_explain.bar_height(n_elements))
    column = [
        pane(bars.opts(framewise, tall), "mstgat-attention-bars"),
        pane(composition.opts(framewise, tall), "mstgat-composition-bars"),  # the chemistry under the attention
        pane(ig.opts(framewise, hv.opts.Overlay(height=plots_explain.bar_height(plots_explain.TOP))), "mstgat-ig-bars"),
    ]
    if fitted is not None and fitted.config.uses_spatial:
        radii = list(fitted.config.scales)
        images = [
            hv.DynamicMap(
                pn.bind(
                    plots_explain.neighbour_image,
                    explanation,
                    session.explanation.param.gat_head,
                    radius,
                    last=i == len(radii) - 1,
                )
            )
            for i, radius in enumerate(radii)
        ]
        scales = hv.DynamicMap(pn.bind(plots_explain.scale_bars, explanation, scales=radii)).opts(framewise=True)
        column += [
            pn.pane.Markdown(
                "**GAT neighbour weights into the cell (last GAT layer, one heatmap per scale; grey = no edge)**"
            ),
            # the scale weights below the heatmaps: beside them they were cut off at 1600 px, and in a
            # wrapping FlexBox the fixed-size heatmaps collapsed to 0 px
            pn.GridBox(*[pane(image, stretch=False) for image in images], ncols=2, css_classes=["mstgat-neighbours"]),
            pane(scales, stretch=False),
        ]
    column.append(pane(heat.opts(framewise=True)))
    return pn.Column(*column, sizing_mode="stretch_width")


def sample_markdown(exp: dict | None) -> str:
    """A scored sample's explanation as text a geochemist reads: its name and place, score, leading elements,
    neighbours (by name)."""
    if not exp:
        return ""
    name = exp.get("name", exp["sample"])
    place = f"x = {exp['x']:.0f}, y = {exp['y']:.0f}"
    if np.isfinite(exp.get("lon", np.nan)):
        place = f"lon {exp['lon']:.5f}, lat {exp['lat']:.5f} ({place} in the map's CRS)"
    lines = [
        f"### Sample {name} · label-free score {exp['anomaly_score']:.3f} (percentile {exp['percentile']:.1f})",
        f"{place}. Elements furthest from what the sample's other elements and its "
        "neighbours predict (+ richer, - poorer): "
        + ", ".join(f"{e}{'+' if exp['residuals'][e] >= 0 else '-'}" for e in list(exp["contributions"].index[:5])),
    ]
    attention = sorted(exp["element_attention"].items(), key=lambda kv: -kv[1])[:5]
    lines.append("[CLS] attention (last layer): " + ", ".join(f"{e} {w:.2f}" for e, w in attention))
    for i, (scale, reach) in enumerate(zip(exp["neighbours"], exp["reach"]), start=1):
        names = scale.get("name", scale["sample"])
        top = sorted(zip(scale["weight"][1:], names[1:], scale["distance"][1:]), reverse=True)[:3]
        lines.append(
            f"Scale {i} (median reach {reach:,.0f} m): self-weight {scale['weight'][0]:.2f}; strongest neighbours "
            + ", ".join(f"sample {s} at {d:,.0f} m ({w:.2f})" for w, s, d in top)
        )
    lines.append("Scale weights: " + ", ".join(f"{w:.2f}" for w in exp["scale_weights"]))
    return "\n\n".join(lines)


class RankedTable(pn.widgets.Tabulator):
    """A Tabulator whose new Bokeh model selects the selected row on the page it shows: Panel (1.9) gives a new
    model the selection's rows in the whole table, and with remote pagination row 42 of the table is row 2 of
    page 5 (an update is sent right, only the first drawing was not)."""

    def _get_properties(self, doc=None) -> dict:
        properties = super()._get_properties(doc)
        if self.pagination == "remote" and self.value is not None and self.selection:
            start = (self.page - 1) * self.page_size
            view = self.current_view.index
            labels = set(self.value.index[list(self.selection)])
            properties["source"].selected.indices = [
                i - start for i in range(start, min(start + self.page_size, len(view))) if view[i] in labels
            ]
        return properties


def sample_panel(session: Session, jobs=None):
    """A point survey's scored samples: the clicked sample's explanation (text and contribution bars), the
    samples ranked by score, linked both ways with the map (a row selected explains that sample and rings it on
    the map; a sample clicked on the map is selected in the table, on its page) and the scores as CSV or
    GeoPackage. Shown for point surveys only."""
    text = pn.pane.Markdown(
        pn.bind(sample_markdown, session.explanation.param.sample),
        css_classes=["mstgat-sample-explanation"],
        sizing_mode="stretch_width",
    )

    def contributions(samples):  # built again for new samples: their elements are the bars' categories
        elements = samples.elements if samples is not None else []
        bars = hv.DynamicMap(
            pn.bind(plots_explain.contribution_bars, session.explanation.param.sample, elements=elements)
        )
        return pane(bars.opts(framewise=True))

    bars = after_page_drawn(lambda: pn.panel(pn.bind(contributions, session.data.param.samples)))
    ranked = RankedTable(
        session.model.ranked_samples(),
        pagination="remote",
        page_size=10,
        disabled=True,
        selectable=1,
        show_index=False,
        formatters={
            "lon": NumberFormatter(format="0.00000"),
            "lat": NumberFormatter(format="0.00000"),
            "score": NumberFormatter(format="0.000"),
            "percentile": NumberFormatter(format="0.0"),
        },
        sizing_mode="stretch_width",
        css_classes=["mstgat-sample-ranking"],
    )

    syncing = {"now": False}  # a guard: the table's selection set from the map is not a click on a row

    def row_of(sample: dict | None) -> int | None:
        """The sample's position in the ranked table (None: no sample, or not in the table)."""
        if not sample:
            return None
        hits = np.flatnonzero(ranked.value.index.to_numpy() == int(sample["sample"]))
        return int(hits[0]) if hits.size else None

    def select_the_row(*events):  # the map's clicked sample selected in the table, on its page
        row = row_of(session.explanation.sample)
        wanted = [] if row is None else [row]
        if list(ranked.selection) == wanted:
            return
        syncing["now"] = True
        try:
            if row is not None:  # the page first: the selection is sent to the page shown
                shown = ranked.current_view.index.get_loc(ranked.value.index[row])  # sorted in the page or not
                ranked.page = int(shown) // ranked.page_size + 1
            ranked.selection = wanted
        finally:
            syncing["now"] = False

    def refresh_ranking(*events):
        syncing["now"] = True
        try:
            ranked.value = session.model.ranked_samples()
            ranked.selection = []
        finally:
            syncing["now"] = False
        select_the_row()

    session.selection.param.watch(refresh_ranking, "version")  # bumped when the samples are scored
    session.explanation.param.watch(select_the_row, "sample")  # a sample clicked on the map, or a row picked

    async def pick(*events):  # a row selected: its sample explained and ringed on the map
        if jobs is None or syncing["now"] or not ranked.selection:
            return
        index = int(ranked.value.index[ranked.selection[0]])
        current = session.explanation.sample
        if current is not None and int(current["sample"]) == index:
            return  # already the explained sample: no second explanation
        sample = await jobs.run("explaining the sample", session.explanation.explain_sample, index)
        if sample is not None:
            session.explanation.sample = sample
            session.activity.status = f"explained sample {sample['name']} (percentile {sample['percentile']:.1f})"

    ranked.param.watch(pick, "selection")
    select_the_row()

    def download(fmt):
        def callback():
            try:
                return export_sample_scores(session, fmt)
            except Exception as exc:
                session.activity.fail(exc)
                return None

        return pn.widgets.FileDownload(
            callback=callback,
            filename=f"mstgat_sample_scores.{fmt}",
            label=f"Sample scores as {fmt.upper()}",
            button_type="light",
            css_classes=[f"mstgat-sample-scores-{fmt}"],
        )

    scored = pn.Column(
        pn.pane.Markdown(
            "**Samples ranked by label-free score** (click a row to explain the sample and ring it on the map; "
            "a sample clicked on the map is selected here):"
        ),
        ranked,
        pn.Row(download("csv"), download("gpkg")),
        sizing_mode="stretch_width",
        visible=pn.bind(lambda version: session.model.point_scores is not None, session.selection.param.version),
    )
    return pn.Column(
        text,
        bars,
        scored,
        sizing_mode="stretch_width",
        visible=pn.bind(lambda s: s is not None, session.data.param.samples),
    )
