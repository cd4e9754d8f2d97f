"""The members' spread on test folds: percentiles by hand, the pooled question with planted answers, and the
figures a cross-validation stores."""

import dataclasses

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, rankdata

from mstgat_core.evaluation.uncertainty import uncertainty_figures, uncertainty_markdown, uncertainty_summary


@dataclasses.dataclass
class _Fold:
    test_region: np.ndarray
    test_pos: np.ndarray


def test_fold_figures_are_percentiles_in_the_test_region():
    rng = np.random.default_rng(0)
    n = 200
    region = np.zeros(n, dtype=bool)
    region[50:150] = True
    scores = rng.normal(size=n)
    spread = np.where(rng.random(n) < 0.3, 0.0, rng.random(n))  # ties at 0
    fold = _Fold(region, np.array([60, 70, 140]))
    figures = uncertainty_figures(spread, scores, fold)
    inside = np.flatnonzero(region)
    for d in figures["deposits"]:
        position = int(np.flatnonzero(inside == d["node"])[0])
        assert d["percentile"] == pytest.approx(100 * rankdata(scores[inside])[position] / len(inside))
        assert d["spread_percentile"] == pytest.approx(100 * rankdata(spread[inside])[position] / len(inside))
    assert figures["nonzero_share"] == pytest.approx(np.mean(spread[inside] > 0))
    assert figures["mean_spread"] == pytest.approx(spread[inside].mean())


def _row(deposits, nonzero=0.9):
    return {"uncertainty": {"nonzero_share": nonzero, "mean_spread": 0.01, "deposits": deposits}}


def test_the_summary_averages_each_cell_over_seeds_and_asks_if_misses_carry_more_spread():
    """Planted: cells 0-5 well ranked with low spread, 6-11 missed with high spread, over two seeds; a third
    row with spread 0 everywhere (label-free route) is counted and left out."""
    rows = []
    for seed in range(2):
        well = [{"node": i, "percentile": 99.0, "spread_percentile": 20.0 + i + seed} for i in range(6)]
        missed = [{"node": i, "percentile": 60.0, "spread_percentile": 80.0 + i - seed} for i in range(6, 12)]
        rows.append(_row(well + missed))
    rows.append(_row([{"node": 0, "percentile": 10.0, "spread_percentile": 50.0}], nonzero=0.0))
    s = uncertainty_summary(rows)
    assert (s["rows"], s["rows_all_zero"], s["cells"], s["misranked"], s["well_ranked"]) == (3, 1, 12, 6, 6)
    assert s["well_ranked_spread_percentile"] == pytest.approx(np.mean([20.5 + i for i in range(6)]))
    assert s["misranked_spread_percentile"] == pytest.approx(np.mean([79.5 + i for i in range(6, 12)]))
    expected = mannwhitneyu([79.5 + i for i in range(6, 12)], [20.5 + i for i in range(6)], alternative="greater")
    assert s["p"] == pytest.approx(expected.pvalue) and s["p"] < 0.01
    # the reverse planting: missed cells with the lower spread give a large p
    flipped = [
        _row([{**d, "spread_percentile": 100 - d["spread_percentile"]} for d in r["uncertainty"]["deposits"]])
        for r in rows[:2]
    ]
    assert uncertainty_summary(flipped)["p"] > 0.99
    table = "\n".join(uncertainty_markdown({"mstgat": s, "other": None}))
    assert "| mstgat | 2/3 |" in table and "other" not in table
    assert uncertainty_summary([{"roc_auc": 0.5}]) is None


def test_a_grid_cross_validation_stores_the_members_spread_of_each_fold():
    from mstgat_core.data.io import deposit_cells
    from mstgat_core.data.synthetic import make_scenario
    from mstgat_core.evaluation.crossval import cross_validate_grid
    from mstgat_core.training.pretrain import PretrainConfig

    scenario = make_scenario(shape=(48, 48), n_elements=6, seed=3)
    report = cross_validate_grid(
        scenario.grid,
        deposit_cells(scenario.grid, scenario.deposits),
        ("mstgat", "mstgat_k1", "mstgat_label_free"),
        folds=2,
        seeds=(1,),
        model_config={"scales": (1,), "d_model": 16, "gat_hidden": 16},
        pretrain_config=PretrainConfig(epochs=2, steps_per_epoch=2),
    )
    for row in report["results"]["mstgat"]["folds"]:
        u = row["uncertainty"]
        assert len(u["deposits"]) == row["n_test_pos"]
        # the heads' bootstrap when they have a share, else the score over element groupings
        assert u["nonzero_share"] > 0.95
    assert all("uncertainty" not in row for row in report["results"]["mstgat_k1"]["folds"])  # one member: no spread
    for row in report["results"]["mstgat_label_free"]["folds"]:  # a label-free model of 5 members
        assert row["uncertainty"]["nonzero_share"] > 0.95
