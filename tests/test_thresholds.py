"""Issue 29: thresholds (C-A, cumulative frequency, population break), the P-A plot and success-rate curve,
target zones as a GeoPackage, and ``mstgat zones``."""

import numpy as np
import pytest
import xarray as xr

from mstgat_core.errors import DataError
from mstgat_core.evaluation.prediction_area import prediction_area, success_rate
from mstgat_core.evaluation.thresholds import (
    ca_curve,
    ca_thresholds,
    cumulative_thresholds,
    population_break,
    threshold_lines,
)

# an 8 x 8 grid: 32 cells at 1, 16 at 10, 8 at 100, 4 at 1000, 2 at 10^3.5, 1 at 10^3.75, 1 at 10^4
CA_VALUES = [1.0] * 32 + [10.0] * 16 + [100.0] * 8 + [1000.0] * 4 + [10**3.5] * 2 + [10**3.75, 1e4]


def test_ca_thresholds_equal_a_hand_computation_on_a_small_grid():
    grid = np.random.default_rng(0).permutation(CA_VALUES).reshape(8, 8)
    grid[0, 0] = np.nan  # a cell without data, one of the 32 at 1
    cell_area = 0.25  # km²: 500 m cells
    levels, areas = ca_curve(grid, cell_area=cell_area)
    # by hand: the cells at or above each level, times the cell's area
    assert levels.tolist() == pytest.approx([1, 10, 100, 1000, 10**3.5, 10**3.75, 1e4])
    assert areas.tolist() == pytest.approx([63 * 0.25, 32 * 0.25, 16 * 0.25, 8 * 0.25, 4 * 0.25, 2 * 0.25, 0.25])
    fit = ca_thresholds(grid, segments=2, cell_area=cell_area)
    # by hand, in log10: the first four levels lie on log A = log(16 x 0.25) - 0.301 log v (one more cell at 1
    # would make it exact: 63 is not 64, so the lower line is a least-squares fit); the last three on a line
    # four times as steep through (3.5, log 1)
    x, y = np.log10(levels), np.log10(areas)
    lower = np.polyfit(x[:4], y[:4], 1)
    upper = np.polyfit(x[4:], y[4:], 1)
    assert upper[0] == pytest.approx(-4 * np.log10(2))
    crossing = (upper[1] - lower[1]) / (lower[0] - upper[0])
    assert 3 < crossing < 3.5  # between the last level of the lower run and the first of the upper one
    assert fit.starts == (0, 4)  # the split 4 + 3 beats 3 + 4 in squared error
    sse_other = sum(
        np.sum((np.polyval(np.polyfit(x[a:b], y[a:b], 1), x[a:b]) - y[a:b]) ** 2) for a, b in ((0, 3), (3, 7))
    )
    assert fit.sse < sse_other
    assert fit.thresholds == pytest.approx((10**crossing,), rel=1e-9)
    assert fit.slopes == pytest.approx((lower[0], upper[0]))
    # with 64 cells at the bottom the lower line is exact, and the crossing is 10 / 3 (in log10)
    exact = np.array(CA_VALUES)
    assert ca_thresholds(exact, segments=2).thresholds == pytest.approx((10 ** (10 / 3),))
    assert ca_thresholds(exact).thresholds == pytest.approx((10 ** (10 / 3),))  # auto: 7 levels allow only 2


