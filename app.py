"""MSTGAT Explorer dashboard: ``panel serve app.py``."""

from mstgat_core.dashboard import create_app

create_app().servable(title="MSTGAT Explorer")
