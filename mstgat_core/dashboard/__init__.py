"""Panel dashboard of MSTGAT Explorer (the only Panel/HoloViews code besides ``app.py``).

* :mod:`.state` - Panel-free per-session state (param) calling the library;
* :mod:`.plots` - HoloViews figures from xarray/pandas;
* :mod:`.views` - :func:`create_app`, the per-session layout of
* :mod:`.components` - the ``Viewer`` components (data, model and export cards, status bar,
  map, data, training, evaluation and learn tabs), built from
* :mod:`.map_view` (the linked map, brushing, region summary), :mod:`.explain_view` (the
  clicked cell's explanation), :mod:`.jobs` (long work off the event loop) and :mod:`.panes`;
* :mod:`.learn` - teaching text;
* :mod:`.browser` - serve the dashboard and drive it in a browser (playwright), for the
  browser tests and ``scripts/screenshots.py``; imports no Panel.
"""


def create_app():
    from .views import create_app as _create

    return _create()


__all__ = ["create_app"]
