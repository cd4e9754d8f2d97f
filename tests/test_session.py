"""The dashboard's Panel-free Session: state transitions without a browser."""

import pytest

from mstgat_core.errors import DataError


@pytest.fixture
def session(small_scenario):
    from mstgat_core.dashboard.state import Session

    s = Session(epochs=1, members=1)
    s.set_data(small_scenario.grid, small_scenario.deposits, "small synthetic")
    yield s
    s.cleanup()


def test_label_free_training_when_the_deposits_are_switched_off(session):
    assert session.deposit_mask is not None
    session.use_deposits = False
    fitted = session.train()
    assert fitted.model.head.share.item() == 0.0  # the map is the label-free score
    assert session.model_label.startswith("label-free") and "deposits switched off" in session.status
    assert session.probability is not None and session.layer == "probability"
    assert "model: label_free" in session.layer_options()


def test_label_free_training_without_deposits_and_its_refusal_without_pretraining(session, small_scenario):
    session.set_data(small_scenario.grid, None, "no deposits")
    session.pretraining = False
    with pytest.raises(DataError, match="tick the pretraining box"):
        session.train()
    assert session.fitted is None
    session.pretraining = True
    session.train()
    assert "no deposits loaded" in session.status


def test_zone_outline_is_a_share_of_the_area_and_counts_the_deposits(session):
    import numpy as np

    assert "No model yet" in session.zone_readout()
    session.train()
    score = session.probability.values
    valid = np.isfinite(score)
    deposits = np.asarray(session.deposit_mask.values, dtype=bool) & valid
    counts = []
    for share, label in ((0.05, "top 5 %"), (0.20, "top 20 %")):
        session.top_share = label
        cut = session.zone_cut()
        assert np.mean(score[valid] >= cut) == pytest.approx(share, abs=0.005)  # a share of the valid cells
        counts.append(int((score[deposits] >= cut).sum()))
        assert f"holds {counts[-1]} of {int(deposits.sum())} deposit cells" in session.zone_readout()
    assert counts[0] <= counts[1]


def test_the_demo_model_is_predicted_once_per_process_and_each_session_has_its_own_network():
    from mstgat_core.dashboard.state import _DEMO_MODEL_CACHE, Session

    sessions = [Session(), Session()]
    try:
        for s in sessions:
            s.load_demo()
        assert len(_DEMO_MODEL_CACHE) == 1
        a, b = sessions
        assert a.model_layers is b.model_layers  # one prediction shared (read-only)
        assert a.fitted is not b.fitted and a.fitted.model is not b.fitted.model  # networks copied
        assert a.layer == "probability" and a.model_label == "bundled South China checkpoint"
    finally:
        for s in sessions:
            s.cleanup()
