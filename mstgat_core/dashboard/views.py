"""The dashboard of one browser session: :func:`create_app` lays out the components of
:mod:`.components` over a fresh :class:`~.state.Session`.

Everything is created inside :func:`create_app`, which Panel calls once per browser session, so no
widget, stream or state object is shared between users; what does not depend on the session (the
demo grid, its checkpoint and prediction) is cached per process.
"""

from __future__ import annotations

import os
import time

import holoviews as hv
import panel as pn

from ..paths import DEMO_DEPOSITS, DEMO_GRID
from ..training.demo import load_demo_cached
from .components import (
    DataCard,
    DataTab,
    EvaluationTab,
    ExportCard,
    LearnTab,
    MapTab,
    ModelCard,
    StatusBar,
    TrainingTab,
    built_when_shown,
)
from .explain_view import explanation_panel, explanation_plots, sample_markdown, sample_panel
from .jobs import Jobs
from .map_view import brush_panel, map_panel, map_view, region_panel
from .server import remove_stale_session_folders
from .state import Session
from .state_data import DEMO_LABEL

hv.extension("bokeh", logo=False)
# Canvas, not WebGL: every large layer reaches the browser as one resampled image (datashader), so WebGL
# gains nothing here, and without a GPU (remote desktops, virtual machines, headless chromium) the browser
# emulates it in software and copies every WebGL canvas back to the page: 20-140 ms per plot redraw.
hv.renderer("bokeh").webgl = os.environ.get("MSTGAT_WEBGL", "0") == "1"

cached_demo = pn.cache(load_demo_cached)  # keyed on the two path strings

__all__ = [
    "Jobs",
    "brush_panel",
    "create_app",
    "explanation_panel",
    "explanation_plots",
    "map_panel",
    "map_view",
    "region_panel",
    "sample_markdown",
    "sample_panel",
]

_STALE_FOLDERS_CLEANED = False


class OfflineFast(pn.theme.Fast):
    """Panel's Fast design without its web font: it linked Open Sans from Google Fonts on every page load,
    which fails offline (the dashboard needs no internet); the page uses the system's sans-serif font."""

    _resources = {kind: urls for kind, urls in pn.theme.Fast._resources.items() if kind != "font"}


OfflineFast.__name__ = "Fast"  # Panel finds a design's bundled files by its class name: those of Fast


def demo_session() -> Session:
    """A session on the South China demo with the bundled model (errors shown, never raised)."""
    session = Session()
    t_start = time.perf_counter()
    try:
        ds, deposits = cached_demo(str(DEMO_GRID), str(DEMO_DEPOSITS))
        session.set_data(ds, deposits, DEMO_LABEL)
        session.use_demo_model()
        session.activity.status = f"loaded {session.data.label}" + (
            f" with {session.model.label}" if session.model.fitted else " - no model yet: train one in the Model tab"
        )
    except Exception as exc:
        session.activity.fail(exc)
    session.activity.status += f" ({time.perf_counter() - t_start:.1f} s)"
    return session


def create_app():
    """Build one session's dashboard (called by Panel for every browser session)."""
    global _STALE_FOLDERS_CLEANED
    if not _STALE_FOLDERS_CLEANED:  # once per server process: folders left by a server that died
        remove_stale_session_folders()
        _STALE_FOLDERS_CLEANED = True
    session = demo_session()
    jobs = Jobs(session)
    tabs = pn.Tabs(
        MapTab(session, jobs, name="Map & explanation"),
        built_when_shown(DataTab, session, jobs, name="Data"),
        built_when_shown(TrainingTab, session, jobs, name="Training"),
        built_when_shown(EvaluationTab, session, jobs, name="Evaluation"),
        built_when_shown(LearnTab, session, jobs, name="Learn"),
        dynamic=True,  # only the open tab is rendered: a new session renders only the map
        sizing_mode="stretch_width",
    )
    template = pn.template.FastListTemplate(
        title="MSTGAT Explorer",
        sidebar=[DataCard(session, jobs), ModelCard(session, jobs), ExportCard(session)],
        main=[pn.Column(StatusBar(session), tabs, sizing_mode="stretch_width")],
        sidebar_width=340,
        accent="#3b6ea5",
        design=OfflineFast,
        # the card around the main column clipped its overflow: the sticky status bar stuck to it, not to the
        # page that scrolls (#main), and scrolled out of view
        # and an element scrolled into view (a link, a test, the screenshots) lands below the sticky status bar,
        # not under it
        raw_css=["#main fast-card.pn-wrapper { overflow: visible; }", "#main { scroll-padding-top: 170px; }"],
        font="system-ui, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif",
    )
    pn.state.on_session_destroyed(lambda ctx: session.cleanup())
    template.session = session  # handy for tests / notebooks
    return template
