"""The planted-truth benchmark of explanations: its statistics by hand, its scenarios, its command."""

import json

import numpy as np
import pytest

from mstgat_core.cli import main
from mstgat_core.data.preprocess import Normaliser
from mstgat_core.experiments import explain_benchmark as eb


def test_rank_biased_overlap_by_hand():
    # ideal ranking = 1; relevant set {a, b}, p = 0.5, 4 items:
    # ranking b, c, a, d -> agreements 1/1, 1/2, 2/2, 2/2 with weights .5, .25, .125, .0625
    assert eb.rank_biased_overlap(["a", "b", "c", "d"], {"a", "b"}, p=0.5) == pytest.approx(1.0)
    expected = (0.5 * 1 + 0.25 * 0.5 + 0.125 * 1 + 0.0625 * 1) / (0.5 + 0.25 + 0.125 + 0.0625)
    assert eb.rank_biased_overlap(["b", "c", "a", "d"], {"a", "b"}, p=0.5) == pytest.approx(expected)
    assert eb.rank_biased_overlap(["c", "d", "a", "b"], {"a", "b"}, p=0.5) < expected


def test_element_statistics_by_hand():
    order = ["Li", "W", "Be", "Nb", "Sn", "Cu"]
    stats = eb.element_statistics(order, {"Li", "Be", "Nb"}, {"W", "Sn"})
    assert stats["top_k"] == 0.0  # Nb is 4th
    assert stats["top_5"] == 1.0
    assert stats["decoy_above"] == 1.0  # W above Nb
    clean = eb.element_statistics(["Be", "Nb", "Li", "Sn", "W", "Cu"], {"Li", "Be", "Nb"}, {"W", "Sn"})
    assert clean == {"top_k": 1.0, "top_5": 1.0, "decoy_above": 0.0, "rbo": pytest.approx(1.0)}


def _record(seed, scores_for_truth: bool, scales_first_right: bool):
    rng = np.random.default_rng(seed)
    names = [f"E{i}" for i in range(10)]
    ore, decoy = list(rng.choice(names, 5, replace=False)[:3]), []
    decoy = [e for e in names if e not in ore][:2]
    scores = rng.random(10)
    if scores_for_truth:
        scores[[names.index(e) for e in ore]] += 2
    return {
        "spec": {"seed": seed, "kind": "small"},
        "truth": {"ore": ore, "decoy": decoy, "ore_scale": 1.0},
        "elements": names,
        "scales": [1.0, 2.0, 3.0],
        "elements_scores": {"integrated_gradients": scores.tolist()},
        "scale_scores": {"scale_weights": [0.6, 0.3, 0.1] if scales_first_right else [0.1, 0.3, 0.6]},
    }


def test_score_records_against_the_permutation_null():
    good = eb.score_records([_record(s, True, True) for s in range(8)], permutations=500)
    ig = good["elements"]["integrated_gradients"]
    assert ig["top_k"]["value"] == 1.0 and ig["decoy_above"]["value"] == 0.0
    assert ig["top_k"]["p"] == pytest.approx(1 / 501)  # no shuffled labelling does as well
    # chance of the 3 ore elements being the top 3 of 10 is 1 / C(10, 3) = 1/120
    assert ig["top_k"]["null_mean"] == pytest.approx(1 / 120, abs=0.01)
    assert good["scales"]["scale_weights"]["first"] == 1.0
    assert good["scales"]["scale_weights"]["p"] == pytest.approx((1 / 3) ** 8)

    noise = eb.score_records([_record(s, False, False) for s in range(8)], permutations=500)
    assert noise["elements"]["integrated_gradients"]["rbo"]["p"] > 0.01
    assert noise["scales"]["scale_weights"]["first"] == 0.0


def test_scenarios_are_closed_and_plant_what_they_say():
    scenario, truth = eb.make(eb.Spec(seed=3, kind="large"))
    names = list(scenario.grid.data_vars)
    total = sum(scenario.grid[e] for e in names).values
    surveyed = np.isfinite(total)
    np.testing.assert_allclose(total[surveyed], eb.CLOSURE, rtol=1e-4)
    assert truth["ore_scale"] == 3.0 and len(truth["ore"]) == 3 and len(truth["decoy"]) == 2
    assert not set(truth["ore"]) & set(truth["decoy"])
    # every deposit sits inside the planted ore footprint
    rows, cols = scenario.deposits["row"].to_numpy(), scenario.deposits["col"].to_numpy()
    assert scenario.anomaly_mask[rows, cols].all()
    assert [s.kind for s in eb.specs(4)] == ["small", "large", "small", "large"]


def test_clr_is_blind_to_closure():
    """Closing a composition (rescaling each cell to a constant sum) leaves CLR inputs unchanged."""
    scenario, _ = eb.make(eb.Spec(seed=0, kind="small"))
    open_grid = scenario.grid.copy()
    factor = np.random.default_rng(0).uniform(0.2, 5.0, open_grid[list(open_grid.data_vars)[0]].shape)
    for e in open_grid.data_vars:
        open_grid[e] = open_grid[e] * factor  # any per-cell factor: open / closed differ by one
    closed_x = Normaliser(transform="clr").fit(scenario.grid).transform(scenario.grid)
    open_x = Normaliser(transform="clr").fit(open_grid).transform(open_grid)
    np.testing.assert_allclose(open_x, closed_x, atol=1e-4)


def test_explain_suite_command_errors_are_one_line(tmp_path, capsys):
    assert main(["benchmark", "--suite", "explain", "--out", str(tmp_path), "--scenarios", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    md = tmp_path / "r.md"
    tables_only = ["benchmark", "--suite", "explain", "--out", str(tmp_path), "--tables-only", "--markdown", str(md)]
    assert main(tables_only) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no explain report") and "\n" not in err
    assert not md.exists()


def test_tables_only_rewrites_the_markers(tmp_path):
    records = [_record(s, True, True) for s in range(3)]
    report = {"summary": eb.score_records(records, permutations=50), "records": records, "wall_seconds": 60.0}
    (tmp_path / "explain.json").write_text(json.dumps(report))
    md = tmp_path / "results.md"
    md.write_text(f"intro\n{eb.BEGIN}\nold\n{eb.END}\noutro\n")
    tables_only = ["benchmark", "--suite", "explain", "--out", str(tmp_path), "--tables-only", "--markdown", str(md)]
    assert main(tables_only) == 0
    text = md.read_text()
    assert "old" not in text and text.startswith("intro") and text.rstrip().endswith("outro")
    assert "| integrated_gradients | 1.00" in text


def test_learn_tab_shows_the_benchmark_or_nothing(tmp_path):
    from mstgat_core.dashboard.learn import benchmark_section

    assert benchmark_section(tmp_path / "missing.json") == ""
    (tmp_path / "bad.json").write_text("{not json")
    assert benchmark_section(tmp_path / "bad.json") == ""
    records = [_record(s, True, True) for s in range(3)]
    (tmp_path / "explain.json").write_text(json.dumps({"summary": eb.score_records(records, permutations=50)}))
    text = benchmark_section(tmp_path / "explain.json")
    assert "On 3 synthetic surveys" in text
    assert "| integrated gradients, all | 100% (chance" in text
    assert "| scale weights | 100% (chance 33%) |" in text
