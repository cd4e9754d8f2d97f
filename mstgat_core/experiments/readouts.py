"""The embedding and residual readouts of fine-tuning compared on the South China grid (issue 27).

The benchmark's protocol (whole deposit clusters, 5 folds, seeds 2-4, one
backbone pretrained per seed and shared by every method), restricted to
``mstgat`` (the embedding readout, the default), ``mstgat_residual`` (the
residual readout: same backbones, folds and seeds) and the label-free score;
then the residual readout fitted on every deposit, its weights per element.

Run: ``python -m mstgat_core.experiments.readouts --out docs/results/experiments/south_china_readouts.json``
(18 minutes of cross-validation on 2 cores shared with other work, then one more pretraining).
"""

from __future__ import annotations

import argparse
import json
import time

from ..evaluation.crossval import LABEL_FREE, RESIDUAL, cross_validate_grid
from ..experiments.benchmark import _south_china
from ..interpret import residual_weights
from ..training.finetune import FineTuneConfig
from ..training.pipeline import fit, pretrain_backbone
from ..training.pretrain import PretrainConfig

METHODS = ("mstgat", RESIDUAL, LABEL_FREE)


def per_fold(report: dict, method: str) -> list[dict]:
    """Seed, fold, ROC-AUC and the route fine-tuning chose of every fold of ``method``."""
    rows = report["results"][method]["folds"]
    return [
        {
            "seed": r["seed"],
            "fold": r["fold"],
            "roc_auc": r["roc_auc"],
            "route": (r.get("inner") or {}).get("route"),
            "share": (r.get("inner") or {}).get("share"),
        }
        for r in rows
    ]


def run(seed: int = 2) -> dict:
    grid, cells, description = _south_china()
    start = time.perf_counter()
    report = cross_validate_grid(grid, cells, methods=METHODS)
    cv_seconds = time.perf_counter() - start
    summary = {
        m: {k: v for k, v in report["results"][m].items() if k.endswith("_mean") or k.endswith("_std")} for m in METHODS
    }
    backbone = pretrain_backbone(grid, pretrain_config=PretrainConfig(seed=seed))
    fitted = fit(grid, cells, backbone=backbone, finetune_config=FineTuneConfig(seed=seed, readout="residual"))
    weights = residual_weights(fitted)
    return {
        "dataset": description,
        "protocol": {k: report["protocol"][k] for k in ("seeds", "n_folds", "method", "buffer", "link_distance")},
        "summary": summary,
        "comparison": {m: report["comparison"].get(m) for m in METHODS[1:]},
        "folds": {m: per_fold(report, m) for m in METHODS[:2]},
        "whole_grid_residual_fit": {
            "seed": seed,
            "route": fitted.train_result.route,
            "share": fitted.train_result.share,
            "C": fitted.train_result.C,
            "weights": dict(sorted(weights.items(), key=lambda kv: -kv[1])),
        },
        "cv_seconds": cv_seconds,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = run()
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    for m, s in result["summary"].items():
        print(f"{m}: ROC-AUC {s['roc_auc_mean']:.3f}, PR-AUC {s['pr_auc_mean']:.3f}")
    print("weights:", {k: round(v, 3) for k, v in list(result["whole_grid_residual_fit"]["weights"].items())[:8]})


if __name__ == "__main__":
    main()
