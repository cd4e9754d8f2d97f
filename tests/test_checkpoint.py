import pickle

import pytest
import torch
import xarray as xr

from mstgat_core import DataError
from mstgat_core.data.io import deposit_cells
from mstgat_core.training.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from mstgat_core.training.pipeline import fit
from mstgat_core.training.pretrain import PretrainConfig


@pytest.fixture(scope="module")
def fitted_and_grid(small_scenario):
    grid = small_scenario.grid
    deposits = deposit_cells(grid, small_scenario.deposits)
    fitted = fit(grid, deposits, {"scales": (1, 2)}, pretrain_config=PretrainConfig(epochs=3, steps_per_epoch=3))
    return fitted, grid


def test_round_trip_gives_identical_predictions(fitted_and_grid, tmp_path):
    fitted, grid = fitted_and_grid
    path = save_checkpoint(fitted, tmp_path / "model.safetensors", data=grid)
    loaded = load_checkpoint(path)
    xr.testing.assert_identical(fitted.predict(grid), loaded.predict(grid))
    assert loaded.normaliser == fitted.normaliser
    assert loaded.config == fitted.config
    meta = read_metadata(path)
    assert meta["data_fingerprint"].startswith("sha256:")
    assert meta["pretrain"]["config"]["epochs"] == 3 and meta["package_version"]
    assert meta["finetune"]["result"]["chosen_by"] in ("inner-cv", "default") and meta["model_config"]["members"] == 5


class RunsCode:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['MSTGAT_PWNED'], 'w').write('ran')",))


def test_checkpoint_that_runs_code_on_load_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("MSTGAT_PWNED", str(marker))
    evil = tmp_path / "evil.safetensors"
    torch.save({"weights": RunsCode()}, evil)  # a torch/pickle file that executes code when unpickled
    with pytest.raises(DataError, match="not an MSTGAT checkpoint"):
        load_checkpoint(evil)
    evil_pickle = tmp_path / "evil.pkl"
    evil_pickle.write_bytes(pickle.dumps(RunsCode()))
    with pytest.raises(DataError):
        load_checkpoint(evil_pickle)
    assert not marker.exists()


def test_missing_elements_are_named(fitted_and_grid):
    fitted, grid = fitted_and_grid
    dropped = list(grid.data_vars)[:2]
    with pytest.raises(DataError, match="missing from the data: " + ", ".join(dropped)):
        fitted.predict(grid.drop_vars(dropped))


def test_tampered_metadata_is_refused(fitted_and_grid, tmp_path):
    import json

    from safetensors.torch import save_file

    fitted, _ = fitted_and_grid
    tensors = {k: v.contiguous() for k, v in fitted.model.state_dict().items()}
    bad = tmp_path / "bad.safetensors"
    save_file(
        tensors,
        bad,
        metadata={
            "mstgat": json.dumps(
                {
                    "format": "mstgat-checkpoint",
                    "format_version": 1,
                    "model_config": {"n_elements": 6, "evil": 1},
                    "normaliser": {"elements": ["a"] * 6},
                }
            )
        },
    )
    with pytest.raises(DataError, match="invalid model config: unknown setting.* evil"):
        load_checkpoint(bad)
    save_file(tensors, bad)  # a plain safetensors file with no MSTGAT metadata
    with pytest.raises(DataError, match="no MSTGAT metadata"):
        load_checkpoint(bad)


def test_extra_metadata_is_kept_but_cannot_replace_the_standard_keys(fitted_and_grid, tmp_path):
    fitted, grid = fitted_and_grid
    path = save_checkpoint(fitted, tmp_path / "m.safetensors", extra={"survey": "demo"})
    assert read_metadata(path)["survey"] == "demo"
    with pytest.raises(DataError, match="model_config"):
        save_checkpoint(fitted, tmp_path / "bad.safetensors", extra={"model_config": {}, "survey": "x"})
    assert not (tmp_path / "bad.safetensors").exists()


def test_a_checkpoint_declaring_absurd_shapes_is_refused_before_allocation(fitted_and_grid, tmp_path):
    """Metadata claiming a 2^20-wide Transformer (about 10^12 parameters) over tiny weights: refused by
    comparing shapes on the meta device, so nothing of that size is ever allocated."""
    import json
    import resource
    import time

    from safetensors import safe_open
    from safetensors.torch import save_file

    fitted, _ = fitted_and_grid
    good = tmp_path / "good.safetensors"
    save_checkpoint(fitted, good)
    with safe_open(str(good), framework="pt") as f:
        metadata = json.loads(f.metadata()["mstgat"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    metadata["model_config"]["d_model"] = 1 << 20
    bad = tmp_path / "absurd.safetensors"
    save_file(tensors, str(bad), metadata={"mstgat": json.dumps(metadata)})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="absurd.safetensors: weights do not match the model config"):
        load_checkpoint(bad)
    assert time.perf_counter() - t0 < 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB: no giant allocation
