"""MSTGAT Explorer as a script for ``panel serve``, from an installed package::

    panel serve $(python -c "import mstgat_core.dashboard.app as a; print(a.__file__)")

Panel runs this file once per browser session (as a fresh module): each run builds that session's page
with :func:`main`. Imported under its own name (as above, for its path) it builds nothing. The checkout's
``app.py`` calls :func:`main` the same way.
"""

from mstgat_core.dashboard.views import create_app

TITLE = "MSTGAT Explorer"


def main():
    """Build this browser session's page and hand it to the Panel server."""
    return create_app().servable(title=TITLE)


if __name__ != "mstgat_core.dashboard.app":  # run by ``panel serve``, not imported
    main()
