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
* ``scale_readout`` (scenarios 0-3: small, large, small, large): each
  scale's contribution to the score ranks the planted scale first in at
  least 3 of 4. Measured when written: 4 of 4 (24 scenarios: 71 %). By
  chance (1/3 per scenario) 11 %; a model that always names the same scale
  gets 2 of 4 and fails (at least one small and one large must be right).
  The default
  model's scale weights cannot do this (learned without labels, they put
  r=1 first everywhere; docs/results.md), so the scale claim rests on this
  option.
"""

import numpy as np
import pytest

from mstgat_core.data.io import deposit_cells
from mstgat_core.experiments import explain_benchmark as eb
from mstgat_core.interpret import summarise
from mstgat_core.training.pipeline import fit

SEEDS = range(6)


def read(spec, model_config=None):
    scenario, truth = eb.make(spec)
    cells = deposit_cells(scenario.grid, scenario.deposits)
    fitted = fit(scenario.grid, cells, model_config)
    summary = summarise(fitted, fitted.prepare(scenario.grid), cells)
    return summary, truth, list(fitted.elements)


@pytest.mark.slow
@pytest.mark.xdist_group("explain_recovery_elements")  # the two tests fit 10 models: one worker each
def test_indicator_ranking_recovers_the_ore_elements():
    records = []
    for spec in eb.specs(len(SEEDS)):
        summary, truth, elements = read(spec)
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
@pytest.mark.xdist_group("explain_recovery_scales")
def test_scale_contributions_rank_the_planted_scale_first():
    first = []
    for spec in eb.specs(4):
        summary, truth, _ = read(spec, {"scale_readout": True})
        contributions = summary["scale_contributions"]
        best = max(contributions, key=contributions.get)
        first.append(float(best) == truth["ore_scale"])
    assert np.sum(first) >= 3, first
