"""The notebooks' sources: every ``notebooks/NN_*.ipynb`` is paired with a jupytext
percent-format ``NN_*.py`` (the file people edit), the two hold the same cells, and
no committed notebook carries embedded JavaScript (Bokeh, HoloViews, Panel) or huge images.

After editing a ``.py``: ``jupytext --sync notebooks/*.py`` (see notebooks/README.md).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATTERN = "[0-9][0-9]_*"
FORMATS = "ipynb,py:percent"
SYNC = "jupytext --sync notebooks/*.py"
# output types that embed JavaScript in the .ipynb (Bokeh/HoloViews/Panel load and exec bundles)
SCRIPT_MIMETYPES = ("application/javascript", "application/vnd.bokehjs", "application/vnd.holoviews")
MAX_IMAGE_BYTES = 1_000_000  # 1 MB

IPYNBS = sorted(NOTEBOOKS.glob(f"{PATTERN}.ipynb"))
SOURCES = sorted(NOTEBOOKS.glob(f"{PATTERN}.py"))
STEMS = sorted({p.stem for p in IPYNBS + SOURCES})


def _cells(path: Path) -> list[tuple[str, str]]:
    """(cell type, source) of every cell, in order, as jupytext reads ``path``."""
    return [(cell.cell_type, cell.source) for cell in jupytext.read(path).cells]


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _image_bytes(mimetype: str, value) -> int:
    """Size of an image output: SVG is text, the other image types are base64."""
    text = _text(value)
    if mimetype.startswith("image/svg"):
        return len(text.encode())
    return len(base64.b64decode("".join(text.split())))


def _bundles(notebook: dict):
    """(where, mimetype, value) of every output and attachment of a raw .ipynb."""
    for i, cell in enumerate(notebook.get("cells", [])):
        for name, bundle in (cell.get("attachments") or {}).items():
            for mimetype, value in bundle.items():
                yield f"cell {i} attachment {name}", mimetype, value
        for j, output in enumerate(cell.get("outputs", [])):
            for mimetype, value in (output.get("data") or {}).items():
                yield f"cell {i} output {j}", mimetype, value


def test_there_are_notebooks():
    assert IPYNBS, f"no {PATTERN}.ipynb in {NOTEBOOKS}"


@pytest.mark.parametrize("stem", STEMS)
def test_every_notebook_has_its_paired_source(stem):
    ipynb, py = NOTEBOOKS / f"{stem}.ipynb", NOTEBOOKS / f"{stem}.py"
    assert py.exists(), f"{ipynb.name} has no percent-format source {py.name}: jupytext --set-formats {FORMATS} {ipynb}"
    assert ipynb.exists(), f"{py.name} has no {ipynb.name}: {SYNC}"
    for path in (ipynb, py):
        formats = jupytext.read(path).metadata.get("jupytext", {}).get("formats")
        assert formats == FORMATS, f"{path.name} is paired as {formats!r}, expected {FORMATS!r}"


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_and_source_hold_the_same_cells(stem):
    ipynb, py = NOTEBOOKS / f"{stem}.ipynb", NOTEBOOKS / f"{stem}.py"
    if not (ipynb.exists() and py.exists()):
        pytest.fail(f"{stem}: .ipynb and .py must both exist")
    source, notebook = _cells(py), _cells(ipynb)
    if source == notebook:
        return
    for i, (a, b) in enumerate(zip(source, notebook)):
        if a != b:
            pytest.fail(
                f"{py.name} and {ipynb.name} differ at cell {i} ({a[0]} in .py, {b[0]} in .ipynb):\n"
                f"--- .py\n{a[1][:400]}\n--- .ipynb\n{b[1][:400]}\nrun: {SYNC}"
            )
    pytest.fail(f"{py.name} has {len(source)} cells, {ipynb.name} {len(notebook)}: run: {SYNC}")


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.name)
def test_no_embedded_javascript_or_huge_images(ipynb):
    notebook = json.loads(ipynb.read_text(encoding="utf-8"))
    problems = []
    for where, mimetype, value in _bundles(notebook):
        if mimetype.startswith(SCRIPT_MIMETYPES):
            problems.append(f"{where}: {mimetype} (embedded JavaScript)")
        elif mimetype == "text/html" and "<script" in _text(value).lower():
            problems.append(f"{where}: text/html with a <script> (embedded JavaScript)")
        elif mimetype.startswith("image/") and (size := _image_bytes(mimetype, value)) > MAX_IMAGE_BYTES:
            problems.append(f"{where}: {mimetype} of {size / 1e6:.1f} MB (limit {MAX_IMAGE_BYTES / 1e6:.0f} MB)")
    assert not problems, f"{ipynb.name}: clear these outputs before committing:\n" + "\n".join(problems)
