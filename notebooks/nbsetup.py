"""What every notebook starts with: quick mode, the repository's folders, a map helper.

``from nbsetup import ...`` works because Jupyter and nbmake run a notebook in
its own folder (``notebooks/``).
"""

import os
import time
from pathlib import Path

import torch

QUICK = os.environ.get("MSTGAT_QUICK", "0").lower() not in ("", "0", "false", "no")
if QUICK:
    torch.set_num_threads(1)  # quick mode runs in CI, notebooks in parallel on small shared machines
T0 = time.perf_counter()


def find_up(relative):
    """First existing ``relative`` path in the working folder or any folder above it."""
    for base in [Path.cwd(), *Path.cwd().parents]:
        if (base / relative).exists():
            return (base / relative).resolve()
    raise FileNotFoundError(f"{relative} not found above {Path.cwd()}")


ROOT = find_up("mstgat_core").parent  # the repository root
ASSETS = ROOT / "assets"


def show_map(da, ax, title=None, cmap="viridis", deposits=None, **kw):
    """An (y, x) DataArray on map axes, optionally with deposit points."""
    da.plot.imshow(ax=ax, cmap=cmap, add_labels=False, **kw)
    if deposits is not None:
        ax.scatter(deposits.geometry.x, deposits.geometry.y, s=18, marker="^", c="red",
                   edgecolors="white", linewidths=0.6, label="deposits")
    ax.set_title(title or str(da.name))
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
