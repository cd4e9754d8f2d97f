"""Server cost of one new browser session, in-process: a figure, never a test.

Does what ``panel serve`` does for each session, without a browser: :func:`~mstgat_core.dashboard.views.create_app`
in a fresh Bokeh document, the template's ``server_doc`` (the page's Bokeh models), then the document's
on-load callbacks (the ``defer_load`` panes, built once the browser has drawn the page). The first session
pays for the per-process caches (demo grid, prediction, torch's first pass) and is reported apart.

Run: ``.venv/bin/python benchmarks/session_cost.py --sessions 5 [--json out.json] [--panes]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import panel as pn
from bokeh.document import Document
from panel.io.state import set_curdoc

from mstgat_core.dashboard.views import create_app


def one_session() -> dict:
    """Seconds of each step of one new session, and the Bokeh models its document holds."""
    doc = Document()
    pn.state._loaded[doc] = False  # as in a served session: ``defer_load`` panes wait for the browser
    with set_curdoc(doc):
        t0 = time.perf_counter()
        template = create_app()
        t1 = time.perf_counter()
        template.server_doc(doc)
        t2 = time.perf_counter()
        models_initial = len(list(doc.models))
        pn.state._on_load(doc)  # what Panel runs once the browser has drawn the page
        t3 = time.perf_counter()
    return {
        "create_app_s": t1 - t0,
        "server_doc_s": t2 - t1,
        "onload_s": t3 - t2,
        "total_s": t3 - t0,
        "models_initial": models_initial,
        "models": len(list(doc.models)),
    }


def _describe(obj) -> str:
    """What a HoloViews pane shows: the function behind its DynamicMap, or the element's type."""
    callback = getattr(getattr(obj, "callback", None), "callable", None)
    name = getattr(callback, "__qualname__", None) or repr(callback)
    return f"{type(obj).__name__} {name}" if callback is not None else type(obj).__name__


def pane_timings() -> list[tuple[float, str]]:
    """Seconds per HoloViews pane rendered by one session (the biggest first)."""
    from panel.pane import HoloViews

    seen: list[tuple[float, str]] = []
    original = HoloViews._get_model

    def timed(self, *args, **kwargs):
        t0 = time.perf_counter()
        model = original(self, *args, **kwargs)
        seen.append((time.perf_counter() - t0, _describe(self.object)))
        return model

    HoloViews._get_model = timed
    try:
        one_session()
    finally:
        HoloViews._get_model = original
    return sorted(seen, reverse=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5, help="sessions measured after the first")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--panes", action="store_true", help="also list the HoloViews panes of one session")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of the empty explanation plots
    t0 = time.perf_counter()
    first = one_session()
    first["process_s"] = time.perf_counter() - t0
    later = [one_session() for _ in range(args.sessions)]
    result = {
        "first": first,
        "later": later,
        "median": {key: statistics.median(s[key] for s in later) for key in later[0]},
    }
    print(json.dumps(result["median"], indent=1))
    if args.panes:
        for seconds, what in pane_timings():
            print(f"{seconds:6.3f} s  {what}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
