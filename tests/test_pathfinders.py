"""Pathfinder comparison (issue 28 item 5): name matching, the hypergeometric chance, ties, the runner's JSON."""

import itertools
import json
from fractions import Fraction

import pytest

from mstgat_core.errors import DataError
from mstgat_core.experiments import pathfinders as pf
from mstgat_core.experiments import surveys as surveys_module


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Fe2O3", "Fe"),
        ("FeO", "Fe"),
        ("Fe2O3T", "Fe"),
        ("FeOT", "Fe"),
        ("SiO2", "Si"),
        ("Al2O3", "Al"),
        ("K2O", "K"),
        ("Na2O", "Na"),
        ("P2O5", "P"),
        ("Au", "Au"),
        ("Au_ppb", "Au"),
        ("Cu (ppm)", "Cu"),
        ("Co", "Co"),
        ("Os", "Os"),
        ("LOI", "LOI"),
        ("TC", "TC"),
        ("La", "REE"),
        ("Ce", "REE"),
        ("Lu", "REE"),
        ("Y", "Y"),
    ],
)
def test_canonical_names(name, expected):
    assert pf.canonical(name) == expected


def test_yttrium_optional_ree():
    assert pf.canonical("Y", y_as_ree=True) == "REE"
    assert pf.canonical("Sc", y_as_ree=True) == "Sc"


def test_collapse_merges_oxides_and_ree_by_mean():
    scores = {"Fe2O3": 1.0, "La": 0.2, "Cu": 0.5, "Ce": 0.6, "FeO": 0.0, "Au": 0.45}
    ranking, items, members = pf.collapse(scores)
    assert ranking == ["Fe", "Cu", "Au", "REE"]  # Fe (mean 0.5) ties Cu: Fe2O3 came first
    assert items["REE"] == pytest.approx(0.4)
    assert members["Fe"] == ["Fe2O3", "FeO"]
    suite = pf.SUITES["iocg"]
    assert pf.suite_present(suite, ranking) == ["Cu", "Au", "REE", "Fe"]


def test_rank_ties_keep_input_order_and_nan_last():
    assert pf.rank({"b": 1.0, "a": 2.0, "c": 1.0, "d": float("nan"), "e": 1.0}) == ["a", "b", "c", "e", "d"]


def brute_force_p(n, suite, k, hits):
    """P(at least ``hits`` suite items among the top k) over every k-subset of n items, exactly."""
    items = range(n)
    subsets = list(itertools.combinations(items, k))
    good = sum(len(set(s) & suite) >= hits for s in subsets)
    return Fraction(good, len(subsets))


@pytest.mark.parametrize("n, big_k", [(7, 3), (8, 2), (6, 4), (9, 5)])
def test_overlap_p_matches_enumeration(n, big_k):
    suite = set(range(big_k))
    for order in itertools.islice(itertools.permutations(range(n)), 0, None, 977):  # some rankings of n items
        ranking = list(order)
        out = pf.overlap(ranking, sorted(suite))
        assert out["k"] == big_k and out["n_items"] == n
        assert out["hits"] == len(set(ranking[:big_k]) & suite)
        assert out["p"] == pytest.approx(float(brute_force_p(n, suite, big_k, out["hits"])), rel=1e-12)
        assert out["expected"] == pytest.approx(big_k * big_k / n)


def test_overlap_extremes_and_errors():
    ranking = ["Au", "As", "Cu", "Zn", "Pb"]
    assert pf.overlap(ranking, ["Au", "As"])["p"] == pytest.approx(1 / 10)  # 1 of C(5, 2)
    assert pf.overlap(ranking, ["Pb", "Zn"])["p"] == pytest.approx(1.0)  # no hit: at least 0 always
    assert pf.overlap(ranking, ["Au"], k=3)["hits"] == 1
    with pytest.raises(DataError, match="not in the ranking"):
        pf.overlap(ranking, ["Te"])


def test_top_k_ties_are_deterministic():
    scores = {"Cu": 1.0, "Au": 1.0, "Zn": 1.0, "Mo": 0.0}
    first = pf.overlap(pf.collapse(scores)[0], ["Au", "Mo"])
    assert first["top_k"] == ["Cu", "Au"] and first["hits"] == 1
    assert first == pf.overlap(pf.collapse(dict(scores))[0], ["Au", "Mo"])


def test_runner_json_shape(tmp_path, monkeypatch):
    fake = [
        surveys_module.Survey("south_china_li", "South China Li", "grid", "-", load=None),
        surveys_module.Survey("gm46c_cu", "GM-46C (Cu)", "points", "-", load=None),
        surveys_module.Survey("sed1", "sed1", "points", "-", load=None, needs=(tmp_path / "absent.csv",)),
    ]
    monkeypatch.setattr(surveys_module, "surveys", lambda suite="surveys": fake)
    elements = ["Li", "Be", "Fe2O3", "Cu", "Mo", "La", "Ce", "Zn"]

    def fake_rankings(survey, cache=None, log=print):
        model = dict(zip(elements, [8, 7, 6, 5, 4, 3, 2, 1]))
        data = dict(zip(elements, [1, 2, 3, 4, 5, 6, 7, 8]))
        return {
            "elements": elements,
            "units": "deposit cells",
            "n_deposit_units": 3,
            "model": {"method": "fake model", "scores": model},
            "data": {"method": "fake data", "scores": data},
        }

    monkeypatch.setattr(pf, "survey_rankings", fake_rankings)
    path = tmp_path / "out" / "pathfinders.json"
    lines = []
    report = pf.run(["south_china_li", "gm46c_cu", "sed1"], path, log=lines.append)
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    assert set(report["surveys"]) == {"south_china_li", "gm46c_cu"}
    assert "sed1" in report["skipped"] and any("skipped" in line for line in lines)
    li = report["surveys"]["south_china_li"]
    assert li["suite_present"] == ["Li", "Be"] and li["model"]["k"] == 2
    assert li["model"]["top_k"] == ["Li", "Be"] and li["model"]["hits"] == 2
    assert li["model"]["n_items"] == 7  # La and Ce are one REE item
    assert li["data"]["hits"] == 0 and li["data"]["p"] == pytest.approx(1.0)
    assert li["without_commodity"]["commodity"] == "Li" and li["without_commodity"]["model"]["k"] == 1
    assert li["without_commodity"]["model"]["top_k"] == ["Be"] and li["without_commodity"]["model"]["n_items"] == 6
    cu = report["surveys"]["gm46c_cu"]
    assert cu["suite_present"] == ["Cu", "Mo"] and "caveat" in cu
    for entry in report["surveys"].values():
        for which in ("model", "data"):
            assert {"method", "ranking", "k", "top_k", "hits", "expected", "p"} <= set(entry[which])
    assert set(report["suites"]) == set(pf.SUITES) and all(s["citation"] for s in report["suites"].values())
    assert "| South China Li |" in pf.markdown_table(report)
    again = pf.recompare(json.loads(path.read_text()))
    assert again["surveys"] == json.loads(json.dumps(report["surveys"]))  # the same from the stored scores
    with pytest.raises(DataError, match="no survey"):
        pf.run(["nowhere"], None, log=lines.append)
