"""Where the bundled demo files and the shared real datasets live (one home for these paths).

The rule, the same for the dashboard, the CLI, the tests and the scripts:

* **Installed wheel** (``pip install .``): the wheel ships the demo and the model card's
  figures inside the package, as ``mstgat_core/_assets/`` and ``mstgat_core/_results/``
  (``pyproject.toml`` maps the repository's ``assets/`` and ``docs/results/*.json`` there).
  When those folders exist beside this file, they are used.
* **Checkout** (an editable install or ``python -m`` from the repository): otherwise the
  repository's own ``assets/`` and ``docs/results/`` are used, one directory above the package.
  The top-level ``assets/`` folder stays the only copy in the repository; nothing is duplicated
  into the package folder.

The packaged copy wins when both could apply, so an installed wheel never reads an unrelated
``assets/`` folder that happens to sit next to it (e.g. in ``site-packages``).

``SHARED_DATA`` (the real datasets, not shipped) is ``../shared/data`` beside the checkout unless
the environment variable ``MSTGAT_SHARED_DATA`` names another folder (read at import).

Every name is a :class:`pathlib.Path`; nothing here checks that the files exist.

Examples
--------
>>> from mstgat_core import paths
>>> paths.DEMO_GRID.name
'south_china_li.nc'
>>> paths.DEMO_GRID.parent == paths.ASSETS
True
>>> paths.DEMO_REPORT.parent == paths.RESULTS
True
"""

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # mstgat_core/, in a checkout or in site-packages
ROOT = PACKAGE.parent  # the checkout (editable install); site-packages for an installed wheel

_PACKAGED_ASSETS = PACKAGE / "_assets"
_PACKAGED_RESULTS = PACKAGE / "_results"

#: True when the demo files come from inside the installed package (a wheel), False in a checkout.
INSTALLED = _PACKAGED_ASSETS.is_dir()

ASSETS = _PACKAGED_ASSETS if INSTALLED else ROOT / "assets"
RESULTS = _PACKAGED_RESULTS if _PACKAGED_RESULTS.is_dir() else ROOT / "docs" / "results"

DEMO_GRID = ASSETS / "south_china_li.nc"
DEMO_DEPOSITS = ASSETS / "south_china_li_deposits.csv"
DEMO_LICENSE = ASSETS / "LICENSE-south-china-li.txt"
DEMO_CHECKPOINT = ASSETS / "mstgat_south_china.safetensors"
DEMO_LAYERS = ASSETS / "mstgat_south_china_layers.nc"  # its prediction on the demo grid (a cache)
DEMO_REPORT = RESULTS / "south_china_li.json"  # the demo's cross-validated figures (the model card)
EXPLAIN_REPORT = RESULTS / "explain.json"  # the interpretation benchmark (the dashboard's Learn tab)
FAITHFULNESS_REPORT = RESULTS / "faithfulness.json"  # deletion curves of the explanations (Learn tab)


def _shared_data() -> Path:
    override = os.environ.get("MSTGAT_SHARED_DATA", "").strip()
    if override:
        return Path(override).expanduser()
    return ROOT.parent / "shared" / "data"  # ../shared/data beside the checkout


SHARED_DATA = _shared_data()
