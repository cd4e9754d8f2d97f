"""The Learn exercise: its checks against planted truth (interpret.teaching) and the exercise card of a session
(start, click, answer, read the feedback), without a browser and without training (a stub explanation)."""

import json

import numpy as np
import pytest
import xarray as xr

from mstgat_core.errors import DataError
from mstgat_core.interpret import teaching
from mstgat_core.testing import run_in_a_fresh_loop

pytestmark = pytest.mark.usefixtures("synchronous_callbacks")  # widget callbacks run before the event returns


@pytest.fixture(scope="module")
def scenario():
    from mstgat_core.data.synthetic import make_scenario

    return make_scenario(shape=(64, 56), n_elements=6, seed=3)


def anomaly(truth, hosts: bool) -> dict:
    return next(a for a in truth["anomalies"] if a["hosts_deposits"] == hosts)


def explanation(attribution: dict, enriched: dict, scale_weights=None, row=0, col=0) -> xr.Dataset:
    """A cell's explanation in explain_cell's format (the variables the exercise reads)."""
    names = list(attribution)
    data = {
        "attribution": ("element", [attribution[e] for e in names]),
        "attribution_enriched": ("element", [enriched.get(e, 0.0) for e in names]),
    }
    coords = {"element": names}
    if scale_weights:
        data["scale_weights"] = ("scale", list(scale_weights.values()))
        coords["scale"] = list(scale_weights)
    return xr.Dataset(data, coords=coords, attrs={"row": row, "col": col})


# ------------------------------------------------------------------ the checks


def test_a_cell_is_ore_exactly_inside_the_planted_ore_circles(scenario):
    """The circles are the scenario's own ore footprint: a surveyed cell is ore iff it is in anomaly_mask."""
    truth = scenario.truth
    surveyed = np.isfinite(scenario.grid[truth["elements"][0]].values)
    ore = np.zeros_like(surveyed)
    for r, c in zip(*np.nonzero(surveyed)):
        ore[r, c] = teaching.planted_place(truth, r, c)["where"] == "ore"
    np.testing.assert_array_equal(ore, scenario.anomaly_mask)


def test_an_ore_centre_is_right_just_outside_partly_and_a_decoy_wrong(scenario):
    truth = scenario.truth
    ore, decoy = anomaly(truth, True), anomaly(truth, False)
    (r, c), s = ore["centres"][0], int(ore["scale"])
    centre = teaching.check_cell(truth, r, c)
    assert (centre["verdict"], centre["where"], centre["distance"]) == ("right", "ore", 0.0)
    assert all(e in centre["why"] for e in ore["elements"]) and "the centre of an ore anomaly" in centre["why"]
    assert teaching.check_cell(truth, r, c + s)["verdict"] == "right"  # on the circle: inside
    near = teaching.check_cell(truth, r, c + s + 1)  # one cell beyond the radius
    assert (near["verdict"], near["where"], near["outside"]) == ("partly", "background", 1.0)
    assert f"radius of {s} cells" in near["why"] and "just outside" in near["why"]
    far = teaching.check_cell(truth, r, c + s + 2)
    assert (far["verdict"], far["where"]) == ("wrong", "background")
    dr, dc = decoy["centres"][0]
    fooled = teaching.check_cell(truth, dr, dc)
    assert (fooled["verdict"], fooled["where"]) == ("wrong", "decoy")
    assert all(e in fooled["why"] for e in decoy["elements"]) and "no deposits" in fooled["why"]
    with pytest.raises(DataError, match="outside the 64 x 56 grid"):
        teaching.check_cell(truth, 64, 0)
    with pytest.raises(DataError, match="no planted truth"):
        teaching.check_cell(None, 1, 1)


def test_the_model_used_the_red_bars_pointing_right_among_those_shown(scenario):
    """Indicators: enriched elements with positive IG, among the largest |IG| the dashboard draws."""
    from mstgat_core.dashboard import plots_explain

    attribution = {"Li": 0.9, "Be": -0.2, "Nb": 0.5, "Sn": 0.7, "W": -0.8, "Cu": 0.05}
    enriched = {"Li": 0.9, "Be": -0.2, "Nb": 0.5, "Cu": 0.05}  # Sn raises the score but is depleted
    exp = explanation(attribution, enriched)
    assert teaching.model_indicators(exp) == ["Li", "Nb", "Cu"]
    assert teaching.model_indicators(exp, top=4) == ["Li", "Nb"]  # Cu's bar is not among the 4 drawn
    as_dict = {"attribution": attribution, "attribution_enriched": enriched}  # explain_report's format
    assert teaching.model_indicators(as_dict) == ["Li", "Nb", "Cu"]
    assert teaching.SHOWN == plots_explain.TOP  # the bars drawn for a cell


