"""Point surveys at scale (issue 26): ``mstgat score`` end to end and a dashboard click, a figure, never a test.

1. ``mstgat score SURVEY --target Au --out tmp.gpkg`` in a subprocess per survey (Southeast Alaska,
   30,112 samples, mini-batch pretraining and batched scoring; opengadbench-sed1, 1,392 samples, the
   whole graph per step as before): wall time, CPU time (user + system) and peak RSS of the child
   (``os.wait4``'s rusage: the child alone, whatever this process holds), samples per second.
2. The dashboard's click on a scored sample, without a browser, in a fresh subprocess: a Session scores
   Alaska's samples with a one-epoch model (the click's cost does not depend on the weights), then
   ``explain_sample_at`` at random places (the KD-tree's nearest sample explained on its receptive
   subgraph): first click, median, 95th percentile and max; the nodes touched; the same explanation
   through the whole graph once, for comparison; and the map's sample layer rasterised for a 600 x 600
   view (datashader), median of repeats.

The load average (``os.getloadavg``) is recorded before and after: other jobs on the machine slow
everything down.

Run: ``.venv/bin/python benchmarks/point_scale.py --json benchmarks/results-points-2core.json``
(about 4 minutes on 2 cores; ``--skip click`` or ``--skip score``; ``--surveys alaska`` for one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MSTGAT_SHARED_DATA", ROOT.parent / "shared" / "data"))
SURVEYS = {
    "alaska": DATA / "alaska-se" / "samples.parquet",
    "sed1": DATA / "opengadbench-sed1" / "area1_sediment_au.csv",
}


def count_samples(path: Path) -> int:
    import pandas as pd

    return len(pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path))


def score_run(name: str, path: Path, epochs: int) -> dict:
    """``mstgat score`` in a child process: wall, CPU, peak RSS (the child's own rusage)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"{name}.gpkg"
        command = [sys.executable, "-m", "mstgat_core", "score", str(path), "--target", "Au", "--out", str(out)]
        command += ["--epochs", str(epochs)]
        log, printed = Path(folder) / "stderr.txt", Path(folder) / "stdout.txt"
        start = time.perf_counter()
        with open(log, "w") as err, open(printed, "w") as std:
            child = subprocess.Popen(command, stdout=std, stderr=err, cwd=ROOT)
            _, status, usage = os.wait4(child.pid, 0)  # the child's own rusage
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout = printed.read_text()
        lines = [line.strip() for line in log.read_text().replace("\r", "\n").splitlines() if line.strip()]
        if child.returncode:
            raise SystemExit(f"{name}: mstgat score failed:\n" + "\n".join(lines[-20:]))
        n = count_samples(path)
        return {
            "survey": name,
            "file": str(path.relative_to(DATA.parent)) if DATA.parent in path.parents else str(path),
            "samples": n,
            "command": f"mstgat score {path.name} --target Au --out {name}.gpkg"
            + (f" --epochs {epochs}" if epochs != 30 else ""),
            "epochs": epochs,
            "wall_s": round(wall, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_gb": round(usage.ru_maxrss / 1e6, 2),  # kB on Linux
            "samples_per_s": round(n / wall, 1),
            "stdout": stdout.strip(),
            "stderr_last_bars": [
                [line for line in lines if line.startswith(bar)][-1] for bar in ("pretraining", "scoring")
            ],
            "stderr_notes": [line for line in lines if "mini-batches" in line or line.startswith("scale ")],
        }


def click_run(path: Path, clicks: int, seed: int = 0) -> dict:
    """The dashboard's click path on a scored survey (run in a child: ``--click-child``)."""
    import holoviews as hv
    import numpy as np
    import torch

    from mstgat_core.dashboard import plots_map
    from mstgat_core.dashboard.state import Session
    from mstgat_core.data.points import load_points

    hv.extension("bokeh")
    samples = load_points(path)
    session = Session()
    session.model.epochs = 1
    session.data.samples = samples
    start = time.perf_counter()
    scores = session.score_samples()
    scoring = time.perf_counter() - start
    fitted = session.model.point_model
    rng = np.random.default_rng(seed)
    xy = fitted.graph.xy
    places = xy[rng.choice(len(xy), clicks, replace=False)] + rng.normal(0, 200, (clicks, 2))
    times, nodes = [], []
    for x, y in places:
        t0 = time.perf_counter()
        sample = session.explanation.explain_sample_at(float(x), float(y))
        times.append(time.perf_counter() - t0)
        nodes.append(sample["subgraph_nodes"])
    t0 = time.perf_counter()
    with torch.no_grad():  # the same explanation through the whole graph (the path before issue 26)
        fitted.model(fitted.x, list(fitted.graph.edge_index), nodes=[sample["sample"]], return_details=True)
    whole = time.perf_counter() - t0
    rasters = []
    for _ in range(5):
        t0 = time.perf_counter()
        plots_map.sample_raster(None, scores, width=600, height=600)
        rasters.append(time.perf_counter() - t0)
    session.cleanup()
    rest = sorted(times[1:])
    return {
        "samples": len(xy),
        "session_scoring_1_epoch_s": round(scoring, 1),
        "clicks": clicks,
        "first_click_s": round(times[0], 3),
        "click_median_s": round(statistics.median(rest), 3),
        "click_p95_s": round(rest[int(0.95 * (len(rest) - 1))], 3),
        "click_max_s": round(max(times), 3),
        "subgraph_nodes_median": int(statistics.median(nodes)),
        "subgraph_nodes_max": int(max(nodes)),
        "whole_graph_explanation_s": round(whole, 3),
        "sample_raster_600px_median_s": round(statistics.median(rasters), 3),
        "torch_threads": torch.get_num_threads(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--surveys", default="alaska,sed1", help="comma-separated: alaska, sed1")
    parser.add_argument("--epochs", type=int, default=30, help="pretraining epochs of mstgat score (its default)")
    parser.add_argument("--clicks", type=int, default=30, help="clicks timed on Alaska")
    parser.add_argument("--skip", default="", help="comma-separated: score, click")
    parser.add_argument("--click-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.click_child:
        print(json.dumps(click_run(Path(args.click_child), args.clicks)))
        return 0
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "targets": {"alaska_wall_s": 600, "alaska_peak_rss_gb": 4.0, "click_s": 1.0},
        "score": [],
    }
    for name in [s.strip() for s in args.surveys.split(",") if s.strip()]:
        if "score" in skip:
            break
        run = score_run(name, SURVEYS[name], args.epochs)
        print(json.dumps(run, indent=1), flush=True)
        result["score"].append(run)
    if "click" not in skip:
        command = [sys.executable, __file__, "--click-child", str(SURVEYS["alaska"]), "--clicks", str(args.clicks)]
        child = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if child.returncode:
            raise SystemExit("click run failed:\n" + child.stderr[-3000:])
        result["click"] = json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps(result["click"], indent=1), flush=True)
    result["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
