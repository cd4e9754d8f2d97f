"""Panel-free state of one dashboard session.

:class:`Session` holds the data, the deposits, the fitted model and everything
derived from it (probability, attention and attribution maps, the selected
cell's explanation, the cross-validation report). Its *blocking* methods call
:mod:`mstgat_core` and are meant to run in a worker thread; they never touch
widgets. The views (``views.py``) call them through ``asyncio.to_thread`` and
copy progress into the params on the event loop.

One :class:`Session` is created per browser session, so nothing here is
shared between users.
"""

from __future__ import annotations

import atexit
import io as _io
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import param
import xarray as xr

from ..data import io as mio
from ..data import points as mpoints
from ..data.preprocess import TRANSFORMS
from ..data.support import apply_support, describe, support_mask, support_summary
from ..errors import Cancelled, DataError, one_line
from ..evaluation.crossval import METHODS
from ..graphs.graph import parse_scales
from ..model import VARIANTS
from ..paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID, DEMO_LAYERS, ROOT

DEMO_ELEMENT = "Li"
DEMO_REPORT = ROOT / "docs" / "results" / "south_china_li.json"

SOURCES = ["South China demo", "Synthetic scenario", "Uploaded files"]
BASEMAP_MAX_CELLS = 1_000_000
NO_FOLD = "none"
LAYER_GROUPS = ("Model outputs", "Uncertainty", "Explanations", "Interpolation", "Elements")


@dataclass(frozen=True)
class MapLayer:
    """A map layer as a typed key: its ``kind`` and which one (``key``: an element, a scale, a model output).
    ``label`` is its name in the menu; the session finds a layer by comparing labels, never by parsing one."""

    kind: str  # probability, model, element, CLS attention, scale weight, neighbour entropy, attribution, interpolation
    key: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind}: {self.key}" if self.key else self.kind

    @property
    def group(self) -> str:
        if self.kind == "model" and self.key in ("uncertainty", "top_agreement", "novelty"):
            return "Uncertainty"
        return {
            "probability": "Model outputs",
            "model": "Model outputs",
            "element": "Elements",
            "interpolation": "Interpolation",
        }.get(self.kind, "Explanations")

    @property
    def colours(self) -> str:
        """How its values are coloured (:func:`~.plots.image`): on a fixed 0-1 scale, diverging, or by value."""
        if self.kind == "probability" or (self.kind == "model" and self.key in ("calibrated", "top_agreement")):
            return "probability"
        return "signed" if self.kind == "attribution" else "value"


SUPPORT = MapLayer("interpolation", "distance to the nearest sample")
SUPPORT_LAYER = SUPPORT.label
TOP_SHARES = {"top 1 %": 0.01, "top 5 %": 0.05, "top 10 %": 0.10, "top 20 %": 0.20}


SESSION_PREFIX = "mstgat-session-"
HEAVY_JOBS = ("training", "scoring the samples", "attention maps", "attribution maps", "cross-validation")


def session_disk_limit() -> int:
    """Bytes of uploads one session may keep (``MSTGAT_SESSION_DISK``, default 1 GiB)."""
    try:
        return int(float(os.environ.get("MSTGAT_SESSION_DISK", 1024**3)))
    except ValueError:
        return 1024**3


def remove_stale_session_folders(max_age_s: float = 3600.0, root=None) -> int:
    """Delete session folders left by a server that stopped without cleaning up (untouched for
    ``max_age_s``); returns how many were removed. Folders of live sessions are younger."""
    root = Path(root or tempfile.gettempdir())
    removed, now = 0, time.time()
    for folder in root.glob(f"{SESSION_PREFIX}*"):
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


_LIVE_FOLDERS: set[Path] = set()  # folders of this process's sessions not yet cleaned up


@atexit.register
def _remove_live_session_folders():
    """A server stopped (Ctrl-C) with sessions still open leaves no folder behind."""
    for folder in list(_LIVE_FOLDERS):
        shutil.rmtree(folder, ignore_errors=True)


class JobSlots:
    """First-come, first-served slots for heavy jobs, shared by every session of the server process,
    so that a class training at once queues on the cores instead of fighting over them."""

    def __init__(self, slots: int):
        self.slots = max(int(slots), 1)
        self._lock = threading.Lock()
        self._running = 0
        self._queue: list = []

    def join(self, ticket) -> None:
        with self._lock:
            self._queue.append(ticket)

    def leave(self, ticket) -> None:
        with self._lock:
            if ticket in self._queue:
                self._queue.remove(ticket)

    def ahead(self, ticket) -> int:
        """Jobs queued before ``ticket`` (0 when it is next)."""
        with self._lock:
            return self._queue.index(ticket) if ticket in self._queue else 0

    def try_start(self, ticket) -> bool:
        """Start ``ticket`` if it is first in the queue and a slot is free."""
        with self._lock:
            if self._queue and self._queue[0] is ticket and self._running < self.slots:
                self._queue.pop(0)
                self._running += 1
                return True
            return False

    def finish(self) -> None:
        with self._lock:
            self._running = max(self._running - 1, 0)

    @property
    def running(self) -> int:
        return self._running


