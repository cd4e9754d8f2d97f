"""MSTGAT Explorer dashboard: ``panel serve app.py`` (Panel runs this file once per browser session).

The page is built by :mod:`mstgat_core.dashboard.app`, which an installed package serves the same way.
"""

from mstgat_core.dashboard.app import main

main()
