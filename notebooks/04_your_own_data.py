# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Your own data: from a point CSV to a prospectivity GeoTIFF
#
# A recipe to copy. It uses the GTK regional till geochemistry of Central Lapland (Finland,
# 1,112 samples, 22 elements, aqua regia; © Geologian tutkimuskeskus, public) and the IOCG
# (Fe-Cu-Au) deposits, prospects and occurrences of the same area, from `../shared/data/lapland-till/`.
#
# **Honest warning:** the signal in these data is weak — the best single element reaches only about
# 0.68–0.7 ROC-AUC against the IOCG sites (about 0.68 on the raw points; see the in-sample check
# below for this grid), and there are only 13 sites. This notebook is about the
# *workflow* (points, detection limits, gridding, deposits, training, evaluation, export), not about
# a convincing model. In-sample the single elements look useful; held out a whole deposit cluster at
# a time, the supervised models here score *below* chance (what they learn from five clusters does not
# carry to the sixth) and only the label-free Mahalanobis distance stays above it (docs/results.md).
#
# Replace the paths below with yours: a CSV or GeoPackage of samples with element columns such as
# `Cu_ppm`, `Au_ppb` (or `<El>_ppm_511…` with a `<` flag column), and a CSV of deposit coordinates.

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from nbsetup import QUICK, ROOT, T0, find_up, show_map

print("quick mode" if QUICK else "full mode", "| repository:", ROOT)

try:
    SHARED = find_up("shared/data")  # ../shared/data relative to the repository root
except FileNotFoundError:
    SHARED = None
print("shared data:", SHARED)


# %%
from mstgat_core import deposit_cells, load_deposits
from mstgat_core.data.io import grid_info, save_grid
from mstgat_core.data.points import load_points, points_to_grid

if SHARED is None:
    raise FileNotFoundError("this notebook needs ../shared/data/lapland-till (see the README)")
SAMPLES_CSV = SHARED / "lapland-till" / "till_geochem_511p.csv"
DEPOSITS_CSV = SHARED / "lapland-till" / "IOCG_Deps_Prosp_Occs.csv"
CELL_SIZE = 2000.0  # metres (EPSG:3067)

# %% [markdown]
# ## 1. Points, and what happened below the detection limit
#
# `load_points` recognises element columns by their unit suffix, the CRS from the `_tm35fin`
# coordinate columns, and below-detection values in every usual form (a `<` flag column, `<0.5`
# strings, negative values). By default each is replaced by **half the detection limit**; the
# counts per element are kept so you can judge whether an element is usable.

# %%
samples = load_points(SAMPLES_CSV)  # censor="half" (default), "dl" or "nan"
print(len(samples.table), "samples,", len(samples.elements), "elements, CRS", samples.crs.to_string())
print(samples.censor_rule)
censored = pd.DataFrame({
    "below detection": pd.Series(samples.censored),
    "share %": (100 * pd.Series(samples.censored) / len(samples.table)).round(1),
    "unit": pd.Series(samples.units),
}).sort_values("below detection", ascending=False)
censored[censored["below detection"] > 0]

# %% [markdown]
# Elements with many censored values (here Zr) carry little information and a lot of invented
# half-limit values: consider dropping them (`load_points(..., elements=[...])`).
#
# ## 2. Points to a 2 km grid
#
# Inverse-distance weighting of the 12 nearest samples; cells farther than a default distance from
# every sample stay empty (NaN) and are not part of the graph.

# %%
grid = points_to_grid(samples, cell_size=CELL_SIZE)
info = grid_info(grid)
print({k: v for k, v in info.items() if k != "elements"})
fig, axes = plt.subplots(1, 3, figsize=(15, 5))
for ax, element in zip(axes, ["Cu", "Fe", "Co"]):
    layer = np.log10(grid[element])
    layer.name = f"log10 {element} ({grid[element].attrs.get('units', 'ppm')})"
    show_map(layer, ax)
    ax.scatter(samples.table.geometry.x, samples.table.geometry.y, s=1, c="k", alpha=0.4)
plt.tight_layout()

# %% [markdown]
# ## 3. Deposits onto the grid

# %%
deposits = load_deposits(DEPOSITS_CSV)
cells = deposit_cells(grid, deposits)
print(cells.attrs["summary"])
deposits[["Name", "Commodity", "Ocurrence_"]].head(13)

# %%
from sklearn.metrics import roc_auc_score

from mstgat_core.data.preprocess import valid_mask

mask = valid_mask(grid)
labels = cells.values[mask]
single = pd.Series({e: roc_auc_score(labels, grid[e].values[mask]) for e in grid.data_vars}).sort_values(ascending=False)
print("in-sample single-element ROC-AUC (top 6):", single.head(6).round(3).to_dict())
fig, ax = plt.subplots(figsize=(7, 7))
show_map(np.log10(grid["Cu"]).rename("log10 Cu with IOCG sites"), ax, deposits=deposits)

