"""What a new browser session builds and computes (issue 29): counts, never timings (those are in
``benchmarks/session_cost.py``)."""

from __future__ import annotations

import warnings

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # all-NaN slices of the empty explanation


@pytest.fixture
def served():
    """``serve(build)``: the page ``build()`` makes, laid out in a fresh Bokeh document as ``panel serve``
    does, before the browser has drawn it (``defer_load`` work waits); ``(page, document)``."""
    import panel as pn
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    made = []

    def serve(build):
        doc = Document()
        pn.state._loaded[doc] = False
        with set_curdoc(doc):
            page = build()
            page.server_doc(doc) if hasattr(page, "server_doc") else page.get_root(doc)
        made.append(page)
        return page, doc

    yield serve
    for page in made:
        if hasattr(page, "session"):
            page.session.cleanup()


def page_loaded(doc):
    """Run what Panel runs once the browser has drawn the page."""
    import panel as pn
    from panel.io.state import set_curdoc

    with set_curdoc(doc), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pn.state._on_load(doc)


def test_a_second_session_neither_predicts_nor_reads_the_demo_again(served, monkeypatch):
    from mstgat_core.dashboard.views import create_app
    from mstgat_core.training import checkpoint, demo
    from mstgat_core.training.pipeline import FittedModel

    served(create_app)  # the first session fills the process's caches (if no test did before)
    calls = []
    for module, name in [(demo, "read_demo_layers"), (checkpoint, "load_checkpoint"), (demo.mio, "load_grid")]:
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    predict = FittedModel.predict_layers
    monkeypatch.setattr(
        FittedModel, "predict_layers", lambda *a, **k: calls.append("predict_layers") or predict(*a, **k)
    )
    page, _ = served(create_app)
    assert page.session.model.layers is not None and page.session.selection.layer == "probability"
    assert calls == []


def test_hidden_tabs_are_built_when_first_shown(served, monkeypatch):
    from bokeh.document import Document

    from mstgat_core.dashboard import components
    from mstgat_core.dashboard.views import create_app

    built = []
    for cls in [components.DataTab, components.TrainingTab, components.EvaluationTab, components.LearnTab]:
        build = cls._build
        monkeypatch.setattr(cls, "_build", lambda self, _f=build: built.append(type(self).__name__) or _f(self))
    page, doc = served(create_app)
    page_loaded(doc)
    assert built == []
    tabs = page.main[0][1]
    assert tabs._names == ["Map & explanation", "Data", "Training", "Evaluation", "Learn"]
    tabs.active = 1  # the Data tab opened
    tabs.get_root(Document())
    assert built == ["DataTab"]
    assert isinstance(tabs[1].built[0], components.DataTab)
    tabs.get_root(Document())  # drawn again: not built again
    assert built == ["DataTab"]


def test_the_views_below_the_map_are_built_once_the_page_is_drawn_in_one_document_update(served, monkeypatch):
    from bokeh.document.models import DocumentModelManager

    from mstgat_core.dashboard import explain_view
    from mstgat_core.dashboard.views import create_app

    plots = []
    explanation_plots = explain_view.explanation_plots
    monkeypatch.setattr(explain_view, "explanation_plots", lambda *a: plots.append(1) or explanation_plots(*a))
    page, doc = served(create_app)
    assert plots == []
    recomputes = []
    recompute = DocumentModelManager.recompute
    monkeypatch.setattr(DocumentModelManager, "recompute", lambda self: recomputes.append(1) or recompute(self))
    page_loaded(doc)
    assert plots == [1]
    assert len(recomputes) == 1  # each deferred view walked the document's ~900 models again


def test_the_map_is_resampled_to_its_drawn_extent_once(served, monkeypatch):
    import holoviews as hv

    from mstgat_core.dashboard.jobs import Jobs
    from mstgat_core.dashboard.map_view import map_view
    from mstgat_core.dashboard.views import demo_session

    session = demo_session()
    try:
        refreshes = []
        trigger = hv.streams.Stream.trigger
        monkeypatch.setattr(
            hv.streams.Stream, "trigger", staticmethod(lambda streams: refreshes.append(streams) or trigger(streams))
        )
        served(lambda: map_view(session, Jobs(session)))
        assert len(refreshes) == 1  # the image's and the unsupported ground's resampling share one view
    finally:
        session.cleanup()
