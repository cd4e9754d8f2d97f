"""The benchmark command: the quick suite end to end (as CI runs it), markers, fold rule, real loaders."""

import json

import numpy as np
import pytest

from mstgat_core import cli
from mstgat_core.errors import DataError
from mstgat_core.experiments import benchmark


def test_quick_suite_writes_reports_and_tables(tmp_path, capsys):
    page = tmp_path / "results.md"
    page.write_text("# Results\n\nintro\n\n<!-- benchmark:begin -->\nstale\n<!-- benchmark:end -->\n\nafter\n")
    assert cli.main(["benchmark", "--suite", "quick", "--out", str(tmp_path / "out"), "--markdown", str(page)]) == 0
    report = json.loads((tmp_path / "out" / "synthetic_quick.json").read_text())
    assert set(report) >= {"protocol", "results", "comparison", "dataset", "versions", "wall_seconds", "suite"}
    assert report["protocol"]["method"] == "clusters" and report["protocol"]["seeds"] == [1]
    assert set(report["results"]) == set(benchmark.suites()["quick"][0].methods)
    assert all(len(r["folds"]) == 3 for r in report["results"].values())
    text = page.read_text()
    assert text.startswith("# Results\n\nintro\n") and text.rstrip().endswith("after")
    assert "stale" not in text and text.count("<!-- benchmark:begin -->") == 1
    assert "### Synthetic scenario (quick)" in text and "(out/synthetic_quick.json)" in text
    assert "Paired against mstgat" in text


def test_markers_are_appended_when_missing(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Page\n")
    benchmark.update_markdown(page, "table")
    benchmark.update_markdown(page, "new table")
    text = page.read_text()
    assert text.startswith("# Page\n") and "new table" in text and "\ntable" not in text
    assert text.count(benchmark.BEGIN) == 1


def test_unknown_suite_or_dataset_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["benchmark", "--suite", "huge", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown suite 'huge'") and "\n" not in err
    with pytest.raises(DataError, match="no dataset"):
        benchmark.run_suite("quick", tmp_path, datasets=["nope"])


def test_few_clusters_are_left_out_one_at_a_time(small_scenario):
    from mstgat_core.data.io import deposit_cells

    grid = small_scenario.grid
    cells = deposit_cells(grid, small_scenario.deposits)
    assert benchmark.choose_folds(grid, cells, {}) == "loco"  # a handful of clusters
    assert benchmark.choose_folds(grid, cells, {"folds": 3}) == 3
    many = cells.copy(data=np.zeros(cells.shape, dtype=bool))
    many.values[::9, ::9] = True  # a regular lattice of isolated deposit cells: many clusters
    many.values[~np.isfinite(grid[list(grid.data_vars)[0]].values)] = False
    assert benchmark.choose_folds(grid, many, {}) == 5


def test_real_datasets_load(shared_data):
    grid, cells, _ = benchmark._lapland()
    assert int(cells.values.sum()) == 13 and grid.rio.crs.to_epsg() == 3067
    grid, cells, _ = benchmark._south_china()
    assert int(cells.values.sum()) == 21 and len(grid.data_vars) == 39


def test_survey_suites_are_registered_and_run_elsewhere(tmp_path, capsys):
    assert cli.main(["benchmark", "--suite", "huge", "--out", str(tmp_path)]) == 2
    assert "choose from default, synthetic, quick, surveys, surveys-quick" in capsys.readouterr().err
    with pytest.raises(DataError, match="run by experiments.surveys"):
        benchmark.select("surveys")
    from mstgat_core.experiments import surveys

    assert surveys.SUITES == benchmark.SURVEY_SUITES