# %% [markdown]
# ## 4. Train
#
# Same call as on any grid: `fit(grid, cells, model_config)`: pretraining on every cell (no labels),
# then 5 heads fine-tuned on the 13 sites; the CLR transform is the default. The grid is
# only 41 x 34 cells, so the model looks at its 3 x 3 neighbourhood only (`scales=(1,)`): with the
# default radii 1-3 (a 7-cell receptive field, 14 km) the 13 sites would form one cluster, and no
# honest spatial fold could hold any of them out (next section).

# %%
from mstgat_core import TrainConfig, fit
from mstgat_core.training.pretrain import PretrainConfig

MODEL_CONFIG = {"d_model": 16, "gat_hidden": 16, "scales": (1,)}
PRETRAIN = PretrainConfig(epochs=4, steps_per_epoch=2) if QUICK else PretrainConfig()
TRAIN = TrainConfig(epochs=4, steps_per_epoch=2, min_epochs=1, patience=2) if QUICK else TrainConfig()  # scratch
fitted = fit(grid, cells, MODEL_CONFIG, pretrain_config=PRETRAIN)
print(fitted.train_result.to_dict())
layers = fitted.predict_layers(grid)
probability = layers["probability"]
fig, axes = plt.subplots(1, 2, figsize=(14, 7))
show_map(layers["probability"], axes[0], "MSTGAT score (in-sample)", cmap="magma", deposits=deposits, vmin=0, vmax=1)
show_map(layers["uncertainty"], axes[1], "uncertainty (spread of the 5 members)", cmap="viridis", deposits=deposits)

# %% [markdown]
# ## 5. A quick, honest evaluation
#
# Spatial cross-validation against the baselines. Sites closer than the model's receptive field
# (3 cells here) form one cluster, which stays whole in one fold; with 6 clusters we leave one
# cluster out at a time (`folds="loco"`), dropping training labels within 2 cells of the held-out
# area. Each fold holds 1-7 deposit cells: read the ± as "we cannot tell the methods apart" unless
# the paired comparison (last table) says otherwise.

# %%
from mstgat_core import cross_validate

RUN_METHODS = ("mstgat", "best_single_element", "mahalanobis") if QUICK else (
    "mstgat", "mstgat_label_free", "mstgat_scratch", "spatial", "best_single_element", "mahalanobis",
    "random_forest_context")
report = cross_validate(grid, cells, methods=RUN_METHODS, folds="loco", seeds=(1,) if QUICK else (1, 2, 3),
                        model_config=MODEL_CONFIG, train_config=TRAIN, pretrain_config=PRETRAIN)
print(f"{report['protocol']['n_clusters']} deposit clusters, buffer {report['protocol']['buffer']:g} cells")
pd.DataFrame({m: {"ROC-AUC": f"{r['roc_auc_mean']:.3f} ± {r['roc_auc_std']:.3f}",
                  "PR-AUC (chance)": f"{r['pr_auc_mean']:.3f} ({np.mean([f['prevalence'] for f in r['folds']]):.3f})",
                  "deposit cells in top 10 %": f"{r['capture_10_mean']:.2f}"}
              for m, r in report["results"].items()}).T

# %%
from IPython.display import Markdown

from mstgat_core.evaluation.stats import comparison_markdown

Markdown(comparison_markdown(report["comparison"]))

# %% [markdown]
# ## 6. Export: GeoTIFF of the probability (and the model)
#
# The probability map carries the grid's CRS, so it opens in QGIS/ArcGIS on top of your other layers.
# The checkpoint stores the weights, the normaliser's global statistics and the element list, so
# `mstgat predict model.safetensors new_grid.nc --out probability.tif` reproduces the map.

# %%
import tempfile

import rasterio

from mstgat_core import load_checkpoint, save_checkpoint

out_dir = Path(tempfile.mkdtemp(prefix="mstgat-lapland-"))
tif = out_dir / "iocg_probability.tif"
save_grid(probability.to_dataset(name="probability"), tif)
with rasterio.open(tif) as src:
    print(tif.name, src.crs, src.width, "x", src.height, "band:", src.descriptions)

model_path = save_checkpoint(fitted, out_dir / "lapland_mstgat.safetensors", data=grid)
again = load_checkpoint(model_path).predict(grid)
print("reloaded checkpoint reproduces the map:", bool(np.allclose(again.values, probability.values, equal_nan=True)))
print("written to", out_dir)

# %%
print(f"notebook ran in {time.perf_counter() - T0:.1f} s ({'quick' if QUICK else 'full'} mode)")
