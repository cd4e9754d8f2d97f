"""Explanations of the default model recover planted truth (issue 14), on a fixed set of benchmark scenarios.

Scenarios 0-5 of ``mstgat benchmark --suite explain`` (closed compositions;
3 ore elements, 2 decoy elements at the ore's scale, the ore elements again
at another scale; kinds small/large alternate), read through the product's
own path: ``summarise`` over the deposit cells, as ``mstgat explain
--deposits`` does.

* Default model (pretrained, 5 members): the indicator ranking (IG carried by
  enriched elements) has all 3 ore elements in its top 3 in at least 4 of the
  6 scenarios, and a permutation null (element labels shuffled) gives p <
  0.01. Measured when written: 5 of 6 (24 scenarios: 88 %). By chance
  (P(top 3 = ore) = 1/120 per scenario) the test passes with probability
  about 15 / 120^4 = 7e-8.
* ``scale_readout`` (the same 6 scenarios: small, large, small, ...): each
  scale's contribution to the score ranks the planted scale first in at
  least 4 of 6. Measured when written: 5 of 6 (scenario 1, large, missed).
  By chance (1/3 per scenario) 73 / 729 = 10 %; a model that always names
  the same scale gets 3 of 6 and fails. The default
  model's scale weights cannot do this (learned without labels, they put
  r=1 first everywhere; docs/results.md), so the scale claim rests on this
  option.

The scale readout is a head over the default's backbone (pretraining does not
depend on it): each scenario is pretrained once, for both tests, which
therefore share one xdist group and one cache.
"""

from functools import cache

import numpy as np
import pytest

from mstgat_core.data.io import deposit_cells
from mstgat_core.experiments import explain_benchmark as eb
from mstgat_core.interpret import summarise
from mstgat_core.training.pipeline import fit

SEEDS = range(6)


@cache
def default_fit(index: int):
    """Scenario ``index`` of the explanation benchmark, its deposit cells and the default model fitted on it."""
    scenario, truth = eb.make(eb.specs(len(SEEDS))[index])
    cells = deposit_cells(scenario.grid, scenario.deposits)
    return scenario, truth, cells, fit(scenario.grid, cells)


def read(index: int, scale_readout: bool = False):
    scenario, truth, cells, fitted = default_fit(index)
    if scale_readout:
        fitted = fit(scenario.grid, cells, {"scale_readout": True}, backbone=fitted)
    summary = summarise(fitted, fitted.prepare(scenario.grid), cells)
    return summary, truth, list(fitted.elements)


@pytest.mark.slow
@pytest.mark.xdist_group("explain_recovery")  # six pretrainings shared by the two tests
def test_indicator_ranking_recovers_the_ore_elements():
    records = []
    for index, spec in enumerate(eb.specs(len(SEEDS))):
        summary, truth, elements = read(index)
        scores = [summary["enrichment_inside"][e] for e in elements]
        records.append(
            {
                "spec": {"seed": spec.seed, "kind": spec.kind},
                "truth": truth,
                "elements": elements,
                "scales": [],
                "elements_scores": {"ig_enrichment": scores},
            }
        )
    stats = eb.score_records(records, permutations=2000)["elements"]["ig_enrichment"]
    hits = stats["top_k"]["value"] * len(records)
    assert hits >= 4, [r["elements_scores"] for r in records]
    assert stats["top_k"]["p"] < 0.01


@pytest.mark.slow
@pytest.mark.xdist_group("explain_recovery")
def test_scale_contributions_rank_the_planted_scale_first():
    first = []
    for index in SEEDS:
        summary, truth, _ = read(index, scale_readout=True)
        contributions = summary["scale_contributions"]
        best = max(contributions, key=contributions.get)
        first.append(float(best) == truth["ore_scale"])
    assert np.sum(first) >= 4, first