def _job_slots() -> int:
    try:
        return int(os.environ.get("MSTGAT_MAX_JOBS", max((os.cpu_count() or 2) // 2, 1)))
    except ValueError:
        return 1


JOB_SLOTS = JobSlots(_job_slots())


def tile_url() -> str:
    """XYZ template of the basemap's tiles (``MSTGAT_TILE_URL``; OpenStreetMap's by default, fetched by
    the browser only when the basemap is switched on)."""
    return os.environ.get("MSTGAT_TILE_URL", "https://tile.openstreetmap.org/{Z}/{X}/{Y}.png")


def torch_threads() -> int:
    """Threads each dashboard job gives torch (``MSTGAT_TORCH_THREADS``, default 1).

    Heavy jobs already run ``MSTGAT_MAX_JOBS`` at a time (half the cores) and clicks run beside them;
    one thread each keeps a training from starving the clicks of every other session, and more only
    thrash on a small server."""
    try:
        return max(int(os.environ.get("MSTGAT_TORCH_THREADS", 1)), 1)
    except ValueError:
        return 1


def _set_threads():
    import torch

    if torch.get_num_threads() != torch_threads():
        torch.set_num_threads(torch_threads())


class Session(param.Parameterized):
    """Everything one user works on. Heavy methods are blocking (run them in a thread)."""

    # ---- data choice
    source = param.Selector(default=SOURCES[0], objects=SOURCES, doc="Where the data come from")
    synth_rows = param.Integer(default=64, bounds=(32, 512), label="Synthetic rows")
    synth_cols = param.Integer(default=64, bounds=(32, 512), label="Synthetic columns")
    synth_seed = param.Integer(default=0, bounds=(0, None), label="Synthetic seed")
    cell_size = param.Number(default=1000.0, bounds=(0, None), label="Cell size for point data (CRS units)")
    support_choice = param.Selector(
        default="auto",
        objects=["auto", "estimate", "none"],
        label="Sample support of an uploaded grid (auto: its own layer; estimate: from its texture)",
    )
    transform = param.Selector(default="clr", objects=list(TRANSFORMS), label="Transform")
    elements = param.ListSelector(default=[], objects=[], label="Elements used by the model")

    # ---- model choice
    variant = param.Selector(default="mstgat", objects=list(VARIANTS))
    scales = param.String(default="1,2,3", label="Scales (cells)")
    pretraining = param.Boolean(default=True, label="Pretrain on every cell (no labels), then fine-tune")
    use_deposits = param.Boolean(default=True, label="Learn from the deposits (off: label-free, no deposits)")
    members = param.Integer(default=5, bounds=(1, 20), label="Ensemble members (with pretraining)")
    epochs = param.Integer(default=30, bounds=(1, 1000), label="Epochs (pretraining, or training from scratch)")
    seed = param.Integer(default=0, bounds=(0, None), label="Training seed")
    d_model = param.Integer(default=32, bounds=(8, 128), label="Transformer width")

    # ---- map
    layer = param.Selector(default=None, objects=[], label="Map layer")
    top_share = param.Selector(default="top 5 %", objects=list(TOP_SHARES), label="Outline (share of the area)")
    show_zones = param.Boolean(default=True, label="Outline anomaly zones")
    log_elements = param.Boolean(default=False, label="Log colour scale (element layers)")
    show_truth = param.Boolean(default=True, label="Show the planted truth (synthetic scenarios)")
    show_deposits = param.Boolean(default=True, label="Show deposits")
    basemap = param.Boolean(default=False, label="Basemap (web tiles: needs internet)")
    show_samples = param.Boolean(default=True, label="Show samples (point surveys; coloured once scored)")
    explore_element = param.Selector(default=None, objects=[], label="Element")
    brush_x = param.Selector(default=None, objects=[], label="Scatter x (log10)")
    brush_y = param.Selector(default=None, objects=[], label="Scatter y (log10)")
    brushed = param.Parameter(default=None, precedence=-1)  # bool (y, x): cells picked by a box
    brush_origin = param.String(default="", precedence=-1)  # where they were picked: the map or the scatter

    # ---- explanation controls
    att_layer = param.Selector(default="mean", objects=["mean"], label="Attention layer")
    att_head = param.Selector(default="mean", objects=["mean"], label="Attention head")
    gat_head = param.Selector(default="mean", objects=["mean"], label="GAT head")

    # ---- cross-validation
    cv_methods = param.ListSelector(
        default=["mstgat", "best_single_element", "mahalanobis"], objects=list(METHODS), label="Methods"
    )
    cv_folds = param.Integer(default=3, bounds=(2, 10), label="Folds")
    cv_seeds = param.Integer(default=1, bounds=(1, 5), label="Seeds")
    cv_epochs = param.Integer(default=30, bounds=(1, 1000), label="Epochs of the from-scratch ablation")
    cv_fold_shown = param.Selector(default=NO_FOLD, objects=[NO_FOLD], label="Fold shown on the map")

    # ---- results (set by the methods below)
    ds = param.Parameter(default=None, precedence=-1)
    deposits = param.Parameter(default=None, precedence=-1)  # GeoDataFrame
    deposit_mask = param.Parameter(default=None, precedence=-1)  # DataArray bool (y, x)
    fitted = param.Parameter(default=None, precedence=-1)
    prepared = param.Parameter(default=None, precedence=-1)
    probability = param.Parameter(default=None, precedence=-1)
    model_layers = param.Parameter(default=None, precedence=-1)  # predict_layers Dataset
    maps = param.Parameter(default=None, precedence=-1)  # attention_maps Dataset
    attributions = param.Parameter(default=None, precedence=-1)  # DataArray (element, y, x)
    explanation = param.Parameter(default=None, precedence=-1)
    support = param.Parameter(default=None, precedence=-1)  # distance to the nearest sample, for gridded points
    truth = param.Parameter(default=None, precedence=-1)  # a synthetic scenario's planted anomalies
    samples = param.Parameter(default=None, precedence=-1)  # PointSamples of an uploaded point survey
    point_model = param.Parameter(default=None, precedence=-1)  # PointModel (label-free, on the samples)
    point_scores = param.Parameter(default=None, precedence=-1)  # DataFrame: x, y, anomaly_score, ...
    point_outputs = param.Parameter(default=None, precedence=-1)  # PointScores: contributions, residuals
    sample_explanation = param.Parameter(default=None, precedence=-1)  # dict, see explain_sample_at
    region_summary = param.Parameter(default=None, precedence=-1)
    cv_report = param.Parameter(default=None, precedence=-1)
    cv_roles = param.Parameter(default=None, precedence=-1)  # per fold: test region, train/held-out deposits
    history = param.List(default=[], precedence=-1)
    data_label = param.String(default="", precedence=-1)
    model_label = param.String(default="no model", precedence=-1)
    status = param.String(default="", precedence=-1)
    error = param.String(default="", precedence=-1)
    busy = param.String(default="", precedence=-1)  # name of the running job, "" if idle
    progress = param.Integer(default=0, precedence=-1)
    progress_max = param.Integer(default=1, precedence=-1)
    progress_text = param.String(default="", precedence=-1)
    version = param.Integer(default=0, precedence=-1)  # bumped when map layers change

    def __init__(self, **params):
        super().__init__(**params)
        self.cancel_event = threading.Event()
        self.tmpdir = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
        _LIVE_FOLDERS.add(self.tmpdir)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ helpers

    def cleanup(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        _LIVE_FOLDERS.discard(self.tmpdir)

    def fail(self, exc: BaseException) -> str:
        """Record a user-facing one-line error (never a traceback)."""
        if isinstance(exc, Cancelled):
            self.error = ""
            self.status = "cancelled"
            return "cancelled"
        msg = one_line(exc)
        if not isinstance(exc, DataError):
            msg = f"{type(exc).__name__}: {msg}"
        self.error = msg
        return msg

    @property
    def grid_elements(self) -> list[str]:
        return list(self.ds.data_vars) if self.ds is not None else []

    def layer_keys(self) -> list[MapLayer]:
        """Every map layer the session has, as typed keys (in menu order)."""
        keys = []
        if self.probability is not None:
            keys.append(MapLayer("probability"))
        if self.model_layers is not None:
            keys += [MapLayer("model", name) for name in self.model_layers.data_vars if name != "probability"]
        if self.maps is not None:
            if "cls_attention" in self.maps:
                keys += [MapLayer("CLS attention", str(e)) for e in self.maps["element"].values]
            if "scale_weights" in self.maps:
                keys += [MapLayer("scale weight", str(s)) for s in self.maps["scale"].values]
            if "neighbour_entropy" in self.maps:
                keys += [MapLayer("neighbour entropy", str(s)) for s in self.maps["scale"].values]
        if self.attributions is not None:
            keys += [MapLayer("attribution", str(e)) for e in self.attributions["element"].values]
        if self.support is not None:
            keys.append(SUPPORT)
        return keys + [MapLayer("element", e) for e in self.grid_elements]

    def layer_options(self) -> list[str]:
        """The map layers' menu labels."""
        return [key.label for key in self.layer_keys()]

    def layer_key(self, label: str | None) -> MapLayer | None:
        """The typed key of a menu label (None if the session has no such layer)."""
        return next((key for key in self.layer_keys() if key.label == label), None)

    def zone_cut(self) -> float | None:
        """The score above which a cell is in the chosen top share of the valid cells (None without a model)."""
        if self.probability is None:
            return None
        values = self.probability.values[np.isfinite(self.probability.values)]
        return float(np.quantile(values, 1 - TOP_SHARES[self.top_share])) if values.size else None

    def zone_readout(self) -> str:
        """One line: the outlined share, its score cut and the deposit cells it captures."""
        cut = self.zone_cut()
        if cut is None:
            return "No model yet: the outline appears once a model is trained or loaded."
        area = "of the measured ground" if support_mask(self.ds) is not None else "of the area"
        line = f"Outlined: the {self.top_share} {area} (score >= {cut:.3g})"
        if self.deposit_mask is None:
            line += "; no deposits loaded."
        else:
            inside = np.asarray(self.deposit_mask.values, dtype=bool) & np.isfinite(self.probability.values)
            captured = int((self.probability.values[inside] >= cut).sum())
            line += f"; it holds {captured} of {int(inside.sum())} deposit cells."
        return line + self.support_readout()

    def support_readout(self) -> str:
        """A sentence on the grey cells when the grid has a sample support, else ""."""
        if self.ds is None or support_mask(self.ds) is None:
            return ""
        summary = support_summary(self.ds)
        return (
            f" Grey: {summary['cells_with_data'] - summary['supported_cells']:,} cells interpolated far from any "
            f"sample ({1 - summary['supported_share']:.0%}), not scored."
        )

    def layer_groups(self) -> dict[str, list[str]]:
        """The map layers' labels by group, for a grouped menu (empty groups left out)."""
        groups = {group: [] for group in LAYER_GROUPS}
        for key in self.layer_keys():
            groups[key.group].append(key.label)
        return {group: labels for group, labels in groups.items() if labels}

    def layer_data(self, label: str | None) -> xr.DataArray | None:
        """The values of the layer named ``label`` in the menu (None if there is no such layer)."""
        key = self.layer_key(label) if self.ds is not None else None
        if key is None:
            return None
        scale = int(key.key) if key.kind in ("scale weight", "neighbour entropy") else None
        return {
            "probability": lambda: self.probability,
            "model": lambda: self.model_layers[key.key],
            "element": lambda: self.ds[key.key],
            "CLS attention": lambda: self.maps["cls_attention"].sel(element=key.key),
            "scale weight": lambda: self.maps["scale_weights"].sel(scale=scale),
            "neighbour entropy": lambda: self.maps["neighbour_entropy"].sel(scale=scale),
            "attribution": lambda: self.attributions.sel(element=key.key),
            "interpolation": lambda: self.support,
        }[key.kind]()

    @param.depends("basemap", "ds", watch=True)
    def _basemap_needs_a_crs(self):
        """Web tiles are placed by the grid's CRS: without one the basemap is switched off, saying why; so
        it is for a grid too large to project whole (the basemap map is not resampled to the screen)."""
        if not self.basemap or self.ds is None:
            return
        cells = self.ds.sizes.get("y", 0) * self.ds.sizes.get("x", 0)
        if self.ds.rio.crs is None:
            self.basemap = False
            self.error = "these data have no coordinate reference system: a basemap needs one"
        elif cells > BASEMAP_MAX_CELLS:
            self.basemap = False
            self.error = (
                f"the basemap projects the whole grid: at most {BASEMAP_MAX_CELLS:,} cells, this one has {cells:,}"
            )

    def refresh_layers(self, prefer: str | None = None):
        opts = self.layer_options()
        self.param.layer.objects = opts
        current = self.layer
        if prefer in opts:
            self.layer = prefer
        elif current not in opts:
            self.layer = opts[0] if opts else None
        self.param.explore_element.objects = self.grid_elements
        if self.explore_element not in self.grid_elements:
            self.explore_element = (
                DEMO_ELEMENT
                if DEMO_ELEMENT in self.grid_elements
                else (self.grid_elements[0] if self.grid_elements else None)
            )
        self.param.brush_x.objects = self.param.brush_y.objects = self.grid_elements
        if self.brush_x not in self.grid_elements or self.brush_y not in self.grid_elements:
            first = self.explore_element
            others = [e for e in self.grid_elements if e != first]
            self.param.update(brush_x=first, brush_y=others[0] if others else first)  # both at once
        self.version += 1

    # ------------------------------------------------------------------ data

    def set_data(self, ds: xr.Dataset, deposits, label: str, samples=None):
        """Install a new grid (and deposits, and the point samples it was gridded from);
        drops the model if its elements are missing."""
        deposit_mask = None
        if deposits is not None and len(deposits):
            try:
                deposit_mask = mio.deposit_cells(ds, deposits)
            except DataError as exc:
                self.error = one_line(exc)
                deposits = None
        with param.parameterized.batch_call_watchers(self):
            self.ds = ds
            self.deposits = deposits
            self.deposit_mask = deposit_mask
            self.param.elements.objects = list(ds.data_vars)
            self.elements = list(ds.data_vars)
            self.data_label = label
            self.maps = None
            self.attributions = None
            self.explanation = None
            self.region_summary = None
            self.brushed, self.brush_origin = None, ""
            self.probability = None
            self.model_layers = None
            self.prepared = None
            self.cv_report = None
            self.cv_roles = None
            self.param.cv_fold_shown.objects = [NO_FOLD]
            self.cv_fold_shown = NO_FOLD
            self.samples = samples
            self.support = mpoints.sample_support(ds, samples) if samples is not None else None
            self.truth = None
            self.point_model = None
            self.point_scores = None
            self.point_outputs = None
            self.sample_explanation = None
        if self.fitted is not None:
            try:
                self.apply_model(self.fitted, self.model_label)
            except DataError as exc:
                self.fitted = None
                self.model_label = "no model"
                self.error = f"the current model does not fit these data: {one_line(exc)}"
        prefer = (
            "probability"
            if self.probability is not None
            else (f"element: {DEMO_ELEMENT}" if DEMO_ELEMENT in ds.data_vars else None)
        )
        self.refresh_layers(prefer)

    def load_demo(self):
        ds, deposits = load_demo_cached(str(DEMO_GRID), str(DEMO_DEPOSITS))
        self.set_data(ds, deposits, "South China demo (Li, 39 elements)")
        if self.fitted is None:
            self.use_demo_model()
        self.status = f"loaded {self.data_label}" + (
            "" if self.fitted else " - no model yet: train one in the Model tab"
        )

    def load_synthetic(self):
        sc = synthetic_scenario(self.synth_rows, self.synth_cols, self.synth_seed)
        self.fitted = None
        self.model_label = "no model"
        self.set_data(
            sc.grid, sc.deposits, f"synthetic scenario {self.synth_rows}x{self.synth_cols}, seed {self.synth_seed}"
        )
        self.truth = sc.truth
        self.version += 1
        ore = [a for a in sc.truth["anomalies"] if a["hosts_deposits"]]
        self.status = f"loaded {self.data_label}: ore anomalies in " + "; ".join(
            f"{'-'.join(a['elements'])} (radius {a['scale']} cells)" for a in ore
        )

    def truth_table(self):
        """The planted anomalies as rows (x, y, radius in map units, kind, elements), or None."""
        import pandas as pd

        if self.truth is None or self.ds is None:
            return None
        xs, ys = self.ds["x"].values, self.ds["y"].values
        cell = abs(float(xs[1] - xs[0])) if len(xs) > 1 else 1.0
        rows = []
        for anomaly in self.truth["anomalies"]:
            kind = "ore (hosts deposits)" if anomaly["hosts_deposits"] else "decoy (no deposits)"
            for r, c in anomaly["centres"]:
                rows.append(
                    dict(
                        x=float(xs[c]),
                        y=float(ys[r]),
                        radius=anomaly["scale"] * cell,
                        kind=kind,
                        elements="-".join(anomaly["elements"]),
                    )
                )
        return pd.DataFrame(rows)

    def save_upload(self, files: dict) -> list[Path]:
        """Write uploaded files into the session's folder (names reduced to their last part), within
        :func:`session_disk_limit` for everything the session keeps there."""
        blobs = {
            Path(name).name or "upload": (data.encode() if isinstance(data, str) else data)
            for name, data in files.items()
        }
        kept = {p.name: p.stat().st_size for p in self.tmpdir.iterdir() if p.is_file() and p.name not in blobs}
        total = sum(kept.values()) + sum(len(b) for b in blobs.values())
        limit = session_disk_limit()
        if total > limit:
            raise DataError(
                f"this session's files would take {total / 1024**2:,.0f} MiB; the limit is "
                f"{limit / 1024**2:,.0f} MiB per session (MSTGAT_SESSION_DISK)"
            )
        paths = []
        for name, data in blobs.items():
            path = self.tmpdir / name
            path.write_bytes(data)
            paths.append(path)
        return paths

    def load_grid_upload(self, files: dict):
        paths = self.save_upload(files)
        if not paths:
            raise DataError("no file received")
        path = paths[0]
        suffix = path.suffix.lower()
        samples = None
        if suffix in (".csv", ".gpkg", ".geojson", ".json"):
            samples = mio.load_points(path)
            if not self.cell_size or self.cell_size <= 0:
                raise DataError("give a positive cell size to grid point data")
            ds = mio.points_to_grid(samples, self.cell_size)
        else:
            ds = apply_support(mio.load_grid(path), self.support_choice)
        deposits = self.deposits if self.deposits is not None else None
        if deposits is not None:
            try:
                mio.deposit_cells(ds, deposits)
            except DataError:
                deposits = None
        self.set_data(ds, deposits, f"uploaded {path.name}", samples=samples)
        self.source = SOURCES[2]
        self.status = (
            f"loaded {path.name}: {ds.sizes['y']}x{ds.sizes['x']} cells, {len(ds.data_vars)} elements; "
            + describe(support_summary(ds))
        )
        if samples is not None:
            self.status += (
                f" (gridded from {len(samples.table)} samples by IDW; 'Score the samples' scores the samples "
                "themselves)" + (f"; {samples.note}" if samples.note else "")
            )

    def load_deposits_upload(self, files: dict):
        if self.ds is None:
            raise DataError("load a grid before the deposits")
        paths = self.save_upload(files)
        if not paths:
            raise DataError("no file received")
        gdf = mio.load_deposits(paths[0], crs=self.ds.rio.crs)
        mask = mio.deposit_cells(self.ds, gdf)
        self.deposits = gdf
        self.deposit_mask = mask
        self.version += 1
        self.status = f"deposits: {mask.attrs.get('summary', '')}"

    # ------------------------------------------------------------------ model

    def apply_model(self, fitted, label: str):
        """Prepare the grid for ``fitted`` and predict (blocking)."""
        _set_threads()
        prepared = fitted.prepare(self.ds)
        layers = fitted.predict_layers(self.ds)
        return self.install_model(fitted, prepared, layers, label)

    def install_model(self, fitted, prepared, layers, label: str):
        """Make ``fitted`` (with its prepared grid and predicted layers) the session's model."""
        with param.parameterized.batch_call_watchers(self):
            self.fitted = fitted
            self.prepared = prepared
            self.probability = layers["probability"]
            self.model_layers = layers
            self.model_label = label
            self.maps = None
            self.attributions = None
            self.explanation = None
            self.region_summary = None
        self._update_explain_options()
        return fitted.applicability_warning(layers)

    def model_provenance(self) -> str:
        """Markdown: what the current model was trained on and how, and for the bundled checkpoint
        its cross-validated score from the benchmark report (docs/results/south_china_li.json)."""
        import ast
        import json

        fitted = self.fitted
        if fitted is None:
            return ""
        meta = fitted.metadata or {}
        lines = [
            f"**{self.model_label}** ({fitted.config.variant}, scales {list(fitted.config.scales)}, "
            f"{fitted.n_members} member(s), {len(fitted.elements)} elements)"
        ]
        pre = meta.get("pretrain")
        if isinstance(pre, dict) and "config" in pre:
            c = pre["config"]
            lines.append(f"Pretrained without labels: {c.get('epochs')} epochs, seed {c.get('seed')}.")
        result = meta.get("train_result")
        if isinstance(result, str):
            try:
                result = ast.literal_eval(result)
            except (ValueError, SyntaxError):
                result = None
        if isinstance(result, dict) and "share" in result:
            share = result["share"]
            lines.append(
                f"Heads fitted on the deposits; their share in the score, chosen by inner CV: {share:g}"
                + (" (the map is the label-free score)." if share == 0 else ".")
            )
        if meta.get("created"):
            lines.append(f"Saved {meta['created'][:10]}.")
        if self.model_label == "bundled South China checkpoint":
            report = DEMO_REPORT
            try:
                r = json.loads(report.read_text())
                m, p = r["results"]["mstgat"], r["protocol"]
                lines.append(
                    f"Trained on the bundled South China grid and its 23 Li deposits. Cross-validated with the same "
                    f"settings ({p['n_folds']} folds of whole deposit clusters, buffer {p['buffer']:g} cells, seeds "
                    f"{', '.join(map(str, p['seeds']))}): ROC-AUC {m['roc_auc_mean']:.3f} ± {m['roc_auc_std']:.3f}, "
                    f"{m['capture_5_mean']:.0%} of held-out deposit cells in the top 5 % of the area "
                    "(docs/results.md)."
                )
            except (OSError, KeyError, ValueError):
                lines.append("Its cross-validated score: run `make results` (docs/results.md).")
        return "\n\n".join(lines)

    def use_demo_model(self) -> bool:
        """The bundled checkpoint on the demo grid, predicted once per process and shared by every
        session (each gets its own copy of the network); False when there is no bundled checkpoint."""
        import copy

        if not DEMO_CHECKPOINT.exists():
            return False
        try:
            fitted, prepared, layers = demo_model_cached(str(DEMO_CHECKPOINT), str(DEMO_GRID), str(DEMO_DEPOSITS))
        except DataError as exc:
            self.error = f"bundled checkpoint: {one_line(exc)}"
            return False
        # the checkpoint was trained on this grid: no applicability warning to show
        self.install_model(copy.deepcopy(fitted), prepared, layers, "bundled South China checkpoint")
        self.refresh_layers("probability")
        return True

    def _update_explain_options(self):
        cfg = self.fitted.config if self.fitted is not None else None
        layers = ["mean", "rollout"] + ([str(i) for i in range(cfg.layers)] if cfg and cfg.uses_spectral else [])
        heads = ["mean"] + ([str(i) for i in range(cfg.heads)] if cfg and cfg.uses_spectral else [])
        gheads = ["mean"] + ([str(i) for i in range(cfg.gat_heads)] if cfg and cfg.uses_spatial else [])
        self.param.att_layer.objects = layers
        self.param.att_head.objects = heads
        self.param.gat_head.objects = gheads
        self.att_layer, self.att_head, self.gat_head = "mean", "mean", "mean"

    def load_checkpoint_file(self, path, label: str | None = None):
        from ..training.checkpoint import load_checkpoint

        fitted = load_checkpoint(path)
        if self.ds is None:
            raise DataError("load data before a checkpoint")
        warning = self.apply_model(fitted, label or f"checkpoint {Path(path).name}")
        self.refresh_layers("probability")
        self.status = f"loaded {self.model_label} ({fitted.config.variant}, scales {list(fitted.config.scales)})"
        if warning:
            self.status += f"; {warning}"

    def load_checkpoint_upload(self, files: dict):
        paths = self.save_upload(files)
        if not paths:
            raise DataError("no file received")
        self.load_checkpoint_file(paths[0], label=f"uploaded {paths[0].name}")

    def checkpoint_bytes(self) -> _io.BytesIO:
        from ..training.checkpoint import save_checkpoint

        if self.fitted is None:
            raise DataError("no model to save: train or load one first")
        path = self.tmpdir / "mstgat_model.safetensors"
        save_checkpoint(self.fitted, path, data=self.ds)
        return _io.BytesIO(path.read_bytes())

    def train(self, on_epoch=None):
        """Fit a model with the chosen settings (blocking). ``on_epoch(log)`` is called per epoch
        (a :class:`~mstgat_core.pretrain.PretrainLog`, or an :class:`~mstgat_core.train.EpochLog` from scratch)."""
        from ..training.pipeline import fit, pretrain_backbone
        from ..training.pretrain import PretrainConfig
        from ..training.train import TrainConfig

        _set_threads()
        if self.ds is None:
            raise DataError("load data first")
        if not self.elements:
            raise DataError("select at least one element")
        label_free = not self.use_deposits or self.deposit_mask is None
        if label_free and not self.pretraining:
            raise DataError("without deposits the model learns by pretraining: tick the pretraining box")
        model_config = {"variant": self.variant, "scales": parse_scales(self.scales), "d_model": self.d_model}
        if self.d_model % 4:
            raise DataError("the Transformer width must be a multiple of 4 (the head count)")
        train_config = TrainConfig(epochs=self.epochs, seed=self.seed, min_epochs=min(30, self.epochs))
        self.cancel_event.clear()
        if label_free:
            fitted = pretrain_backbone(
                self.ds,
                model_config,
                PretrainConfig(epochs=self.epochs, seed=self.seed),
                transform=self.transform,
                elements=list(self.elements),
                callback=on_epoch,
                cancel=self.cancel_event,
            )
            why = "deposits switched off" if self.deposit_mask is not None else "no deposits loaded"
            warning = self.apply_model(fitted, f"label-free {self.variant} (no deposits)")
            self.refresh_layers("probability")
            self.status = (
                f"label-free {self.variant} ({why}): pretrained on every cell, the map ranks cells by how "
                "badly their elements are predicted from their other elements and neighbours"
                + (f"; {warning}" if warning else "")
            )
            return fitted
        fitted = fit(
            self.ds,
            self.deposit_mask,
            model_config,
            train_config,
            transform=self.transform,
            elements=list(self.elements),
            callback=on_epoch,
            cancel=self.cancel_event,
            members=self.members if self.pretraining else 1,
            pretrain_config=PretrainConfig(epochs=self.epochs, seed=self.seed),
            pretrained=self.pretraining,
        )
        res = fitted.train_result
        if self.pretraining:
            label = f"pretrained {self.variant}, {self.members} member(s)"
            how = f"inner CV over {res.inner_folds} folds" if res.chosen_by == "inner-cv" else "defaults (one cluster)"
            status = f"{label}: head share {res.share:g}, C {res.C:g} ({how})"
            if res.share == 0:
                status += "; the deposits did not improve on the label-free score, so the map is that score"
        else:
            label = f"trained {self.variant} from scratch ({len(res.history)} epochs)"
            status = (
                f"trained {self.variant}: {len(res.history)} epochs, best validation AUC "
                f"{res.best_val_auc:.3f} at epoch {res.best_epoch}, {res.seconds:.0f} s"
            )
        warning = self.apply_model(fitted, label)
        self.refresh_layers("probability")
        self.status = status + (f"; {warning}" if warning else "")
        return fitted

    # ------------------------------------------------------------------ point surveys

    def score_samples(self, on_epoch=None):
        """Pretrain a label-free MSTGAT on the uploaded samples themselves (blocking); fills
        ``point_model`` and ``point_scores`` (x, y in the map's CRS, score, percentile, top elements)."""
        import pandas as pd
        from scipy.stats import rankdata

        from ..training.point_model import pretrain_points
        from ..training.pretrain import PretrainConfig

        _set_threads()
        if self.samples is None:
            raise DataError("no point samples: upload a point file (CSV or GeoPackage) to score its samples")
        elements = [e for e in self.elements if e in self.samples.elements] or None
        samples = self.samples
        if elements is not None and elements != samples.elements:
            import dataclasses

            samples = dataclasses.replace(samples, elements=elements)
        model = pretrain_points(
            samples, pretrain_config=PretrainConfig(epochs=self.epochs, seed=self.seed), callback=on_epoch
        )
        scores = model.scores()
        table = pd.DataFrame(
            {
                "x": model.graph.xy[:, 0],
                "y": model.graph.xy[:, 1],
                "anomaly_score": scores.anomaly_score,
                "percentile": 100.0 * rankdata(scores.anomaly_score) / len(scores.anomaly_score),
                "top_elements": scores.top_elements(3),
            }
        )
        self.point_model, self.point_scores, self.point_outputs = model, table, scores
        self.sample_explanation = None
        self.version += 1
        self.status = (
            f"scored {len(table)} samples without deposits (MSTGAT on the samples: "
            + "; ".join(model.graph.describe().splitlines())
            + "); click a sample for its explanation"
        )
        return table

    def explain_sample_at(self, x: float, y: float) -> dict:
        """The scored sample nearest to (x, y): score, percentile, contributions and residuals, element
        attention and neighbour weights per scale (blocking, changes no param)."""
        if self.point_scores is None:
            raise DataError("no scored samples: press 'Score the samples' first")
        table, scores = self.point_scores, self.point_outputs
        sample = int(np.argmin(np.hypot(table["x"] - x, table["y"] - y)))
        out = self.point_model.explain(sample)
        out.update(
            x=float(table["x"][sample]),
            y=float(table["y"][sample]),
            anomaly_score=float(table["anomaly_score"][sample]),
            percentile=float(table["percentile"][sample]),
            contributions=scores.contributions.iloc[sample].sort_values(ascending=False),
            residuals=scores.residuals.iloc[sample],
            reach=list(self.point_model.graph.reach),
        )
        return out

    # ------------------------------------------------------------------ interpretation

    def explain_at(self, x: float, y: float):
        """Explanation of the cell nearest to map coordinates (x, y) (blocking, changes no param).

        Safe to run in a worker thread; the caller assigns the result to ``explanation``
        on the event loop.
        """
        from .. import interpret

        _set_threads()
        fitted, prepared = self.fitted, self.prepared
        if fitted is None or prepared is None:
            raise DataError("no model yet: train or load one to explain cells")
        xs, ys = prepared.template["x"].values, prepared.template["y"].values
        half_x = abs(float(xs[1] - xs[0])) / 2 if len(xs) > 1 else np.inf
        half_y = abs(float(ys[1] - ys[0])) / 2 if len(ys) > 1 else np.inf
        if not (xs.min() - half_x <= x <= xs.max() + half_x and ys.min() - half_y <= y <= ys.max() + half_y):
            raise DataError("the click is outside the grid: click a cell of the map")
        row = int(np.abs(ys - y).argmin())
        col = int(np.abs(xs - x).argmin())
        if not prepared.graph.mask[row, col]:
            raise DataError(f"cell row {row}, col {col} has no data: click inside the survey area")
        exp = interpret.explain_cell(fitted, prepared, row=row, col=col, ig_steps=16)
        exp.attrs.update(self.cell_outputs(row, col))
        exp.attrs["composition"] = self.cell_composition(row, col, fitted.elements)
        return exp

    def cell_composition(self, row: int, col: int, elements: list[str]) -> pd.DataFrame:
        """The cell's measured values (as loaded, with units) and their percentile among the grid's valid
        cells, per element: the geochemistry to read beside the attention and attribution."""
        rows = []
        for element in elements:
            layer = self.ds[element]
            values = np.asarray(layer.values, dtype=float)
            value = float(values[row, col])
            valid = values[np.isfinite(values)]
            percentile = 100.0 * float((valid < value).mean() + 0.5 * (valid == value).mean())
            rows.append((element, value, layer.attrs.get("units", ""), percentile))
        return pd.DataFrame(rows, columns=["element", "value", "units", "percentile"])

    def cell_outputs(self, row: int, col: int) -> dict:
        """The model's map layers at one cell (percentile, ensemble spread, novelty, ...) and, for a grid made
        from samples, its distance to the nearest sample; NaN-free."""
        out = {}
        if self.support is not None and np.isfinite(self.support.values[row, col]):
            out["nearest_sample"] = float(self.support.values[row, col])
            out["median_spacing"] = float(self.support.attrs["median_spacing"])
            out["spacing_units"] = self.support.attrs["units"]
        if self.model_layers is None:
            return out
        for name in ("percentile", "uncertainty", "top_agreement", "novelty", "label_free", "calibrated"):
            if name in self.model_layers:
                value = float(self.model_layers[name].values[row, col])
                if np.isfinite(value):
                    out[name] = value
        return out

    def explain(self, x: float, y: float):
        """Explain the cell nearest to (x, y) and store it in ``explanation`` (blocking)."""
        exp = self.explain_at(x, y)
        self.explanation = exp
        return exp

    def compute_maps(self, progress=None):
        from .. import interpret

        _set_threads()
        if self.fitted is None:
            raise DataError("no model yet")
        maps = interpret.attention_maps(self.fitted, self.prepared, progress=progress, cancel=self.cancel_event)
        self.maps = maps
        self.refresh_layers()
        return maps

    def compute_attributions(self, progress=None):
        from .. import interpret

        _set_threads()
        if self.fitted is None:
            raise DataError("no model yet")
        self.cancel_event.clear()
        attr = interpret.attribution_maps(
            self.fitted, self.prepared, steps=8, progress=progress, cancel=self.cancel_event
        )
        self.attributions = attr
        self.refresh_layers(f"attribution: {attr['element'].values[0]}")
        return attr

    def summarise_region(self, x0, y0, x1, y1):
        """Summary of the box (x0, y0)-(x1, y1) (blocking; the caller stores it in ``region_summary``)."""
        from .. import interpret

        _set_threads()
        if self.fitted is None:
            raise DataError("no model yet: train or load one to summarise a region")
        xs = self.prepared.template["x"].values
        ys = self.prepared.template["y"].values
        inx = (xs >= min(x0, x1)) & (xs <= max(x0, x1))
        iny = (ys >= min(y0, y1)) & (ys <= max(y0, y1))
        region = np.outer(iny, inx) & self.prepared.graph.mask
        if not region.any():
            raise DataError("the selected box holds no valid cell")
        summary = interpret.summarise(
            self.fitted, self.prepared, region, maps=self.maps, attributions=self.attributions
        )
        summary["n_cells"] = int(region.sum())
        summary["mean_probability"] = float(np.nanmean(self.probability.values[region]))
        return summary

    # ------------------------------------------------------------------ linked brushing

    def valid_cells(self) -> np.ndarray:
        """Cells with a value in any element (y, x)."""
        valid = np.zeros((self.ds.sizes["y"], self.ds.sizes["x"]), dtype=bool)
        for name in self.ds.data_vars:
            valid |= np.isfinite(self.ds[name].values)
        return valid

    def brush_map_box(self, x0, y0, x1, y1) -> np.ndarray:
        """Pick the cells inside a box drawn on the map (blocking; changes ``brushed``)."""
        if self.ds is None:
            raise DataError("no data loaded")
        inx = (self.ds["x"].values >= min(x0, x1)) & (self.ds["x"].values <= max(x0, x1))
        iny = (self.ds["y"].values >= min(y0, y1)) & (self.ds["y"].values <= max(y0, y1))
        picked = np.outer(iny, inx) & self.valid_cells()
        self.brushed, self.brush_origin = picked, "a box on the map"
        return picked

    def brush_scatter_box(self, x0, y0, x1, y1) -> np.ndarray:
        """Pick the cells whose log10 values of ``brush_x`` and ``brush_y`` fall inside a box drawn on the
        scatter plot, to show them on the map (changes ``brushed``)."""
        if self.ds is None or self.brush_x is None:
            raise DataError("no data loaded")
        with np.errstate(divide="ignore", invalid="ignore"):
            lx = np.log10(np.asarray(self.ds[self.brush_x].values, dtype=float))
            ly = np.log10(np.asarray(self.ds[self.brush_y].values, dtype=float))
        picked = (lx >= min(x0, x1)) & (lx <= max(x0, x1)) & (ly >= min(y0, y1)) & (ly <= max(y0, y1))
        self.brushed, self.brush_origin = picked, "a box on the scatter plot"
        return picked

    def brush_readout(self) -> str:
        """One line: how many cells are brushed, where they were picked, and the deposit cells among them."""
        if self.brushed is None:
            return (
                "Draw a box on the map (box-select tool) to highlight its cells in the scatter plot and the "
                "histogram, or on the scatter plot to show its cells on the map."
            )
        line = f"{int(self.brushed.sum()):,} cells picked by {self.brush_origin}"
        if self.deposit_mask is not None:
            deposits = np.asarray(self.deposit_mask.values, dtype=bool)
            line += f"; {int((deposits & self.brushed).sum())} of {int(deposits.sum())} deposit cells among them"
        return line + "."

    # ------------------------------------------------------------------ evaluation

    def cross_validate(self, progress=None):
        from ..evaluation.crossval import cross_validate_grid, fold_roles
        from ..training.train import TrainConfig

        _set_threads()
        if self.ds is None or self.deposit_mask is None:
            raise DataError("cross-validation needs data with deposits")
        if not self.cv_methods:
            raise DataError("choose at least one method")
        self.cancel_event.clear()
        model_config = {"scales": parse_scales(self.scales), "d_model": self.d_model}
        train_config = TrainConfig(epochs=self.cv_epochs, min_epochs=min(30, self.cv_epochs))
        report = cross_validate_grid(
            self.ds,
            self.deposit_mask,
            list(self.cv_methods),
            folds=self.cv_folds,
            seeds=tuple(range(1, self.cv_seeds + 1)),
            model_config=model_config,
            train_config=train_config,
            transform=self.transform,
            elements=list(self.elements),
            progress=progress,
            cancel=self.cancel_event,
        )
        self.cv_roles = fold_roles(self.ds, self.deposit_mask, report)
        self.param.cv_fold_shown.objects = [NO_FOLD] + [fold_label(r) for r in self.cv_roles]
        self.cv_fold_shown = fold_label(self.cv_roles[0]) if self.cv_roles else NO_FOLD
        self.cv_report = report
        return report

    def fold_shown(self) -> dict | None:
        """The cross-validation fold chosen to be drawn on the map, or None."""
        for role in self.cv_roles or []:
            if fold_label(role) == self.cv_fold_shown:
                return role
        return None

    def cv_table(self):
        import pandas as pd

        if not self.cv_report:
            return pd.DataFrame()
        rows = []
        comparison = self.cv_report.get("comparison", {})
        for method, r in self.cv_report.get("results", {}).items():
            rows.append(
                {
                    "method": method,
                    "ROC AUC": r.get("roc_auc_mean"),
                    "ROC AUC sd": r.get("roc_auc_std"),
                    "PR AUC": r.get("pr_auc_mean"),
                    "PR AUC chance": float(np.mean([row["prevalence"] for row in r["folds"]])),
                    "deposit cells in top 10 %": r.get("capture_10_mean"),
                    "vs mstgat": comparison.get(method, {}).get("verdict", ""),
                }
            )
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ exports

    def export_layers(self, fmt: str) -> _io.BytesIO:
        """Probability, attention and attribution maps as one .nc or multi-band .tif."""
        if self.probability is None:
            raise DataError("nothing to export: train or load a model first")
        layers = {"probability": self.probability}
        if self.model_layers is not None:
            layers.update({k: v for k, v in self.model_layers.data_vars.items() if k != "probability"})
        if self.maps is not None and "cls_attention" in self.maps:
            for e in self.maps["element"].values:
                layers[f"cls_attention_{e}"] = self.maps["cls_attention"].sel(element=e, drop=True)
        if self.maps is not None and "scale_weights" in self.maps:
            for s in self.maps["scale"].values:
                layers[f"scale_weight_{s}"] = self.maps["scale_weights"].sel(scale=s, drop=True)
        if self.attributions is not None:
            for e in self.attributions["element"].values:
                layers[f"attribution_{e}"] = self.attributions.sel(element=e, drop=True)
        clean = {}
        for k, v in layers.items():
            v = v.reset_coords(drop=True).astype("float32")
            v.attrs = {}
            clean[k] = v
        ds = xr.Dataset(clean)
        crs = self.ds.rio.crs
        if crs is not None:
            ds = ds.rio.write_crs(crs)
        path = self.tmpdir / f"mstgat_maps.{fmt}"
        mio.save_grid(ds, path)
        return _io.BytesIO(path.read_bytes())

    def export_cv_csv(self) -> _io.BytesIO:
        if not self.cv_report:
            raise DataError("run a cross-validation first")
        return _io.BytesIO(self.cv_table().to_csv(index=False).encode())

    def export_png(self) -> _io.BytesIO:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        da = self.layer_data(self.layer)
        if da is None:
            raise DataError("no map layer to export")
        fig, ax = plt.subplots(figsize=(7, 7), dpi=120)
        xs, ys = da["x"].values, da["y"].values
        extent = [xs.min(), xs.max(), ys.min(), ys.max()]
        img = ax.imshow(
            np.asarray(da.values, dtype=float),
            extent=extent,
            origin="upper" if ys[0] > ys[-1] else "lower",
            cmap="viridis",
        )
        fig.colorbar(img, ax=ax, shrink=0.7, label=self.layer)
        if self.deposits is not None and self.show_deposits:
            dep = self.deposits.to_crs(self.ds.rio.crs) if self.ds.rio.crs is not None else self.deposits
            ax.scatter(dep.geometry.x, dep.geometry.y, c="red", s=18, marker="^", edgecolor="white", label="deposits")
            ax.legend(loc="lower right")
        ax.set_title(f"{self.layer} - {self.data_label}")
        ax.set_aspect("equal")
        buf = _io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        buf.seek(0)
        return buf


def fold_label(role: dict) -> str:
    return f"seed {role['seed']}, fold {role['fold']}"


def synthetic_scenario(rows: int, cols: int, seed: int = 0):
    """``make_scenario`` sized for the grid: fewer anomalies on small grids.

    The library's default (6 ore + 4 decoy anomalies) needs about a 64 x 64 grid; smaller
    grids get proportionally fewer anomalies (at least one of each), and if the random
    survey outline still leaves no room the counts are reduced until they fit.
    """
    from ..data.synthetic import default_anomalies, element_names, make_scenario

    base = default_anomalies(element_names(10))
    frac = min(1.0, rows * cols / 64**2)
    counts = [max(1, int(round(a["n"] * frac))) for a in base]
    while True:
        anomalies = [dict(a, n=n) for a, n in zip(base, counts)]
        try:
            return make_scenario(shape=(rows, cols), anomalies=anomalies, seed=seed)
        except DataError as exc:
            if "no room" not in str(exc) or counts == [1, 1]:
                raise DataError(
                    f"a {rows} x {cols} grid is too small for a synthetic scenario "
                    f"({one_line(exc)}); use at least 32 x 32"
                ) from None
            counts = [max(1, n - 1) for n in counts]


_DEMO_CACHE: dict = {}


_DEMO_MODEL_CACHE: dict = {}
_DEMO_MODEL_LOCK = threading.Lock()


def demo_model_cached(checkpoint_path: str, grid_path: str, deposits_path: str):
    """(fitted, prepared grid, predicted layers) of the bundled checkpoint on the demo grid, computed once
    per process: a class opening the app at once pays for one prediction, not one per student.
    Callers must not modify the returned objects (the network: take a copy)."""
    from ..training.checkpoint import load_checkpoint

    key = (checkpoint_path, grid_path, deposits_path)
    with _DEMO_MODEL_LOCK:
        if key not in _DEMO_MODEL_CACHE:
            _set_threads()
            ds, _ = load_demo_cached(grid_path, deposits_path)
            fitted = load_checkpoint(checkpoint_path)
            layers = read_demo_layers(checkpoint_path, grid_path)
            if layers is None:
                layers = fitted.predict_layers(ds)
            prepared = fitted.prepare(ds)
            _warm_up_explanations(fitted, prepared)
            _DEMO_MODEL_CACHE[key] = (fitted, prepared, layers)
        return _DEMO_MODEL_CACHE[key]


def _warm_up_explanations(fitted, prepared) -> None:
    """Explain one cell once per process: torch's first pass through the explanation path takes about
    a second more than the next, which the first click of the first student would otherwise pay."""
    from .. import interpret

    rows, cols = np.nonzero(prepared.graph.mask)
    if len(rows):
        interpret.explain_cell(
            fitted, prepared, row=int(rows[len(rows) // 2]), col=int(cols[len(cols) // 2]), ig_steps=16
        )


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_demo_layers(checkpoint_path=DEMO_CHECKPOINT, grid_path=DEMO_GRID, out=DEMO_LAYERS) -> Path:
    """Predict the bundled checkpoint's layers on the demo grid once (6-7 s on one core) and keep them in
    ``out``, stamped with both files' SHA-256, so that a server starts without predicting them."""
    from ..files import atomic_output
    from ..training.checkpoint import load_checkpoint

    fitted = load_checkpoint(checkpoint_path)
    layers = fitted.predict_layers(mio.load_grid(grid_path))
    layers.attrs.update(checkpoint_sha256=_sha256(checkpoint_path), grid_sha256=_sha256(grid_path))
    encoding = {name: {"zlib": True, "complevel": 4} for name in layers.data_vars}
    with atomic_output(Path(out)) as tmp:
        layers.to_netcdf(tmp, encoding=encoding)
    return Path(out)


def read_demo_layers(checkpoint_path, grid_path) -> xr.Dataset | None:
    """The layers :func:`write_demo_layers` kept, if they were made from these very files; else None."""
    if not DEMO_LAYERS.exists():
        return None
    try:
        layers = xr.load_dataset(DEMO_LAYERS)
    except (OSError, ValueError):
        return None
    made_from = (layers.attrs.get("checkpoint_sha256"), layers.attrs.get("grid_sha256"))
    if made_from != (_sha256(checkpoint_path), _sha256(grid_path)):
        return None
    for key in ("checkpoint_sha256", "grid_sha256"):
        layers.attrs.pop(key)
    return layers.set_coords([name for name in ("spatial_ref",) if name in layers.data_vars])


def load_demo_cached(grid_path: str, deposits_path: str):
    """Demo grid and deposits, loaded once per process (keyed on the path strings).

    The dashboard wraps this with ``pn.cache``; this plain dict cache keeps the
    state module Panel-free. Callers must not modify the returned objects.
    """
    key = (grid_path, deposits_path)
    if key not in _DEMO_CACHE:
        ds = mio.load_grid(grid_path)
        deposits = mio.load_deposits(deposits_path, crs=ds.rio.crs)
        _DEMO_CACHE[key] = (ds, deposits)
    return _DEMO_CACHE[key]
