"""Kept (named) selections beside linked brushing: a name and a button keep the current pick in its own
colour; a list of the kept ones (swatch, name, cell count, a remove button) and their cells as CSV."""

from __future__ import annotations

import html

import panel as pn

from .exports import export_kept_selections
from .state import Session


def kept_selections_panel(session: Session) -> pn.Column:
    """Keep the current pick under a name; list, remove and download the kept selections."""
    name = pn.widgets.TextInput(placeholder="a name, e.g. Au-As trend", width=220, css_classes=["mstgat-keep-name"])
    keep = pn.widgets.Button(name="Keep this selection as...", button_type="light", css_classes=["mstgat-keep"])

    def keep_it(event=None):
        try:
            kept = session.selection.keep_selection(name.value)
        except Exception as exc:  # a one-line error in the page, never a traceback
            session.activity.fail(exc)
            return
        name.value = ""
        session.activity.status = f"kept {kept.count:,} cells as '{kept.name}'"

    keep.on_click(keep_it)

    def remove(selection_name):
        def callback(event):
            try:
                session.selection.remove_kept(selection_name)
            except Exception as exc:
                session.activity.fail(exc)

        return callback

    def listing(kept):
        if not kept:
            return pn.pane.Markdown(
                "No kept selection: pick cells, name them and press 'Keep this selection as...'.",
                css_classes=["mstgat-kept-none"],
            )
        rows = []
        for selection in kept:
            swatch = pn.pane.HTML(
                f'<span style="display:inline-block;width:14px;height:14px;background:{selection.colour};'
                f'opacity:0.7;border:1px solid {selection.colour}"></span> '
                f"{html.escape(selection.name)}: {selection.count:,} cells",
                css_classes=["mstgat-kept-selection"],
                margin=(8, 5),
            )
            button = pn.widgets.Button(name="Remove", button_type="light", width=80, css_classes=["mstgat-kept-remove"])
            button.on_click(remove(selection.name))
            rows.append(pn.Row(swatch, button))
        return pn.Column(*rows)

    def download():
        try:
            return export_kept_selections(session)
        except Exception as exc:
            session.activity.fail(exc)
            return None

    csv = pn.widgets.FileDownload(
        callback=download,
        filename="mstgat_kept_selections.csv",
        label="Kept selections as CSV",
        button_type="light",
        css_classes=["mstgat-kept-csv"],
    )
    return pn.Column(
        pn.Row(name, keep, csv),
        pn.panel(pn.bind(listing, session.selection.param.kept)),
        css_classes=["mstgat-kept-selections"],
        sizing_mode="stretch_width",
    )
