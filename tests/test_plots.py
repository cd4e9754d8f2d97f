"""Dashboard figures rendered to Bokeh models (no browser)."""

import holoviews as hv
import numpy as np
import pytest

from mstgat_core.dashboard import plots_map

hv.extension("bokeh")


def _axes(element):
    figure = hv.render(element)
    return figure.xaxis[0], figure.yaxis[0]


@pytest.mark.parametrize(
    "crs, xlabel, ylabel, km",
    [
        ("EPSG:32649", "easting (km) · EPSG:32649 WGS 84 / UTM zone 49N", "northing (km) · EPSG:32649", True),
        ("EPSG:4326", "longitude (°) · EPSG:4326", "latitude (°) · EPSG:4326", False),
        (None, "x (no CRS)", "y (no CRS)", False),
    ],
)
def test_map_axes_name_the_crs_and_read_in_km(crs, xlabel, ylabel, km):
    image = hv.Image(np.zeros((3, 3)), bounds=(400_000, 2_500_000, 403_000, 2_503_000))
    xaxis, yaxis = _axes(image.opts(**plots_map.crs_axes(crs)))
    assert (xaxis.axis_label, yaxis.axis_label) == (xlabel, ylabel)
    formatters = {type(xaxis.formatter).__name__, type(yaxis.formatter).__name__}
    if km:
        assert formatters == {"CustomJSTickFormatter"} and "tick / 1000" in xaxis.formatter.code
    else:
        assert "CustomJSTickFormatter" not in formatters


def test_unsupported_ground_is_a_grey_veil_over_exactly_the_unsupported_cells():
    """The demo's interpolation ramps (cells with data off the sample support) are drawn grey, nothing else."""
    from mstgat_core.data import io
    from mstgat_core.data.preprocess import valid_mask
    from mstgat_core.data.support import support_mask, without_support
    from mstgat_core.paths import DEMO_GRID

    grid = io.load_grid(DEMO_GRID)
    veil = plots_map.unsupported_ground(grid)
    values = veil.dimension_values("unsupported", flat=False)[::-1]  # the image runs south to north
    expected = valid_mask(without_support(grid)) & ~support_mask(grid)
    np.testing.assert_array_equal(np.isfinite(values), expected)
    assert expected.sum() == 20460 - valid_mask(grid).sum() > 10_000
    assert veil.opts.get().kwargs["cmap"] == [plots_map.UNSUPPORTED_COLOUR]
    empty = plots_map.unsupported_ground(without_support(grid))
    assert np.isnan(empty.dimension_values("unsupported")).all()


def test_the_click_header_says_when_the_members_spread_measures_nothing():
    from mstgat_core.dashboard.explain_view import uncertainty_line

    zero = uncertainty_line({"uncertainty": 0.0, "top_agreement": 1.0})
    assert "none measured here" in zero and "label-free" in zero and "0.000" not in zero
    some = uncertainty_line({"uncertainty": 0.0284, "top_agreement": 0.6})
    assert "spread by 0.028 (sd)" in some and "60% of them" in some
