"""Where the bundled demo files and the shared real datasets live (one home for these paths)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout (editable install)
ASSETS = ROOT / "assets"
DEMO_GRID = ASSETS / "south_china_li.nc"
DEMO_DEPOSITS = ASSETS / "south_china_li_deposits.csv"
DEMO_CHECKPOINT = ASSETS / "mstgat_south_china.safetensors"
DEMO_LAYERS = ASSETS / "mstgat_south_china_layers.nc"  # its prediction on the demo grid (a cache)
SHARED_DATA = ROOT.parent / "shared" / "data"  # ../shared/data beside the checkout