def test_ca_auto_finds_three_populations_and_refuses_too_few_levels():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.lognormal(0, 0.3, 4000), rng.lognormal(2, 0.3, 300), rng.lognormal(4, 0.3, 30)])
    fit = ca_thresholds(values)
    assert len(fit.slopes) == 3 and list(fit.thresholds) == sorted(fit.thresholds)  # BIC: 3 segments
    assert np.exp(2) < fit.thresholds[-1] < np.exp(4)  # the top break lies between the upper populations
    assert len(fit.thresholds) == len(ca_thresholds(values, segments=3).thresholds) == 2
    assert len(ca_thresholds(values, segments=2).thresholds) == 1
    with pytest.raises(DataError, match="at least 6 distinct positive levels"):
        ca_thresholds([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(DataError, match="needs positive values"):
        ca_thresholds([-1.0, 0.0, np.nan])


def test_cumulative_and_population_thresholds():
    values = np.arange(1, 101, dtype=float)
    assert cumulative_thresholds(values) == pytest.approx({"75 %": 75.25, "85 %": 85.15, "95 %": 95.05})
    rng = np.random.default_rng(2)
    background, anomaly = rng.lognormal(0, 0.25, 3000), rng.lognormal(np.log(20), 0.25, 300)
    cut = population_break(np.concatenate([background, anomaly]))
    # equal weighted densities of the true populations (equal spreads): log10 cut = mid + s² ln(w0/w1) / (m1 - m0)
    s, m0, m1 = 0.25 / np.log(10), 0.0, np.log10(20)
    expected = (m0 + m1) / 2 + s**2 * np.log(3000 / 300) / (m1 - m0)
    assert np.log10(cut) == pytest.approx(expected, abs=0.05)
    assert (background > cut).mean() < 0.01 and (anomaly > cut).mean() > 0.99
    ca, cumulative, split = threshold_lines(np.array([1.0, 2.0, 3.0]))  # too few values: each line says why
    assert "none (the C-A fit with 2 segments needs at least 6" in ca and "75 % 2.5" in cumulative
    assert "none (a two-population break needs at least 4 distinct values)" in split


def _brute_force_pa(scores, deposits, ground):
    region = [(s, d) for s, d, g in zip(scores.ravel(), deposits.ravel(), ground.ravel(), strict=True) if g]
    region = [(s, d) for s, d in region if np.isfinite(s)]
    levels = sorted({s for s, _ in region})
    n_dep = sum(d for _, d in region)
    predicted = [sum(1 for s, d in region if d and s >= t) / n_dep for t in levels]
    occupied = [sum(1 for s, _ in region if s >= t) / len(region) for t in levels]
    return levels, predicted, occupied


def test_prediction_area_and_success_rate_equal_brute_force_on_measured_ground_only():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    scores = rng.integers(0, 12, size=(9, 7)).astype(float)  # ties on purpose
    deposits = rng.random((9, 7)) < 0.15
    ground = rng.random((9, 7)) < 0.8
    scores[0, 0] = np.nan
    deposits[1, 1], ground[1, 1], scores[1, 1] = True, False, 100.0  # a deposit off measured ground: not counted
    pa = prediction_area(scores, deposits, ground)
    levels, predicted, occupied = _brute_force_pa(scores, deposits, ground)
    assert pa.threshold.tolist() == levels and 100.0 not in levels
    assert pa.predicted.tolist() == pytest.approx(predicted) and pa.occupied.tolist() == pytest.approx(occupied)
    # the crossing: P + area = 1, linearly between the two levels where P + area - 1 changes sign
    gap = np.array(predicted) + np.array(occupied) - 1
    i = max(k for k in range(len(gap)) if gap[k] >= 0)
    f = gap[i] / (gap[i] - gap[i + 1])
    assert pa.crossing == pytest.approx(levels[i] + f * (levels[i + 1] - levels[i]))
    p = predicted[i] + f * (predicted[i + 1] - predicted[i])
    assert pa.prediction_rate == pytest.approx(p) and pa.normalised_density == pytest.approx(p / (1 - p))
    assert pa.weight == pytest.approx(np.log(p / (1 - p)))
    # success rate: cells ranked by score, ties broken at random (linear within a tie), area = measured ground
    area, captured, auc = success_rate(scores, deposits, ground)
    region = ground & np.isfinite(scores)
    s, d = scores[region], deposits[region]
    for t, a, c in zip(sorted(set(s), reverse=True), area[1:], captured[1:], strict=True):
        assert a == pytest.approx((s >= t).mean()) and c == pytest.approx((s[d] >= t).mean())
    n, k = len(s), int(d.sum())
    roc = roc_auc_score(d, s)  # deposit cells against the other cells of the ground
    assert auc == pytest.approx(1 - (k / 2 + (n - k) * (1 - roc)) / n)
    with pytest.raises(DataError, match="no deposit cell lies on measured ground"):
        prediction_area(scores, np.zeros_like(deposits), ground)


def _zone_grid():
    """A 12 x 10 grid in UTM (100 m cells) with two hot spots and a Cu anomaly under the first."""
    import rioxarray  # noqa: F401

    y = 5_000_000 - 50 - 100 * np.arange(12)
    x = 400_050 + 100 * np.arange(10)
    score = np.full((12, 10), 0.1)
    score[1:4, 1:4] = 0.9  # zone 1: 9 cells, max 0.95
    score[2, 2] = 0.95
    score[8:10, 6:9] = 0.8  # zone 2: 6 cells
    score[11, 0] = np.nan  # no data
    rng = np.random.default_rng(4)
    cu = rng.lognormal(3, 0.2, (12, 10))
    cu[1:4, 1:4] *= 30
    zn = rng.lognormal(4, 0.2, (12, 10))
    zn[8:10, 6:9] *= 30
    coords = {"y": y, "x": x}
    grid = xr.Dataset(
        {"Cu": (("y", "x"), cu), "Zn": (("y", "x"), zn), "Pb": (("y", "x"), rng.lognormal(2, 0.2, (12, 10)))},
        coords=coords,
    )
    grid = grid.rio.write_crs("EPSG:32633")
    return grid, xr.DataArray(score, dims=("y", "x"), coords=coords)


def test_target_zones_are_written_as_a_geopackage_and_read_back(tmp_path):
    import geopandas as gpd

    from mstgat_core.evaluation.zones import read_zones, target_zones, write_zones

    grid, score = _zone_grid()
    deposits = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy([400_250, 400_260, 400_750, 400_050], [4_999_750, 4_999_760, 4_999_050, 4_999_950]),
        crs="EPSG:32633",
    )
    zones = target_zones(score, 15 / 119, grid=grid, deposits=deposits)
    path = tmp_path / "zones.gpkg"
    write_zones(zones, path)
    back = read_zones(path)
    assert back.crs.to_epsg() == 32633 and len(back) == 2
    assert set(back.geom_type) == {"Polygon"} and back.is_valid.all()
    assert back["zone"].tolist() == [1, 2] and back["n_cells"].tolist() == [9, 6]
    assert back["area_km2"].tolist() == pytest.approx([0.09, 0.06])  # 100 m cells
    assert back["max_score"].tolist() == pytest.approx([0.95, 0.8])
    assert back["n_deposits"].tolist() == [2, 1]  # the fourth deposit lies outside both zones
    assert back["leading_elements"][0].startswith("Cu") and back["leading_elements"][1].startswith("Zn")
    assert back.geometry[0].bounds == pytest.approx((400_100, 4_999_600, 400_400, 4_999_900))
    assert 0.1 < back["score_cut"][0] <= 0.8 and back["score_cut"].nunique() == 1
    with pytest.raises(DataError, match="top share"):
        target_zones(score, 0)


def test_mstgat_zones_prints_the_thresholds_and_writes_the_zones(tmp_path, capsys):
    from mstgat_core.cli import main
    from mstgat_core.data import io
    from mstgat_core.evaluation.zones import read_zones

    grid, score = _zone_grid()
    grid["score"] = score
    data = tmp_path / "grid.nc"
    io.save_grid(grid, data)
    (tmp_path / "deposits.csv").write_text("x,y\n400250,4999750\n400750,4999050\n")
    out = tmp_path / "zones.gpkg"
    deposits = str(tmp_path / "deposits.csv")
    code = main(["zones", str(data), "--layer", "score", "--top", "12.6", "--out", str(out), "--deposits", deposits])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "C-A fractal" in printed and "75 % 0.1" in printed and "population break" in printed
    assert "P-A crossing" in printed and "wrote" in printed and "2 target zones" in printed
    assert "in-sample if the layer's model was fitted on these deposits" in printed
    zones = read_zones(out)
    assert zones["n_deposits"].tolist() == [1, 1] and zones.crs.to_epsg() == 32633
    assert zones["leading_elements"][0].startswith("Cu")  # the other layers, not the score itself
    assert main(["zones", str(data), "--out", str(out)]) == 2
    assert "name the layer" in capsys.readouterr().err
