from pathlib import Path

import pytest

from mstgat_core.paths import SHARED_DATA  # ../shared/data, or MSTGAT_SHARED_DATA

LONGEST_FIRST = ("tests/ui/", "tests/test_explain_recovery.py")  # the browser group, the ten explanation fits


def pytest_collection_modifyitems(items):
    """The longest groups first, so that under xdist they start at once instead of ending the run alone."""
    items.sort(key=lambda item: not any(part in item.nodeid for part in LONGEST_FIRST))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets next to the project (../shared/data); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_scenario():
    from mstgat_core.data.synthetic import make_scenario

    return make_scenario(shape=(64, 56), n_elements=6, seed=3)


@pytest.fixture
def dashboard_session(small_scenario):
    """A dashboard Session on the small synthetic scenario, its folders removed afterwards."""
    from mstgat_core.dashboard.state import Session

    s = Session()
    s.set_data(small_scenario.grid, small_scenario.deposits, "small synthetic")
    yield s
    s.cleanup()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run two at a time on two cores; more threads per worker only thrash (torch's, and the
    random forests' processes: MSTGAT_JOBS)."""
    import os

    import torch

    os.environ["MSTGAT_JOBS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _threads_restored():
    """A test that changes torch's threads (a CLI command does, through the library) hands back one thread."""
    import torch

    yield
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@pytest.fixture
def tiny_point_model(monkeypatch):
    """Point surveys scored by a tiny model (scales 4 and 8 cells, widths of 8, one pretraining step): the
    dashboard's scoring path in a second."""
    from mstgat_core.training import point_model
    from mstgat_core.training.pretrain import PretrainConfig

    pretrain_points = point_model.pretrain_points

    def tiny(samples, **options):
        options.update(scales=(4, 8), model_config={"d_model": 8, "heads": 2, "layers": 1, "gat_hidden": 8})
        options["pretrain_config"] = PretrainConfig(epochs=1, steps_per_epoch=1)
        return pretrain_points(samples, **options)

    monkeypatch.setattr(point_model, "pretrain_points", tiny)


@pytest.fixture
def synchronous_callbacks(monkeypatch):
    """Async watchers (the dashboard's stream and widget callbacks) run to their end before the event returns.

    param and Panel hand a coroutine to ``param.parameterized.async_executor``, which schedules it on the
    running event loop if there is one. A test worker that ran a browser test has playwright's loop running
    in its main thread, so there the callbacks were only scheduled, never run, and the session-level tests
    that fire them failed or passed depending on which worker xdist gave them."""
    import param

    from mstgat_core.testing import run_in_a_fresh_loop

    monkeypatch.setattr(param.parameterized, "async_executor", lambda func: run_in_a_fresh_loop(func()))
