"""The evaluation part of a dashboard session: spatial cross-validation of the data's deposits, its table
and the fold drawn on the map (Panel-free; see :mod:`.state`)."""

from __future__ import annotations

import io as _io

import numpy as np
import pandas as pd
import param

from ..errors import DataError
from ..evaluation.crossval import METHODS
from ..graphs.graph import parse_scales
from .activity import Activity
from .server import set_threads
from .state_data import DataState
from .state_model import ModelState

NO_FOLD = "none"


def fold_label(role: dict) -> str:
    """A fold's name in the menu ("seed 1, fold 2")."""
    return f"seed {role['seed']}, fold {role['fold']}"


class EvaluationState(param.Parameterized):
    """Spatial cross-validation on the data's deposits: its settings (methods, folds, seeds), its report,
    each fold's test region and deposits, and the fold chosen to be drawn on the map. Dropped with the data."""

    methods = param.ListSelector(
        default=["mstgat", "best_single_element", "mahalanobis"], objects=list(METHODS), label="Methods"
    )
    folds = param.Integer(default=3, bounds=(2, 10), label="Folds")
    seeds = param.Integer(default=1, bounds=(1, 5), label="Seeds")
    epochs = param.Integer(default=30, bounds=(1, 1000), label="Epochs of the from-scratch ablation")
    fold = param.Selector(default=NO_FOLD, objects=[NO_FOLD], label="Fold shown on the map")

    report = param.Parameter(default=None, precedence=-1)
    roles = param.Parameter(default=None, precedence=-1)  # per fold: test region, train/held-out deposits

    def __init__(self, activity: Activity, data: DataState, model: ModelState, **params):
        super().__init__(**params)
        self.activity, self.data, self.model = activity, data, model

    def clear(self) -> None:
        """Drop the report (of data no longer loaded)."""
        self.report = None
        self.roles = None
        self.param.fold.objects = [NO_FOLD]
        self.fold = NO_FOLD

    def cross_validate(self, progress=None) -> dict:
        """Cross-validate the chosen methods on the data's deposits (blocking), with the model settings'
        scales and width and the data's transform and elements; stores ``report`` and the folds' ``roles``
        and shows the first fold. ``progress(done, total, msg)`` is called per fold."""
        from ..evaluation.crossval import cross_validate_grid, fold_roles
        from ..training.train import TrainConfig

        set_threads()
        data = self.data
        if data.ds is None or data.deposit_mask is None:
            raise DataError("cross-validation needs data with deposits")
        if not self.methods:
            raise DataError("choose at least one method")
        self.activity.cancel_event.clear()
        model_config = {"scales": parse_scales(self.model.scales), "d_model": self.model.d_model}
        train_config = TrainConfig(epochs=self.epochs, min_epochs=min(30, self.epochs))
        report = cross_validate_grid(
            data.ds,
            data.deposit_mask,
            list(self.methods),
            folds=self.folds,
            seeds=tuple(range(1, self.seeds + 1)),
            model_config=model_config,
            train_config=train_config,
            transform=data.transform,
            elements=list(data.elements),
            progress=progress,
            cancel=self.activity.cancel_event,
        )
        self.roles = fold_roles(data.ds, data.deposit_mask, report)
        self.param.fold.objects = [NO_FOLD] + [fold_label(r) for r in self.roles]
        self.fold = fold_label(self.roles[0]) if self.roles else NO_FOLD
        self.report = report
        return report

    def fold_shown(self) -> dict | None:
        """The cross-validation fold chosen to be drawn on the map, or None."""
        for role in self.roles or []:
            if fold_label(role) == self.fold:
                return role
        return None

    def fold_readout(self) -> str:
        """One line under the map naming the cross-validation fold drawn on it and its key ("" when none)."""
        role = self.fold_shown()
        if role is None:
            return ""
        return (
            f"**Drawn on the map: cross-validation {self.fold}** ({int(role['test_deposits'].sum())} deposit cells "
            f"held out, {int(role['train_deposits'].sum())} trained on): its test region dashed magenta, held-out "
            "deposit cells magenta squares, those trained on green dots, those the buffer dropped grey crosses."
        )

    def table(self) -> pd.DataFrame:
        """The report as one row per method: ROC and PR AUC (with chance), capture, verdict against MSTGAT."""
        if not self.report:
            return pd.DataFrame()
        rows = []
        comparison = self.report.get("comparison", {})
        for method, r in self.report.get("results", {}).items():
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

    def csv(self) -> _io.BytesIO:
        """:meth:`table` as CSV, for a download."""
        if not self.report:
            raise DataError("run a cross-validation first")
        return _io.BytesIO(self.table().to_csv(index=False).encode())
