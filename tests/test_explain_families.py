"""Scenario families of the explanation benchmark (issue 28): the deposits' composition misleads by design,
the planted truth is where it should be, and the signed top-k rule and McNemar tests work by hand. No model fits.
"""

import numpy as np
import pytest

from mstgat_core.cli import main
from mstgat_core.data.scenario_families import FAMILIES, MAJORS, make_family
from mstgat_core.errors import DataError
from mstgat_core.experiments import explain_benchmark as eb
from mstgat_core.experiments import explain_paired as ep

SEEDS = range(3)  # the seeds of the reduced run


def _clr(scenario) -> np.ndarray:
    """(E, ny, nx) centred log-ratios of the closed grid."""
    logs = np.log(np.stack([scenario.grid[e].values for e in scenario.grid.data_vars]))
    return logs - logs.mean(axis=0)


def _data_record(scenario, truth, kind) -> dict:
    """A benchmark record holding only what the data alone (``composition``) names."""
    mean = eb.data_alone(scenario)
    return {
        "spec": {"seed": 0, "kind": kind},
        "truth": truth,
        "elements": list(scenario.grid.data_vars),
        "elements_scores": {"composition": mean.tolist()},
        "depleted_scores": {"composition": (-mean).tolist()},
    }


@pytest.mark.parametrize("kind", FAMILIES)
def test_the_data_alone_miss_the_ore_and_a_decoy_leads(kind):
    for seed in SEEDS:
        scenario, truth = make_family(kind, seed)
        names = list(scenario.grid.data_vars)
        assert set(truth["ore"]) <= set(names) and not set(truth["ore"]) & set(truth["decoy"])
        assert set(truth["depleted"]) <= set(truth["ore"])
        record = _data_record(scenario, truth, kind)
        assert ep.named(record, "composition") is False, (kind, seed)
        # what the data alone rank first is an element that misleads
        mean = eb.data_alone(scenario)
        assert names[int(np.argmax(mean))] in truth["decoy"] or names[int(np.argmin(mean))] in truth["decoy"]
        # closed, and every deposit in the planted ore footprint
        total = sum(scenario.grid[e] for e in names).values
        np.testing.assert_allclose(total[np.isfinite(total)], eb.CLOSURE, rtol=1e-4)
        rows, cols = scenario.deposits["row"].to_numpy(), scenario.deposits["col"].to_numpy()
        assert len(rows) >= 6 and scenario.anomaly_mask[rows, cols].all()


def _at(clr, names, element, cells) -> np.ndarray:
    rows, cols = np.asarray(cells).T
    return clr[names.index(element), rows, cols]


def _centres(scenario, name) -> list:
    return next(a["centres"] for a in scenario.truth["anomalies"] if a["name"] == name)


@pytest.mark.parametrize("seed", SEEDS)
def test_each_family_plants_its_signal(seed):
    # association and ratio: the deposits lie in the host, whose elements stand far above the ore's
    for kind in ("association", "ratio", "depletion"):
        scenario, truth = make_family(kind, seed)
        host = next(a for a in scenario.truth["anomalies"] if a["name"] == "host")
        assert 0.08 < host["share"] < 0.35  # mostly barren ground, not the whole survey
    # depletion: Na2O and CaO lowered at the deposits, named by the truth as depleted ore
    scenario, truth = make_family("depletion", seed)
    assert truth["depleted"] == list(MAJORS) and all(m in truth["ore"] for m in MAJORS)
    assert (eb.data_alone(scenario)[[-2, -1]] < -0.5).all()
    # ratio: far out as a ratio, each within its own range at the deposits
    scenario, truth = make_family("ratio", seed)
    names, clr = list(scenario.grid.data_vars), _clr(scenario)
    up, partner = truth["ore"]
    ratio = clr[names.index(up)] - clr[names.index(partner)]
    ore = _centres(scenario, "ore")
    surveyed = np.isfinite(ratio)
    assert np.mean([(ratio[surveyed] < ratio[r, c]).mean() for r, c in ore]) > 0.95
    for element in (up, partner):
        values = clr[names.index(element)]
        share = np.mean([(values[surveyed] < values[r, c]).mean() for r, c in ore])
        assert 0.05 < share < 0.95, (element, share)
    # barren: the co-element is what tells ore from barren anomalies; the shared elements are alike
    scenario, truth = make_family("barren", seed)
    names, clr = list(scenario.grid.data_vars), _clr(scenario)
    ore, barren = _centres(scenario, "ore"), _centres(scenario, "barren")
    (co,) = truth["ore"]
    assert _at(clr, names, co, ore).mean() - _at(clr, names, co, barren).mean() > 0.5
    for element in truth["shared"]:
        assert abs(_at(clr, names, element, ore).mean() - _at(clr, names, element, barren).mean()) < 0.5
    # trend: the deposits lie where the trend elements stand high
    scenario, truth = make_family("trend", seed)
    mean = eb.data_alone(scenario)
    names = list(scenario.grid.data_vars)
    assert max(mean[names.index(e)] for e in truth["decoy"][:2]) > 0.5


