"""Small Panel pieces shared by the dashboard's views."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable

import panel as pn

from .state import Session


@contextlib.contextmanager
def updating_together():
    """Update many plots as one change: Bokeh walks the session's ~900 models after each plot's update
    unless the document is frozen (a click's ten updates took 2.7 s, 1.1 s frozen), and Panel sends one
    message instead of ten."""
    doc = pn.state.curdoc
    with pn.io.hold(), doc.models.freeze() if doc is not None else contextlib.nullcontext():
        yield


_WAITING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # document -> [(column, build)]


def after_page_drawn(build: Callable[[], pn.viewable.Viewable], **layout) -> pn.Column:
    """A column that ``build()`` fills once the browser has drawn the page (the map first), like Panel's
    ``defer_load``; but all such columns of a page are filled in one document update, where each deferred
    pane cost Bokeh a walk of the session's ~900 models. Outside a served page it is filled at once."""
    column = pn.Column(**layout)
    doc = pn.state.curdoc
    if doc is None or pn.state.loaded:
        column.append(build())
        return column
    if doc not in _WAITING:
        _WAITING[doc] = []
        pn.state.onload(_fill)  # run with this document as ``pn.state.curdoc``
    _WAITING[doc].append((column, build))
    column.loading = True
    return column


def _fill() -> None:
    with updating_together():
        for column, build in _WAITING.pop(pn.state.curdoc, []):
            column.objects = [build()]
            column.loading = False


def pane(obj, css_class: str | None = None, stretch: bool = True) -> pn.pane.HoloViews:
    """A HoloViews pane whose axes are its own (Panel links axes of shared dimensions by default), as wide as
    its container for a responsive plot (``stretch``), or as its fixed-size plot."""
    return pn.pane.HoloViews(
        obj,
        linked_axes=False,
        css_classes=[css_class] if css_class else [],
        sizing_mode="stretch_width" if stretch else None,
    )


def error_alert(session: Session) -> pn.pane.Alert:
    """The session's last error as a red alert, hidden while there is none."""
    alert = pn.pane.Alert(
        "", alert_type="danger", visible=False, name="error", css_classes=["mstgat-error"], sizing_mode="stretch_width"
    )

    def show(event=None):
        alert.object = f"**Error:** {session.activity.error}" if session.activity.error else ""
        alert.visible = bool(session.activity.error)

    session.activity.param.watch(show, "error")
    return alert


# over the top of the sticky status bar, out of the page's flow: an error no longer pushes the map (and the
# spot the user was about to click) down by the alert's height; the bar is sticky, so the error stays in view
ERROR_TOAST = {
    "position": "absolute",
    "top": "4px",
    "left": "0",
    "right": "0",
    "z-index": "30",
    "max-height": "140px",
    "overflow-y": "auto",
    "background": "var(--background-color, white)",
    "box-shadow": "0 2px 8px rgba(0, 0, 0, 0.25)",
    "border-radius": "4px",
}


def error_toast(alert: pn.pane.Alert, session: Session) -> pn.Row:
    """``alert`` (:func:`error_alert`) with a close button that dismisses the error, laid over the status bar
    (to be placed in it) instead of above the page's content; shown while the alert is."""
    close = pn.widgets.Button(
        name="\u2715", button_type="light", width=40, margin=(10, 8), css_classes=["mstgat-error-close"]
    )
    close.on_click(lambda event: setattr(session.activity, "error", ""))
    toast = pn.Row(alert, close, visible=alert.visible, sizing_mode="stretch_width", css_classes=["mstgat-error-toast"])
    toast.styles = ERROR_TOAST
    alert.param.watch(lambda event: setattr(toast, "visible", event.new), "visible")
    return toast


def notice_alert(session: Session) -> pn.pane.Alert:
    """The session's notice (what changed without going wrong) as a neutral alert, hidden while there is none."""
    alert = pn.pane.Alert(
        "", alert_type="info", visible=False, css_classes=["mstgat-notice"], sizing_mode="stretch_width"
    )

    def show(event=None):
        alert.object, alert.visible = session.activity.notice, bool(session.activity.notice)

    session.activity.param.watch(show, "notice")
    show()
    return alert


def upload_alert(css_class: str) -> pn.pane.Alert:
    """A red alert shown beside a file dropper when its upload failed (hidden otherwise): the dropper says
    "Upload complete" once the bytes arrive, and the page's error bar is at the top, out of view."""
    return pn.pane.Alert(
        "", alert_type="danger", visible=False, css_classes=[css_class], sizing_mode="stretch_width", margin=(0, 10)
    )


def report_upload(alert: pn.pane.Alert, session: Session) -> None:
    """Show the session's error (the upload's, if it failed) in ``alert`` beside the dropper, or hide it."""
    error = session.activity.error
    alert.object = f"**Not loaded:** {error}" if error else ""
    alert.visible = bool(error)
