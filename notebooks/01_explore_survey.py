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
# # 01 · Exploring a geochemical survey
#
# The bundled demo is the South China (Jiangxi/Hunan, Nanling belt) stream-sediment survey:
# 39 elements and oxides interpolated onto ~4.2 km cells, with 23 known lithium deposits
# (data: MIT licence, see `assets/README.md`). Before any model, look at the data:
#
# 1. element maps and the deposits,
# 2. distributions: raw values vs log vs centred log-ratio (CLR),
# 3. correlations between elements,
# 4. how well each element *alone* separates deposit cells from the rest.
#
# Run with `MSTGAT_QUICK=1` for a fast pass (nothing here is heavy either way).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from nbsetup import ASSETS, QUICK, ROOT, T0, show_map

print("quick mode" if QUICK else "full mode", "| repository:", ROOT)


# %% [markdown]
# ## Load the grid and the deposits

# %%
from mstgat_core import deposit_cells, load_deposits, load_grid
from mstgat_core.data.io import grid_info
from mstgat_core.data.preprocess import Normaliser, valid_mask

ds = load_grid(ASSETS / "south_china_li.nc")
deposits = load_deposits(ASSETS / "south_china_li_deposits.csv")
cells = deposit_cells(ds, deposits)
info = grid_info(ds)
{k: v for k, v in info.items() if k != "elements"} | {"n_elements": len(ds.data_vars)}

# %%
print(cells.attrs["summary"])
print("elements:", ", ".join(ds.data_vars))

# %% [markdown]
# ## Element maps with the deposits

# %%
shown = ["Li", "Be", "Bi", "W", "Sn", "Nb"] if QUICK else ["Li", "Be", "Bi", "W", "Sn", "Nb", "F", "B", "Cu", "Pb", "Zn", "Au"]
ncols = 3
fig, axes = plt.subplots(-(-len(shown) // ncols), ncols, figsize=(12, 3.6 * -(-len(shown) // ncols)))
for ax, element in zip(axes.ravel(), shown):
    layer = np.log10(ds[element].where(ds[element] > 0))
    layer.name = f"log10 {element} ({ds[element].attrs.get('units', '?')})"
    show_map(layer, ax, deposits=deposits)
for ax in axes.ravel()[len(shown):]:
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## Distributions: raw vs log vs CLR
#
# Geochemical concentrations are positive, right-skewed and *compositional* (parts of a whole).
# A log transform makes them roughly symmetric; the centred log-ratio (CLR: log of each element
# minus the mean log of the cell) also removes the closure effect (dilution by quartz, carbonate, ...).
# The model's `Normaliser` applies one of these, then a robust z-score with **global** statistics.

# %%
mask = valid_mask(ds)
log_ds = Normaliser(transform="log", scaling="none").fit(ds).transform_dataset(ds)
clr_ds = Normaliser(transform="clr", scaling="none").fit(ds).transform_dataset(ds)
examples = ["Li", "Au", "SiO2"]
fig, axes = plt.subplots(len(examples), 3, figsize=(12, 2.6 * len(examples)))
for i, element in enumerate(examples):
    for j, (label, source) in enumerate([("raw", ds), ("log", log_ds), ("CLR", clr_ds)]):
        values = source[element].values[mask]
        axes[i, j].hist(values, bins=60, color="#3b6ea5")
        axes[i, j].set_title(f"{element}: {label}")
plt.tight_layout()

# %% [markdown]
# ## Element correlations (CLR values)

# %%
clr_table = pd.DataFrame({e: clr_ds[e].values[mask] for e in clr_ds.data_vars})
corr = clr_table.corr(method="spearman")
fig, ax = plt.subplots(figsize=(10, 8.5))
im = ax.imshow(corr.values, cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=7)
ax.set_yticks(range(len(corr)), corr.index, fontsize=7)
fig.colorbar(im, ax=ax, shrink=0.8, label="Spearman correlation of CLR values")
ax.set_title("Element correlations")
plt.tight_layout()
print("most correlated with Li:", corr["Li"].drop("Li").sort_values(ascending=False).head(6).round(2).to_dict())

# %% [markdown]
# ## Single-element ROC-AUC against the deposit cells
#
# For each element: ROC-AUC of its value as a score, deposit cells (positives) vs all other
# valid cells. 0.5 = no better than chance; below 0.5 means deposits sit on *low* values.
#
# **These AUCs are in-sample**: nothing was fitted, but we chose the element after looking at the
# deposits, and neighbouring cells share values (spatial autocorrelation). They are a signal
# check, not a model evaluation; notebook 02 evaluates models under spatial cross-validation.

# %%
from sklearn.metrics import roc_auc_score

labels = cells.values[mask]
auc = pd.DataFrame({
    "raw": {e: roc_auc_score(labels, ds[e].values[mask]) for e in ds.data_vars},
    "CLR": {e: roc_auc_score(labels, clr_ds[e].values[mask]) for e in ds.data_vars},
}).sort_values("raw", ascending=False)
fig, ax = plt.subplots(figsize=(12, 3.5))
ax.bar(auc.index, auc["raw"], color=np.where(auc["raw"] >= 0.5, "#3b6ea5", "#c0504d"))
ax.axhline(0.5, color="k", lw=0.8, ls="--")
ax.set_ylim(0, 1)
ax.set_ylabel("ROC-AUC (in-sample)")
ax.set_title(f"Single-element ROC-AUC, {int(labels.sum())} deposit cells vs {int((~labels).sum())} others")
ax.tick_params(axis="x", rotation=90)
plt.tight_layout()
auc.head(8).round(3)

# %% [markdown]
# The best single elements set the bar that a model combining elements and spatial context has to
# beat — under a fair, spatially held-out protocol (notebook 02).

# %%
print(f"notebook ran in {time.perf_counter() - T0:.1f} s ({'quick' if QUICK else 'full'} mode)")