def test_elements_are_checked_against_the_model_and_the_planted_ore(scenario):
    truth = scenario.truth
    ore, decoy = anomaly(truth, True), anomaly(truth, False)
    (r, c) = ore["centres"][0]
    a, b, d = ore["elements"][:3]
    used = explanation({a: 1.0, b: 0.6, decoy["elements"][0]: -0.3}, {a: 1.0, b: 0.6})
    right = teaching.check_elements(truth, r, c, [b, a], used)
    assert (right["verdict"], right["used"], right["planted"]) == ("right", [a, b], ore["elements"])
    assert f"the model used {a} and {b}, not {d}" in right["why"]  # the model missed a planted element
    partly = teaching.check_elements(truth, r, c, [a, d], used)
    assert (partly["verdict"], partly["missed"], partly["extra"]) == ("partly", [b], [d])
    assert teaching.check_elements(truth, r, c, [d], used)["verdict"] == "wrong"
    dr, dc = decoy["centres"][0]
    on_decoy = explanation({decoy["elements"][0]: 0.8}, {decoy["elements"][0]: 0.8})
    fooled = teaching.check_elements(truth, dr, dc, [decoy["elements"][0]], on_decoy)
    assert fooled["verdict"] == "right" and "the decoy raised its score" in fooled["why"]
    with pytest.raises(DataError, match="choose at least one element"):
        teaching.check_elements(truth, r, c, [], used)
    with pytest.raises(DataError, match="not an element of this scenario: Au"):
        teaching.check_elements(truth, r, c, ["Au"], used)


def test_the_scale_is_checked_against_the_planted_radius_and_the_benchmark(scenario, tmp_path):
    truth = scenario.truth
    ore = anomaly(truth, True)
    (r, c), s = ore["centres"][0], int(ore["scale"])
    weights = explanation({"Li": 1.0}, {"Li": 1.0}, scale_weights={1: 0.5, 2: 0.3, 3: 0.2})
    benchmark = {"first": 0.5, "chance": 1 / 3, "by_kind": {"small": 1.0, "large": 0.0}}
    right = teaching.check_scale(truth, r, c, s, [1, 2, 3], weights, benchmark)
    assert (right["verdict"], right["expected"], right["weighted"]) == ("right", s, 1)
    assert "ranked the planted scale first at 50% of deposit cells" in right["why"] and "chance 33%" in right["why"]
    assert teaching.check_scale(truth, r, c, 1, [1, 2, 3], weights, benchmark)["verdict"] == "partly"
    assert teaching.check_scale(truth, r, c, 2, [1, 2, 3], weights, benchmark)["verdict"] == "wrong"
    assert teaching.check_scale(truth, r, c, 2, [1, 2], weights)["expected"] == 2  # the closest offered
    assert "has not been run" in teaching.check_scale(truth, r, c, s, [1, 2, 3], weights)["why"]
    with pytest.raises(DataError, match="pick one of the model's scales: 1, 2, 3"):
        teaching.check_scale(truth, r, c, 5, [1, 2, 3])
    report = json.loads(teaching.EXPLAIN_REPORT.read_text())["summary"]["scales"]["scale_weights"]
    assert teaching.benchmark_scale_agreement()["first"] == report["first"]
    assert teaching.benchmark_scale_agreement(tmp_path / "absent.json") is None


# ------------------------------------------------------------------ the exercise in a session


def alerts(card) -> dict:
    """The card's feedback alerts by step: (alert type, text) of the visible ones."""
    import panel as pn

    found = {}
    for alert in card.select(pn.pane.Alert):
        step = next(c for c in alert.css_classes if c.startswith("mstgat-exercise-feedback-")).rsplit("-", 1)[1]
        if alert.visible:
            found[step] = (alert.alert_type, alert.object)
    return found


