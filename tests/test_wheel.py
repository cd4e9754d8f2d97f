"""The installable product: the wheel carries the demo, and an installed copy finds it (mstgat_core/paths.py).

The slow test builds the wheel from a copy of the sources (so no ``build/`` folder is left in the
checkout), installs it without dependencies into a fresh folder, and runs it from outside the
checkout with that folder first on ``PYTHONPATH``: the dependencies come from the current venv, the
package from the wheel (the editable install must not win).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from mstgat_core import paths

CHECKOUT = Path(__file__).resolve().parents[1]
PACKAGE = CHECKOUT / "mstgat_core"
MAX_WHEEL_BYTES = 6_000_000  # the demo grid is ~2.4 MB compressed; everything else is small
DEMO_FILES = [
    "south_china_li.nc",
    "south_china_li_deposits.csv",
    "LICENSE-south-china-li.txt",
    "mstgat_south_china.safetensors",
    "mstgat_south_china_layers.nc",
]
# Module-level paths (relative to the install folder) that the dashboard still builds from ROOT / "docs" /
# "results" instead of importing mstgat_core.paths.DEMO_REPORT / EXPLAIN_REPORT: missing in an installed
# wheel, tolerated until those modules use paths.py (then empty this set).
PENDING_PATHS: set[str] = set()


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSTGAT_") and k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def test_package_list_matches_the_folders():
    """pyproject.toml lists packages explicitly (for the assets mapping): every sub-package must be there."""
    from setuptools.config.pyprojecttoml import load_file  # tomllib or its vendored tomli (Python 3.10)

    config = load_file(CHECKOUT / "pyproject.toml")["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = set(config["package-dir"])
    found = {
        ".".join(p.parent.relative_to(CHECKOUT).parts)
        for p in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found - listed == set(), "add these sub-packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - mapped == found, f"listed in pyproject.toml but no folder: {sorted(listed - mapped - found)}"
    assert config["package-dir"] == {"mstgat_core._assets": "assets", "mstgat_core._results": "docs/results"}


def test_paths_in_the_checkout():
    assert not paths.INSTALLED
    assert paths.ASSETS == CHECKOUT / "assets"
    assert paths.RESULTS == CHECKOUT / "docs" / "results"
    for name in DEMO_FILES:
        assert (paths.ASSETS / name).is_file(), name
    for path in (paths.DEMO_GRID, paths.DEMO_DEPOSITS, paths.DEMO_CHECKPOINT, paths.DEMO_LAYERS, paths.DEMO_LICENSE):
        assert path.is_file(), path
    assert paths.DEMO_REPORT.is_file() and paths.EXPLAIN_REPORT.is_file()


def test_shared_data_follows_the_environment(tmp_path):
    def shared_data(**env) -> Path:
        done = subprocess.run(
            [sys.executable, "-c", "from mstgat_core import paths; print(paths.SHARED_DATA)"],
            env=_env(PYTHONPATH=str(CHECKOUT), **env),
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return Path(done.stdout.strip())

    assert shared_data(MSTGAT_SHARED_DATA=str(tmp_path / "elsewhere")) == tmp_path / "elsewhere"
    assert shared_data() == CHECKOUT.parent / "shared" / "data"
    assert shared_data(MSTGAT_SHARED_DATA="") == CHECKOUT.parent / "shared" / "data"  # empty = unset


def _copy_sources(dest: Path) -> Path:
    """What the build reads, copied away from the checkout (a build leaves build/ and *.egg-info behind)."""
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "_assets", "_results")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(CHECKOUT / name, dest / name)
    shutil.copytree(PACKAGE, dest / "mstgat_core", ignore=junk)
    shutil.copytree(CHECKOUT / "assets", dest / "assets", ignore=junk)
    shutil.copytree(CHECKOUT / "docs" / "results", dest / "docs" / "results", ignore=junk)
    return dest


# Run in the installed copy: where everything resolves, then the dashboard's app (not served).
INSTALLED_CHECK = textwrap.dedent(
    """
    import importlib, importlib.util, json, sys
    from pathlib import Path

    import mstgat_core
    from mstgat_core import paths

    site = Path(sys.argv[1]).resolve()
    out = {"file": mstgat_core.__file__, "installed": paths.INSTALLED,
           "demo": {k: str(getattr(paths, k)) for k in dir(paths) if k.startswith("DEMO_") or k.endswith("_REPORT")}}
    if importlib.util.find_spec("panel") is None:
        out["dashboard"] = "skipped: panel is not installed (the ui extra)"
    else:
        name = "mstgat_core.dashboard.app"
        if importlib.util.find_spec(name) is None:
            name = "mstgat_core.dashboard.views"
            out["dashboard_note"] = "mstgat_core.dashboard.app is absent: imported views.create_app instead"
        module = importlib.import_module(name)
        assert name.endswith(".app") or callable(module.create_app)
        out["dashboard"] = name
    missing = {}  # absolute module-level paths into the installed folder that do not exist
    for mod_name, mod in list(sys.modules.items()):
        if not mod_name.startswith("mstgat_core"):
            continue
        for attr, value in list(vars(mod).items()):
            if isinstance(value, Path) and value.is_absolute() and value.is_relative_to(site) and not value.exists():
                missing[f"{mod_name}.{attr}"] = value.relative_to(site).as_posix()
    out["missing"] = missing
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_installed_wheel_runs_the_demo(tmp_path):
    source = _copy_sources(tmp_path / "src")
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("mstgat_explorer-*.whl")

    # What the wheel holds: the demo and the figures, nothing from tests/, notebooks/ or docs/screenshots.
    assert wheel.stat().st_size < MAX_WHEEL_BYTES, f"wheel is {wheel.stat().st_size / 1e6:.1f} MB"
    names = zipfile.ZipFile(wheel).namelist()
    for name in DEMO_FILES:
        assert f"mstgat_core/_assets/{name}" in names
    assert {"mstgat_core/_results/south_china_li.json", "mstgat_core/_results/explain.json"} <= set(names)
    assert "mstgat_core/dashboard/views.py" in names
    stray = [n for n in names if not n.startswith(("mstgat_core/", "mstgat_explorer-"))]
    stray += [n for n in names if any(p in n for p in ("tests/", "notebooks/", "screenshots", "__pycache__"))]
    assert not stray, stray

    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--no-compile", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert install.returncode == 0, install.stderr[-3000:]
    installed_grid = site / "mstgat_core" / "_assets" / "south_china_li.nc"
    assert installed_grid.is_file()

    env = _env(PYTHONPATH=str(site))
    check = subprocess.run(
        [sys.executable, "-c", INSTALLED_CHECK, str(site)], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr[-3000:]
    found = json.loads(check.stdout.strip().splitlines()[-1])
    assert Path(found["file"]).resolve().is_relative_to(site.resolve()), f"imported {found['file']}, not the wheel"
    assert found["installed"] is True
    for name, value in found["demo"].items():
        assert Path(value).is_file() and Path(value).is_relative_to(site.resolve()), (name, value)
    assert set(found["missing"].values()) <= PENDING_PATHS, f"installed paths that do not exist: {found['missing']}"
    if found["missing"]:
        print(f"pending (not found in the installed wheel): {found['missing']}")
    if found["dashboard"].startswith("skipped"):
        print(found["dashboard"])
    if "dashboard_note" in found:
        print(found["dashboard_note"])  # shown with -s / -rA; the fallback still imports the app factory

    info = subprocess.run(
        [sys.executable, "-m", "mstgat_core", "info", str(installed_grid)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert info.returncode == 0, info.stderr[-3000:]
    assert "elements (39):" in info.stdout, info.stdout[:500]
