"""Keep a notebook's static outputs only: drop JS/Bokeh/HoloViews bundles (they embed megabytes of JS)."""

import sys

import nbformat

DROP = ("application/javascript", "application/vnd.bokehjs", "application/vnd.holoviews")
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None:
                for key in [k for k in data if k.startswith(DROP)]:
                    del data[key]
                if "text/html" in data and "<script" in str(data["text/html"]):
                    del data["text/html"]
                if not data:
                    continue
            kept.append(out)
        cell["outputs"] = kept
    nbformat.write(nb, path)
    print("stripped", path)