def test_the_exercise_loads_its_survey_checks_a_click_and_answers_and_says_why():
    import panel as pn

    from mstgat_core.dashboard.components import LearnTab
    from mstgat_core.dashboard.jobs import Jobs
    from mstgat_core.dashboard.state import Session
    from mstgat_core.dashboard.state_exercise import START_FIRST, TRAIN_FIRST

    session = Session()
    try:
        session.data.param.update(synth_rows=48, synth_cols=48, synth_seed=1)
        session.evaluation.report = {"results": {}}  # something new data would discard: asked first
        tab = LearnTab(session, Jobs(session))
        card = tab._layout.objects[0]  # the exercise at the top of the tab, the text below it
        assert isinstance(card, pn.Card) and "Teaching mode" in tab._layout.objects[1].object
        assert session.exercise.check_cell() == {"verdict": None, "why": START_FIRST}
        assert alerts(card) == {"cell": ("info", START_FIRST)}

        run_in_a_fresh_loop(card.start())
        assert session.data.truth is None and "press Start the exercise again" in session.activity.notice
        run_in_a_fresh_loop(card.start())
        truth = session.data.truth
        assert truth is not None and session.data.label.startswith("synthetic scenario 48x48, seed 1")
        assert session.selection.show_truth is False and alerts(card) == {}  # the answers are hidden
        ore = anomaly(truth, True)
        assert not any(e in session.activity.status for e in ore["elements"])

        # step 1: a click at an ore centre (map coordinates, as the map's tap gives them)
        assert session.exercise.check_cell()["why"].startswith("Click a cell of the map first")
        r, c = ore["centres"][0]
        ds = session.data.ds
        session.explanation.clicked = session.explanation.cell_at(float(ds.x[c]) + 100, float(ds.y[r]) - 100)
        assert session.explanation.clicked == (r, c)
        assert session.exercise.check_cell()["verdict"] == "right"
        kind, text = alerts(card)["cell"]
        assert kind == "success" and text.startswith(f"**Right.** Row {r}, col {c} is the centre of an ore anomaly")

        # steps 2 and 3 without a model: train first, never an error
        assert session.exercise.check_elements() == {"verdict": None, "why": TRAIN_FIRST}
        assert session.exercise.check_scale()["why"] == TRAIN_FIRST
        assert session.activity.error == ""

        # the model's explanation of the cell (a stub): its red bars pointing right are the ore elements
        a, b, d = ore["elements"][:3]
        session.explanation.cell = explanation(
            {a: 0.9, b: 0.7, d: 0.4, "Cu": -0.5}, {a: 0.9, b: 0.7, d: 0.4}, {1: 0.6, 2: 0.3, 3: 0.1}, r, c
        )
        assert session.exercise.param.elements.objects == list(ds.data_vars)
        session.exercise.elements = [a, b]
        assert session.exercise.check_elements()["verdict"] == "partly"
        kind, text = alerts(card)["elements"]
        assert kind == "warning" and f"You missed {d}." in text
        session.exercise.elements = [a, b, d]
        assert alerts(card)["elements"][0] == "warning"  # the feedback is the last check's, until checked again
        assert session.exercise.check_elements()["verdict"] == "right"
        assert alerts(card)["elements"][0] == "success"

        assert session.exercise.param.scale.objects == [1, 2, 3]  # the Model card's scales, before training
        assert session.exercise.check_scale()["why"] == "Pick a scale."
        session.exercise.scale = 1  # the scale the model weighted most, not the anomaly's radius (3)
        assert session.exercise.check_scale()["verdict"] == "partly"
        kind, text = alerts(card)["scale"]
        assert kind == "warning" and "of the model's scales, r=3 is the closest" in text

        # new data clear the answers and their feedback
        session.set_data(session.data.ds, None, "the same grid, no truth")
        assert alerts(card) == {} and session.exercise.elements == [] and session.explanation.clicked is None
    finally:
        session.cleanup()


def test_the_exercise_card_offers_the_scenarios_elements_and_the_scales_as_buttons(dashboard_session):
    from bokeh.models import CheckboxButtonGroup, RadioButtonGroup
    from bokeh_models import bokeh_root

    from mstgat_core.dashboard.exercise_view import exercise_card
    from mstgat_core.dashboard.jobs import Jobs

    root = bokeh_root(exercise_card(dashboard_session, Jobs(dashboard_session)))
    (elements,) = [m for m in root.references() if isinstance(m, CheckboxButtonGroup)]
    (scales,) = [m for m in root.references() if isinstance(m, RadioButtonGroup)]
    assert elements.labels == dashboard_session.data.grid_elements and scales.labels == ["1", "2", "3"]
    dashboard_session.model.scales = "2,4"
    assert scales.labels == ["2", "4"]
