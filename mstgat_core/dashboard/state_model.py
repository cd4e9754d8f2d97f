"""The model part of a dashboard session: the settings of a training, the fitted model with its prepared
grid and predicted layers, and MSTGAT scored on point samples (Panel-free; see :mod:`.state`)."""

from __future__ import annotations

import io as _io

import numpy as np
import pandas as pd
import param

from ..errors import DataError
from ..graphs.graph import parse_scales
from ..model import VARIANTS
from ..paths import DEMO_CHECKPOINT, DEMO_DEPOSITS, DEMO_GRID, DEMO_REPORT
from ..training.demo import demo_model_cached
from .activity import Activity
from .server import SessionFolder, set_threads
from .state_data import DataState

DEMO_MODEL_LABEL = "bundled South China checkpoint"
NO_MODEL = "no model"


class ModelState(param.Parameterized):
    """The model one user works with: how to train the next one, the fitted model itself, the grid
    prepared for it and the layers it predicts (probability, percentile, uncertainty, novelty, ...), and
    the label-free MSTGAT of uploaded point samples with their scores. A new model is installed by
    :meth:`.state.Session.install_model`."""

    # ---- how to train
    variant = param.Selector(default="mstgat", objects=list(VARIANTS))
    scales = param.String(default="1,2,3", label="Scales (cells)")
    pretraining = param.Boolean(default=True, label="Pretrain on every cell (no labels), then fine-tune")
    use_deposits = param.Boolean(default=True, label="Learn from the deposits (off: label-free, no deposits)")
    members = param.Integer(default=5, bounds=(1, 20), label="Ensemble members (with pretraining)")
    epochs = param.Integer(default=30, bounds=(1, 1000), label="Epochs (pretraining, or training from scratch)")
    seed = param.Integer(default=0, bounds=(0, None), label="Training seed")
    d_model = param.Integer(default=32, bounds=(8, 128), label="Transformer width")

    # ---- the model
    fitted = param.Parameter(default=None, precedence=-1)
    prepared = param.Parameter(default=None, precedence=-1)
    probability = param.Parameter(default=None, precedence=-1)
    layers = param.Parameter(default=None, precedence=-1)  # predict_layers Dataset
    label = param.String(default=NO_MODEL, precedence=-1)
    point_model = param.Parameter(default=None, precedence=-1)  # PointModel (label-free, on the samples)
    point_scores = param.Parameter(default=None, precedence=-1)  # DataFrame: x, y, anomaly_score, ...
    point_outputs = param.Parameter(default=None, precedence=-1)  # PointScores: contributions, residuals

    def __init__(self, activity: Activity, data: DataState, folder: SessionFolder, **params):
        super().__init__(**params)
        self.activity, self.data, self.folder = activity, data, folder

    def install(self, fitted, prepared, layers, label: str) -> None:
        """Make ``fitted`` (with its prepared grid and predicted layers) the model."""
        self.fitted = fitted
        self.prepared = prepared
        self.probability = layers["probability"]
        self.layers = layers
        self.label = label

    def drop(self) -> None:
        """Forget the model (its outputs are dropped with the data they were predicted on)."""
        self.fitted = None
        self.label = NO_MODEL

    def clear_outputs(self) -> None:
        """Drop everything predicted on the current data (the fitted model is kept, to apply to new data)."""
        self.probability = None
        self.layers = None
        self.prepared = None
        self.point_model = None
        self.point_scores = None
        self.point_outputs = None

    def predict(self, fitted) -> tuple:
        """Prepare the grid for ``fitted`` and predict its layers (blocking): ``(prepared, layers)``."""
        set_threads()
        return fitted.prepare(self.data.ds), fitted.predict_layers(self.data.ds)

    def demo_model(self) -> tuple | None:
        """The bundled checkpoint on the demo grid, predicted once per process and shared by every session:
        ``(fitted, prepared, layers)`` with this session's own copy of the network; None without a bundled
        checkpoint."""
        import copy

        if not DEMO_CHECKPOINT.exists():
            return None
        set_threads()
        fitted, prepared, layers = demo_model_cached(
            str(DEMO_CHECKPOINT), str(DEMO_GRID), str(DEMO_DEPOSITS), warm_up=warm_up_explanations
        )
        return copy.deepcopy(fitted), prepared, layers

    def provenance(self) -> str:
        """Markdown: what the current model was trained on and how, and for the bundled checkpoint
        its cross-validated score from the benchmark report (docs/results/south_china_li.json)."""
        import ast
        import json

        fitted = self.fitted
        if fitted is None:
            return ""
        meta = fitted.metadata or {}
        lines = [
            f"**{self.label}** ({fitted.config.variant}, scales {list(fitted.config.scales)}, "
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
        if self.label == DEMO_MODEL_LABEL:
            try:
                r = json.loads(DEMO_REPORT.read_text())
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

    def fit(self, on_epoch=None) -> tuple:
        """Fit a model on the data with the chosen settings (blocking); changes no param.

        Parameters
        ----------
        on_epoch : callable, optional
            Called per epoch with a :class:`~mstgat_core.training.pretrain.PretrainLog`, or an
            :class:`~mstgat_core.training.train.EpochLog` when training from scratch.

        Returns
        -------
        tuple
            ``(fitted, label, status)``: the model, its name, and the status line that says how it was fitted.
        """
        from ..training.pipeline import fit, pretrain_backbone
        from ..training.pretrain import PretrainConfig
        from ..training.train import TrainConfig

        set_threads()
        data = self.data
        if data.ds is None:
            raise DataError("load data first")
        if not data.elements:
            raise DataError("select at least one element")
        label_free = not self.use_deposits or data.deposit_mask is None
        if label_free and not self.pretraining:
            raise DataError("without deposits the model learns by pretraining: tick the pretraining box")
        model_config = {"variant": self.variant, "scales": parse_scales(self.scales), "d_model": self.d_model}
        if self.d_model % 4:
            raise DataError("the Transformer width must be a multiple of 4 (the head count)")
        train_config = TrainConfig(epochs=self.epochs, seed=self.seed, min_epochs=min(30, self.epochs))
        cancel = self.activity.cancel_event
        cancel.clear()
        if label_free:
            fitted = pretrain_backbone(
                data.ds,
                model_config,
                PretrainConfig(epochs=self.epochs, seed=self.seed),
                transform=data.transform,
                elements=list(data.elements),
                callback=on_epoch,
                cancel=cancel,
            )
            why = "deposits switched off" if data.deposit_mask is not None else "no deposits loaded"
            status = (
                f"label-free {self.variant} ({why}): pretrained on every cell, the map ranks cells by how "
                "badly their elements are predicted from their other elements and neighbours"
            )
            return fitted, f"label-free {self.variant} (no deposits)", status
        fitted = fit(
            data.ds,
            data.deposit_mask,
            model_config,
            train_config,
            transform=data.transform,
            elements=list(data.elements),
            callback=on_epoch,
            cancel=cancel,
            members=self.members if self.pretraining else 1,
            pretrain_config=PretrainConfig(epochs=self.epochs, seed=self.seed),
            pretrained=self.pretraining,
        )
        res = fitted.train_result
        if self.pretraining:
            label = f"pretrained {self.variant}, {self.members} member(s)"
            how = f"inner CV over {res.inner_folds} folds" if res.chosen_by == "inner-cv" else "defaults (one cluster)"
            status = f"{label}: {res.route} route, head share {res.share:g}, C {res.C:g} ({how})"
            if res.share == 0:
                status += "; the deposits did not improve on the label-free score, so the map is that score"
        else:
            label = f"trained {self.variant} from scratch ({len(res.history)} epochs)"
            status = (
                f"trained {self.variant}: {len(res.history)} epochs, best validation AUC "
                f"{res.best_val_auc:.3f} at epoch {res.best_epoch}, {res.seconds:.0f} s"
            )
        return fitted, label, status

    def score_samples(self, on_epoch=None) -> str:
        """Pretrain a label-free MSTGAT on the uploaded samples themselves (blocking); fills
        ``point_model``, ``point_scores`` (x, y in the map's CRS, the sample's name, lon, lat, score,
        percentile, top elements) and
        ``point_outputs``; returns the status line."""
        from scipy.stats import rankdata

        from ..training.point_model import pretrain_points
        from ..training.pretrain import PretrainConfig

        set_threads()
        if self.data.samples is None:
            raise DataError("no point samples: upload a point file (CSV or GeoPackage) to score its samples")
        elements = [e for e in self.data.elements if e in self.data.samples.elements] or None
        samples = self.data.samples
        if elements is not None and elements != samples.elements:
            import dataclasses

            samples = dataclasses.replace(samples, elements=elements)
        model = pretrain_points(
            samples, pretrain_config=PretrainConfig(epochs=self.epochs, seed=self.seed), callback=on_epoch
        )
        scores = model.scores()
        names = self.data.sample_names()
        table = pd.DataFrame(
            {
                "x": model.graph.xy[:, 0],
                "y": model.graph.xy[:, 1],
                "sample": names["sample"].to_numpy(),
                "lon": names["lon"].to_numpy(),
                "lat": names["lat"].to_numpy(),
                "anomaly_score": scores.anomaly_score,
                "percentile": 100.0 * rankdata(scores.anomaly_score) / len(scores.anomaly_score),
                "top_elements": scores.top_elements(3),
            }
        )
        model.nearest(float(table["x"].iloc[0]), float(table["y"].iloc[0]))  # the clicks' KD-tree, built once here
        self.point_model, self.point_scores, self.point_outputs = model, table, scores
        return (
            f"scored {len(table)} samples without deposits (MSTGAT on the samples: "
            + "; ".join(model.graph.describe().splitlines())
            + "); click a sample for its explanation"
        )

    def ranked_samples(self) -> pd.DataFrame:
        """The scored samples from the highest score down: name, lon, lat, score, percentile, leading
        elements; the index is the sample's row in ``point_scores`` (empty before scoring)."""
        columns = ["sample", "lon", "lat", "anomaly_score", "percentile", "top_elements"]
        if self.point_scores is None:
            return pd.DataFrame(columns=columns)
        ranked = self.point_scores[columns].sort_values("anomaly_score", ascending=False, kind="stable")
        return ranked.rename(columns={"anomaly_score": "score", "top_elements": "leading elements"})

    def sample_scores_table(self) -> pd.DataFrame:
        """The scored samples as ``mstgat score`` writes them: every input column as read, then the score, its
        percentile, the leading elements, each element's contribution and each scale's weight."""
        from ..training.scoring import point_score_table

        if self.point_scores is None:
            raise DataError("no sample scores to export: press 'Score the samples' first")
        samples = self.data.samples
        return point_score_table(samples.raw, self.point_outputs, self.point_model.graph.scales)

    def cell_outputs(self, row: int, col: int) -> dict:
        """The model's map layers at one cell (percentile, ensemble spread, novelty, ...) and, for a grid made
        from samples, its distance to the nearest sample; NaN-free."""
        out = {}
        support = self.data.support
        if support is not None and np.isfinite(support.values[row, col]):
            out["nearest_sample"] = float(support.values[row, col])
            out["median_spacing"] = float(support.attrs["median_spacing"])
            out["spacing_units"] = support.attrs["units"]
        if self.layers is None:
            return out
        for name in ("percentile", "uncertainty", "top_agreement", "novelty", "label_free", "calibrated"):
            if name in self.layers:
                value = float(self.layers[name].values[row, col])
                if np.isfinite(value):
                    out[name] = value
        return out

    def checkpoint_bytes(self) -> _io.BytesIO:
        """The model as a ``.safetensors`` checkpoint (with the data's provenance), for a download."""
        from ..training.checkpoint import save_checkpoint

        if self.fitted is None:
            raise DataError("no model to save: train or load one first")
        path = self.folder.path / "mstgat_model.safetensors"
        save_checkpoint(self.fitted, path, data=self.data.ds)
        return _io.BytesIO(path.read_bytes())


def warm_up_explanations(fitted, prepared) -> None:
    """Explain one cell once per process: torch's first pass through the explanation path takes about
    a second more than the next, which the first click of the first student would otherwise pay."""
    from .. import interpret

    rows, cols = np.nonzero(prepared.graph.mask)
    if len(rows):
        interpret.explain_cell(
            fitted, prepared, row=int(rows[len(rows) // 2]), col=int(cols[len(cols) // 2]), ig_steps=16
        )
