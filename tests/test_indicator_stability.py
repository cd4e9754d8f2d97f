"""Stability of the indicator ranking: agreement statistics by hand, the weight shuffle, one small run."""

import numpy as np
import pytest
import torch

from mstgat_core.errors import DataError
from mstgat_core.experiments import indicator_stability as st

torch.set_num_threads(1)


def test_agreement_by_hand():
    a = np.arange(10.0)
    same = st.agreement([a, a + 1, 2 * a])
    assert same == {"kendall_tau": pytest.approx(1.0), "top_overlap": 1.0, "pairs": 3}
    reverse = st.agreement([a, -a])
    assert reverse["kendall_tau"] == pytest.approx(-1.0) and reverse["top_overlap"] == 0.0
    assert np.isnan(st.agreement([a])["kendall_tau"])


def test_shuffled_weights_permute_each_parameter(small_fitted):
    fitted, _ = small_fitted
    shuffled = st.shuffled_weights(fitted, seed=3)
    changed = 0
    for p, q in zip(fitted.model.parameters(), shuffled.model.parameters()):
        torch.testing.assert_close(torch.sort(p.detach().view(-1))[0], torch.sort(q.detach().view(-1))[0])
        changed += int(not torch.equal(p, q))
    assert changed > 10
    for (name, b), c in zip(fitted.model.named_buffers(), shuffled.model.buffers()):
        assert torch.equal(b, c), name  # statistics kept


@pytest.fixture(scope="module")
def small_fitted():
    from mstgat_core.data import io
    from mstgat_core.data.synthetic import make_scenario
    from mstgat_core.training.pipeline import fit
    from mstgat_core.training.pretrain import PretrainConfig

    scenario = make_scenario(shape=(48, 48), seed=1)
    cells = io.deposit_cells(scenario.grid, scenario.deposits)
    quick = PretrainConfig(epochs=2, steps_per_epoch=2)
    return fit(scenario.grid, cells, {"scales": (1, 2)}, pretrain_config=quick, members=3), (scenario, cells, quick)


def test_stability_report(small_fitted):
    _, (scenario, cells, quick) = small_fitted
    steps = []
    report = st.stability(
        scenario.grid,
        cells,
        {"scales": (1, 2)},
        seeds=(1, 2),
        folds=2,
        pretrain_config=quick,
        progress=lambda done, message: steps.append(message),
    )
    assert steps == ["seed 1", "fold 1", "fold 2", "seed 2"]
    assert report["seeds"]["n"] == 2 and report["folds"]["n"] == 2
    assert report["members"]["n"] == 5  # the default ensemble
    assert len(report["consensus"]) == len(report["elements"]) == 10
    assert -1 <= report["randomised"]["kendall_tau"] <= 1
    with pytest.raises(DataError, match="2 seeds"):
        st.stability(scenario.grid, cells, seeds=(1,))
