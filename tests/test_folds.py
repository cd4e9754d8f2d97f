"""Spatial folds: whole deposit clusters, a buffer, leave-one-cluster-out; checked by brute force."""

import json
import pickle

import numpy as np
import pytest

from mstgat_core.cli.common import error_line
from mstgat_core.errors import DataError
from mstgat_core.training.folds import FoldSettings, deposit_clusters, spatial_folds


def clustered_grid(seed=0, shape=(40, 50)):
    """Nodes of an irregular mask and deposits in tight clusters (like real deposits)."""
    rng = np.random.default_rng(seed)
    mask = np.ones(shape, dtype=bool)
    mask[:8, :10] = False  # a missing corner
    mask[20:24, 15:30] = False  # a hole
    rows, cols = np.nonzero(mask)
    centres = [(5, 30), (12, 5), (30, 8), (33, 40), (16, 44), (28, 25), (38, 2)]
    pos = []
    for r, c in centres:
        for _ in range(rng.integers(1, 4)):
            rr, cc = r + rng.integers(-1, 2), c + rng.integers(-1, 2)
            hit = np.flatnonzero((rows == rr) & (cols == cc))
            pos.extend(hit.tolist())
    return rows, cols, np.unique(pos)


def brute_clusters(rows, cols, pos, link):
    """Connected components of 'closer than link' by breadth-first search."""
    coords = np.column_stack([rows[pos], cols[pos]]).astype(float)
    dist = np.hypot(*(coords[:, None, :] - coords[None, :, :]).transpose(2, 0, 1))
    label = -np.ones(len(pos), int)
    current = 0
    for start in range(len(pos)):
        if label[start] >= 0:
            continue
        stack = [start]
        label[start] = current
        while stack:
            i = stack.pop()
            for j in np.flatnonzero((dist[i] < link) & (label < 0)):
                label[j] = current
                stack.append(j)
        current += 1
    return label


@pytest.mark.parametrize("link", [1.5, 3.0, 7.0, 20.0])
def test_clusters_are_single_linkage(link):
    rows, cols, pos = clustered_grid()
    got = deposit_clusters(rows, cols, pos, link)
    expected = brute_clusters(rows, cols, pos, link)
    # same partition (ids may differ): the pairs that share a cluster agree
    assert np.array_equal(got[:, None] == got[None, :], expected[:, None] == expected[None, :])
    assert got[0] == 0 and set(got) == set(range(got.max() + 1))


@pytest.mark.parametrize("method", ["clusters", "loco", "blocks"])
@pytest.mark.parametrize("buffer", [0.0, 2.0, 4.0])
def test_no_training_label_within_the_buffer(method, buffer):
    rows, cols, pos = clustered_grid()
    settings = FoldSettings(method=method, n_folds=3, link_distance=7.0, buffer=buffer, block_size=10)
    folds = spatial_folds(rows, cols, pos, settings, seed=1)
    assert folds
    coords = np.column_stack([rows, cols]).astype(float)
    for fold in folds:
        test = coords[fold.test_region]
        train = coords[np.concatenate([fold.train_pos, fold.train_neg_pool])]
        nearest = np.sqrt(((train[:, None, :] - test[None, :, :]) ** 2).sum(-1)).min(axis=1)
        assert (nearest > buffer).all()
        assert not fold.test_region[fold.train_pos].any() and not fold.test_region[fold.train_neg_pool].any()
        outside = ~fold.test_region
        dropped = outside.sum() - len(
            np.setdiff1d(
                np.flatnonzero(outside),
                np.flatnonzero(np.sqrt(((coords[:, None, :] - test[None, :, :]) ** 2).sum(-1)).min(axis=1) <= buffer),
            )
        )
        assert fold.buffer_dropped == dropped


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_clusters_are_never_split(seed):
    rows, cols, pos = clustered_grid(seed)
    settings = FoldSettings(n_folds=3, link_distance=7.0, buffer=4.0)
    clusters = deposit_clusters(rows, cols, pos, 7.0)
    folds = spatial_folds(rows, cols, pos, settings, seed=seed)
    seen = np.zeros(len(pos), int)
    for fold in folds:
        held = np.isin(pos, fold.test_pos)
        seen += held
        for cluster in np.unique(clusters[held]):
            assert held[clusters == cluster].all(), "a cluster is split across folds"
        assert np.array_equal(fold.test_clusters, clusters[np.searchsorted(pos, fold.test_pos)])
        # a test deposit is farther from every training deposit than the link distance
        assert (fold.test_pos_distance >= 7.0).all()
    assert (seen == 1).all()  # every deposit is tested exactly once per seed
    regions = np.sum([f.test_region for f in folds], axis=0)
    assert (regions == 1).all()  # regions cover every node once


def test_leave_one_cluster_out():
    rows, cols, pos = clustered_grid()
    clusters = deposit_clusters(rows, cols, pos, 7.0)
    folds = spatial_folds(rows, cols, pos, FoldSettings(method="loco", link_distance=7.0, buffer=4.0), seed=0)
    assert len(folds) == clusters.max() + 1
    for k, fold in enumerate(folds):
        assert np.array_equal(fold.test_pos, pos[clusters == k])
    again = spatial_folds(rows, cols, pos, FoldSettings(method="loco", link_distance=7.0, buffer=4.0), seed=5)
    assert all(np.array_equal(a.test_pos, b.test_pos) for a, b in zip(folds, again))


