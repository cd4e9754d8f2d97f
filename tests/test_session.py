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


def test_layers_are_grouped_and_a_click_reports_rank_uncertainty_and_novelty():
    from mstgat_core.dashboard.state import Session

    s = Session()
    try:
        s.load_demo()
        groups = s.layer_groups()
        assert list(groups) == ["Model outputs", "Uncertainty", "Elements"]
        assert "model: uncertainty" in groups["Uncertainty"] and "element: Li" in groups["Elements"]
        assert sorted(sum(groups.values(), [])) == sorted(s.layer_options())
        rows, cols = s.prepared.graph.rows_cols
        row, col = int(rows[500]), int(cols[500])
        x, y = float(s.ds["x"][col]), float(s.ds["y"][row])
        exp = s.explain_at(x, y)
        for name in ("percentile", "uncertainty", "top_agreement", "novelty"):
            assert exp.attrs[name] == pytest.approx(float(s.model_layers[name].values[row, col]))
    finally:
        s.cleanup()


def test_synthetic_truth_is_shown_where_it_was_planted():
    import numpy as np

    from mstgat_core.dashboard.state import Session

    s = Session(synth_rows=64, synth_cols=64, synth_seed=0)
    try:
        s.load_synthetic()
        table = s.truth_table()
        assert len(table) == sum(len(a["centres"]) for a in s.truth["anomalies"])
        ore = table[table["kind"].str.startswith("ore")]
        # every deposit lies inside a planted ore circle (deposits are drawn within 0.4 x scale of a centre)
        dx = s.deposits.geometry.x.values[:, None] - ore["x"].values[None]
        dy = s.deposits.geometry.y.values[:, None] - ore["y"].values[None]
        assert (np.hypot(dx, dy) <= ore["radius"].values[None]).any(axis=1).all()
        s.load_demo()
        assert s.truth is None and s.truth_table() is None
    finally:
        s.cleanup()


def test_the_bundled_model_says_what_it_was_trained_on_and_its_cross_validated_score():
    import json

    from mstgat_core.dashboard.state import DEMO_REPORT, Session

    s = Session()
    try:
        assert s.model_provenance() == ""
        s.load_demo()
        text = s.model_provenance()
        expected = json.loads(DEMO_REPORT.read_text())["results"]["mstgat"]["roc_auc_mean"]
        assert f"ROC-AUC {expected:.3f}" in text
        assert "Pretrained without labels: 30 epochs" in text and "5 member(s)" in text
    finally:
        s.cleanup()