def test_families_are_reproducible_and_specs_cover_them():
    a, _ = make_family("ratio", 1)
    b, _ = make_family("ratio", 1)
    np.testing.assert_array_equal(a.grid["Cu"].values, b.grid["Cu"].values)
    chosen = eb.family_specs(["enrichment", "depletion"], n=2)
    assert [(s.seed, s.kind) for s in chosen] == [(0, "small"), (1, "large"), (0, "depletion"), (1, "depletion")]
    assert eb.make(chosen[2])[1]["depleted"] == list(MAJORS)
    with pytest.raises(DataError, match="unknown scenario family 'oops'"):
        eb.family_specs(["oops"])


def _record(kind, scores, depleted=None, truth_depleted=()):
    names = ["A", "B", "C", "D", "E"]
    record = {
        "spec": {"seed": 0, "kind": kind},
        "truth": {"ore": ["A", "B"], "depleted": list(truth_depleted), "decoy": ["E"], "ore_scale": 2.0},
        "elements": names,
        "elements_scores": {"m": scores},
    }
    if depleted is not None:
        record["depleted_scores"] = {"m": depleted}
    return record


def test_signed_rule_by_hand():
    # unsigned: the top 2 must be A and B, whatever their direction
    assert ep.named(_record("association", [3, 2, 1, 0, 0]), "m") is True
    assert ep.named(_record("association", [3, 0, 1, 0, 2]), "m") is False
    assert ep.named(_record("association", [3, 0, 1, 0, 2]), "missing") is None
    # signed, B depleted: A first among enriched, B first among depleted
    assert ep.named(_record("depletion", [3, 0, 1, 0, 2], [0, 5, 1, 0, 0], ["B"]), "m") is True
    assert ep.named(_record("depletion", [3, 0, 1, 0, 2], [0, 1, 5, 0, 0], ["B"]), "m") is False
    # the control: no depleted ore, the depleted ranking is not read
    assert ep.named(_record("small", [3, 2, 1, 0, 0], [9, 9, 9, 9, 9]), "m") is True


def test_mcnemar_by_hand():
    # 10 pairs: method only 6, reference only 1, concordant 3 -> two-sided binomial p of 1 or fewer in 7
    # = 2 * (1 + 7) / 2^7 = 0.125
    method = [1, 1, 1, 1, 1, 1, 0, 1, 0, 1]
    reference = [0, 0, 0, 0, 0, 0, 1, 1, 0, 1]
    result = ep.mcnemar(method, reference)
    assert result["method_only"] == 6 and result["reference_only"] == 1
    assert result["p"] == pytest.approx(16 / 128)
    assert ep.mcnemar([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [0] * 10)["p"] == pytest.approx(2 / 1024)
    assert ep.mcnemar([1, 0], [1, 0]) == {"method_only": 0, "reference_only": 0, "p": 1.0}


def test_family_summary_pairs_each_method_with_both_references():
    records = []
    for seed in range(4):
        for kind in ("small", "ratio"):
            scores = {"m": [3, 2, 1, 0, 0], "composition": [0, 0, 1, 2, 3], "ig_enrichment_shuffled": [3, 2, 0, 0, 0]}
            records.append(_record(kind, None) | {"elements_scores": scores, "spec": {"seed": seed, "kind": kind}})
    summary = eb.score_records(records, permutations=20)
    assert summary["n_control"] == 4 and list(summary["families"]) == ["enrichment", "ratio"]
    ratio = summary["families"]["ratio"]
    assert ratio["hits"] == {"composition": 0, "ig_enrichment_shuffled": 4}
    assert ratio["mcnemar"]["composition"]["shuffled"] == {"method_only": 0, "reference_only": 4, "p": 0.125}
    assert "data" not in ratio["mcnemar"]["composition"]
    lines = "\n".join(ep.families_markdown(summary["families"]))
    assert "| ratio | composition | 0 / 4 | - | 0 / 4, 0.125 |" in lines


def test_unknown_family_is_a_one_line_error(tmp_path, capsys):
    assert main(["benchmark", "--suite", "explain", "--out", str(tmp_path), "--families", "oops"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown scenario family 'oops'" in err and "\n" not in err