def test_seed_changes_the_assignment_not_the_clusters():
    rows, cols, pos = clustered_grid()
    settings = FoldSettings(n_folds=3, link_distance=7.0, buffer=4.0)
    a = [tuple(f.test_pos) for f in spatial_folds(rows, cols, pos, settings, seed=0)]
    b = [tuple(f.test_pos) for f in spatial_folds(rows, cols, pos, settings, seed=0)]
    c = {tuple(f.test_pos) for s in range(1, 6) for f in spatial_folds(rows, cols, pos, settings, seed=s)}
    assert a == b and c - set(a)


def test_defaults_follow_the_receptive_field():
    settings = FoldSettings.for_model((1, 2, 3), hops=1)
    assert (settings.link_distance, settings.buffer) == (7.0, 4.0)
    settings = FoldSettings.for_model((1, 4), hops=2, buffer=2)
    assert (settings.link_distance, settings.buffer) == (17.0, 2)


def test_defaults_from_a_model_config_are_its_receptive_field():
    from mstgat_core.model import ModelConfig

    config = ModelConfig(n_elements=4, scales=(1, 4), gat_layers=2)
    assert config.receptive_radius == 8 and config.hops == 2
    assert FoldSettings.for_config(config) == FoldSettings.for_model((1, 4), hops=2)
    assert FoldSettings.for_config(config, buffer=3, n_folds=4) == FoldSettings.for_model(
        (1, 4), 2, buffer=3, n_folds=4
    )
    spectral = ModelConfig(n_elements=4, variant="spectral", scales=(1, 4))
    assert spectral.receptive_radius == 0  # no spatial branch; folds still keep a 1-cell radius
    assert FoldSettings.for_config(spectral) == FoldSettings.for_model((1,), hops=1)


@pytest.mark.parametrize(
    "settings",
    [
        FoldSettings(),
        FoldSettings(method="loco", link_distance=5.0, buffer=8.0, min_neg_distance=2.5),
        FoldSettings(method="blocks", n_folds=4, buffer=0.0, block_size=12),
    ],
)
def test_fold_settings_round_trip_through_a_dict(settings):
    assert FoldSettings.from_dict(settings.to_dict()) == settings
    assert FoldSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings  # as stored in reports


def test_fold_settings_from_a_dict_name_unknown_keys():
    with pytest.raises(DataError, match="unknown fold setting.*bufer, seeds") as err:
        FoldSettings.from_dict({"bufer": 8, "seeds": [1], "n_folds": 3})
    assert err.value.settings == ("bufer", "seeds")
    with pytest.raises(DataError, match="buffer must be at least 0") as err:
        FoldSettings.from_dict({"buffer": -1})
    assert err.value.setting == "buffer" and error_line(err.value).endswith("(--buffer)")


def test_data_errors_keep_their_settings_through_pickling():
    error = DataError("use a smaller buffer", setting=("buffer", "n_folds"), values=(2,))
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.settings, again.values, again.setting) == (str(error), error.settings, (2,), "buffer")
    assert DataError("plain").settings == () and DataError("plain").setting is None
    assert error_line(DataError("plain", setting="not_a_flag")) == "error: plain"


def test_bad_requests_are_one_line_errors():
    rows, cols, pos = clustered_grid()
    n = deposit_clusters(rows, cols, pos, 7.0).max() + 1
    with pytest.raises(DataError, match=f"{n} deposit clusters cannot fill 20 folds: use at most {n} folds") as err:
        spatial_folds(rows, cols, pos, FoldSettings(n_folds=20, link_distance=7.0))
    assert err.value.settings == ("n_folds",) and err.value.values == (n, "loco") and "--" not in str(err.value)
    assert error_line(err.value).endswith(f"(--folds {n} or --folds loco)")  # the CLI names its flag
    with pytest.raises(DataError, match="no training") as err:
        spatial_folds(rows, cols, pos, FoldSettings(n_folds=2, link_distance=7.0, buffer=60.0))
    assert "use a smaller buffer or fewer folds" in str(err.value) and "--" not in str(err.value)
    assert err.value.settings == ("buffer", "n_folds")
    assert error_line(err.value).endswith("use a smaller buffer or fewer folds (--buffer; --folds)")
    with pytest.raises(DataError, match="unknown fold method"):
        FoldSettings(method="random")
    with pytest.raises(DataError, match="at least one deposit"):
        spatial_folds(rows, cols, [], FoldSettings())


def test_one_cluster_is_refused_with_the_way_out():
    rows, cols, pos = clustered_grid()
    for method in ("clusters", "loco"):
        with pytest.raises(DataError, match="1 cluster .* smaller link distance.* smaller scales") as err:
            spatial_folds(rows, cols, pos, FoldSettings(method=method, n_folds=3, link_distance=60.0))
        assert err.value.settings == ("link_distance", "scales") and "--" not in str(err.value)
        assert error_line(err.value).endswith("(--link-distance; --scales)")


def test_distance_to_a_region_is_the_same_through_the_raster_and_the_kd_tree():
    """Dense grids take the distance transform, sparse lattices (point samples) the KD-tree: both exact."""
    from scipy.spatial.distance import cdist

    from mstgat_core.training import folds

    rng = np.random.default_rng(4)
    for shape, n in (((30, 40), 900), ((3000, 2000), 400)):  # dense raster, then about 15,000 cells per node
        flat = rng.choice(shape[0] * shape[1], size=n, replace=False)
        rows, cols = np.unravel_index(flat, shape)
        in_region = (rows < shape[0] // 3) & (cols > shape[1] // 2)
        brute = cdist(np.c_[rows, cols], np.c_[rows, cols][in_region]).min(axis=1)
        np.testing.assert_allclose(folds.distance_to_region(rows, cols, in_region), brute, rtol=0, atol=1e-9)
    dense_area = 30 * 40
    assert dense_area <= folds.SPARSE_LATTICE * 900 < 3000 * 2000  # each case takes its own branch
