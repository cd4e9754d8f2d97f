import json

import numpy as np
import pytest

from mstgat_core.data.preprocess import Normaliser, cell_matrix, valid_mask
from mstgat_core.errors import DataError


def test_cell_matrix_rows_follow_row_major_valid_cells(small_scenario):
    ds = small_scenario.grid
    values, mask = cell_matrix(ds)
    rows, cols = np.nonzero(mask)
    assert values.dtype == np.float32 and values.shape == (mask.sum(), len(ds.data_vars))
    np.testing.assert_array_equal(values[:, 0], ds["Li"].values[rows, cols])
    assert mask.sum() < mask.size  # the survey boundary leaves NaN cells
    np.testing.assert_array_equal(mask, valid_mask(ds))


@pytest.mark.parametrize("transform", ["none", "log", "clr"])
def test_round_trip_through_json_gives_identical_transform(small_scenario, transform):
    norm = Normaliser(transform=transform).fit(small_scenario.grid)
    again = Normaliser.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm
    np.testing.assert_array_equal(again.transform(small_scenario.grid), norm.transform(small_scenario.grid))


def test_statistics_are_global_not_per_window(small_scenario):
    ds = small_scenario.grid
    norm = Normaliser().fit(ds)
    full = norm.transform(ds)
    window = ds.isel(y=slice(10, 40), x=slice(5, 30))
    index = np.full(valid_mask(ds).shape, -1)
    index[valid_mask(ds)] = np.arange(len(full))
    expected = full[index[10:40, 5:30][valid_mask(window)]]
    np.testing.assert_array_equal(norm.transform(window), expected)


def test_robust_scaling_centres_and_scales(small_scenario):
    rows = Normaliser(transform="log").fit(small_scenario.grid).transform(small_scenario.grid)
    np.testing.assert_allclose(np.median(rows, axis=0), 0, atol=1e-5)
    q75, q25 = np.percentile(rows, [75, 25], axis=0)
    np.testing.assert_allclose(q75 - q25, 1.349, rtol=1e-4)


def test_log_floor_handles_zeros_and_constant_columns(small_scenario):
    ds = small_scenario.grid.copy()
    ds["Li"] = ds["Li"].where(ds["Li"] > float(ds["Li"].median()), 0.0)
    ds["Be"] = ds["Be"] * 0 + 5.0
    norm = Normaliser(transform="log").fit(ds)
    rows = norm.transform(ds)
    assert np.isfinite(rows).all()
    assert norm.floor[0] > 0 and norm.scale[1] == 1.0


def test_transform_dataset_is_on_the_same_grid(small_scenario):
    ds = small_scenario.grid
    out = Normaliser().fit(ds).transform_dataset(ds)
    assert out["Li"].shape == ds["Li"].shape and out.rio.crs == ds.rio.crs
    np.testing.assert_array_equal(np.isfinite(out["Li"].values), valid_mask(ds))


def test_fit_on_grid_missing_an_element(small_scenario):
    norm = Normaliser(elements=["Li", "Mo"])
    with pytest.raises(DataError, match="Mo"):
        norm.fit(small_scenario.grid)
    fitted = Normaliser().fit(small_scenario.grid)
    with pytest.raises(DataError, match="Li"):
        fitted.transform(small_scenario.grid.drop_vars("Li"))


def test_bad_options_and_unfitted_use(small_scenario):
    with pytest.raises(DataError):
        Normaliser(transform="sqrt")
    with pytest.raises(DataError, match="fitted"):
        Normaliser().transform(small_scenario.grid)
