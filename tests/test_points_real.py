"""Real point-survey handling: lon/lat recognised and projected, sentinels, mostly-missing and oxide columns."""

import numpy as np
import pandas as pd
import pytest

from mstgat_core.data.points import complete_features, load_points
from mstgat_core.errors import DataError


def survey(tmp_path, lon, lat, extra=None, names=("X", "Y")):
    rng = np.random.default_rng(0)
    n = len(lon)
    table = pd.DataFrame({names[0]: lon, names[1]: lat, "SAMPLEID": [f"S{i}" for i in range(n)]})
    table["Au_ppb"] = rng.lognormal(0, 1, n)
    table["Cu_ppm"] = rng.lognormal(2, 1, n)
    for name, values in (extra or {}).items():
        table[name] = values
    path = tmp_path / "survey.csv"
    table.to_csv(path, index=False)
    return path


def test_lonlat_in_x_y_is_projected_to_the_local_utm_zone_and_back(tmp_path):
    lon = np.linspace(117.2, 118.5, 40)  # Western Australia: UTM zone 50 south
    lat = np.linspace(-34.3, -32.6, 40)
    samples = load_points(survey(tmp_path, lon, lat))
    assert samples.source_crs.to_epsg() == 4326
    assert samples.crs.to_epsg() == 32750
    assert "EPSG:4326" in samples.note and "EPSG:32750" in samples.note and "\n" not in samples.note
    back = samples.table.to_crs("EPSG:4326")
    # round trip within a metre (1e-5 degree is about 1 m)
    np.testing.assert_allclose(back.geometry.x, lon, atol=1e-5)
    np.testing.assert_allclose(back.geometry.y, lat, atol=1e-5)


def test_northern_hemisphere_zone(tmp_path):
    samples = load_points(survey(tmp_path, [113.1, 113.4, 113.9], [24.5, 24.9, 25.2], names=("lon", "lat")))
    assert samples.crs.to_epsg() == 32649  # South China: zone 49 north


def test_projected_coordinates_are_left_alone(tmp_path):
    samples = load_points(survey(tmp_path, [400000.0, 401000.0, 402500.0], [2.6e6, 2.601e6, 2.6e6]), crs="EPSG:32650")
    assert samples.crs.to_epsg() == 32650 and samples.note == ""


def test_lonlat_out_of_range_and_missing_coordinates_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="out of range"):
        load_points(survey(tmp_path, [117.0, 200.0, 118.0], [-33.0, -33.1, -33.2], names=("lon", "lat")))
    with pytest.raises(DataError, match="coordinate reference system unknown"):
        load_points(survey(tmp_path, [117.0, 500.0, 118.0], [-33.0, -33.1, -33.2]))  # x/y beyond lon/lat: unknown
    with pytest.raises(DataError, match="no sample has coordinates"):
        load_points(survey(tmp_path, [-9999.0] * 3, [-9999.0] * 3))
    with pytest.raises(DataError, match="1 sample"):
        load_points(survey(tmp_path, [117.0, -9999.0, 118.0], [-33.0, -33.1, -33.2]))


def test_sentinels_mostly_missing_columns_and_oxides(tmp_path):
    n = 10
    extra = {
        "As_ppm": [-9999.0] * 7 + [1.0, 2.0, 3.0],  # 70 % missing: dropped at the default 0.5
        "Ag_ppb": [-9999.0] * n,  # all missing: dropped
        "Al_ppm": [-9999.0] * 3 + [5e4] * 7,  # 3 missing
        "Al2O3_pct": [12.0] * 9 + [-9999.0],  # 1 missing: kept instead of Al
        "Zn_ppm": [-9999.0, -9999.0] + [50.0] * 8,  # 2 missing, kept and filled by the median
    }
    lon, lat = np.linspace(117.2, 117.4, n), np.linspace(-33.2, -33.0, n)
    samples = load_points(survey(tmp_path, lon, lat, extra))
    assert set(samples.dropped) == {"As", "Ag", "Al"}
    assert samples.dropped["As"] == "70% missing" and samples.dropped["Ag"] == "100% missing"
    assert samples.dropped["Al"].startswith("duplicate of Al2O3")
    assert samples.elements == ["Au", "Cu", "Al2O3", "Zn"]
    assert samples.missing == {"Au": 0, "Cu": 0, "Al2O3": 1, "Zn": 2}
    values, filled = complete_features(samples)
    assert filled == samples.missing
    assert values["Zn"].tolist() == [50.0] * n and not values.isna().any().any()
    kept = load_points(survey(tmp_path, lon, lat, extra), max_missing=0.8)
    assert "As" in kept.elements and "Ag" not in kept.elements  # an all-missing column always goes


def test_no_usable_element_column(tmp_path):
    path = tmp_path / "empty.csv"
    pd.DataFrame({"lon": [117.0, 117.1], "lat": [-33.0, -33.1], "Au_ppb": [-9999.0, -9999.0]}).to_csv(path)
    with pytest.raises(DataError, match="no element column left"):
        load_points(path)
