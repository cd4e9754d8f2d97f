"""Panel dashboard of MSTGAT Explorer (the only Panel/HoloViews code of the package).

* :mod:`.app` - the page as a script for ``panel serve`` (the checkout's ``app.py`` runs it too);
* :mod:`.views` - :func:`~.views.create_app`, one browser session's page, laid out from
* :mod:`.components` - the ``Viewer`` components (data, model and export cards, status bar, map, data,
  training, evaluation and learn tabs), built from :mod:`.map_view` (the linked map, brushing, region
  summary), :mod:`.explain_view` (the clicked cell's explanation) and :mod:`.panes`;
* :mod:`.plots_map`, :mod:`.plots_explain`, :mod:`.plots_charts` - HoloViews figures of the map, of an
  explanation, and the charts beside them (data, brushing, training, evaluation);
* :mod:`.state` - the Panel-free :class:`~.state.Session` of one user, made of the parts
  :mod:`.state_data`, :mod:`.state_model`, :mod:`.state_explain`, :mod:`.state_selection` and
  :mod:`.state_evaluation`, with :mod:`.exports` for its downloads;
* :mod:`.activity` - what a session is doing and says (status, progress, errors, Cancel);
* :mod:`.jobs` - a session's long work off the event loop;
* :mod:`.server` - what every session of a server shares: heavy-job slots, folders, threads, tiles;
* :mod:`.learn` - teaching text.
"""
