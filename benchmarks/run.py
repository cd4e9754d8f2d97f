"""Speed and scale benchmarks of MSTGAT Explorer (not tests).

    python benchmarks/run.py [--quick] [--json out.json] [--tile 256]

Sections:
1. South China demo: load, preprocess, graph build; the default fit
   (pretraining, then fine-tuning 1 and 5 members) and the from-scratch
   ablation (one epoch, training to early stop); full-grid prediction,
   ``explain_cell`` latency.
2. Prediction scaling on synthetic grids (~0.25, 1, 4 M cells) with the
   default model (pretrained readout, 5 members): throughput and peak memory,
   each size in its own subprocess (peak RSS from ``/proc`` VmHWM plus psutil
   sampling during prediction).
3. Achieved FLOP/s of the spectral branch (analytic FLOP count) vs a dense
   ``torch.mm`` of similar size, same process, same threads.

Prints a table and writes JSON. Timings on a shared machine are noisy: the
load average at start and end is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

ASSETS = ROOT / "assets"
TARGETS = {
    "cells_per_s": 20_000,
    "peak_rss_gb_4m": 4.0,
    "time_ratio_per_4x": 4.5,
    "spectral_vs_mm": 0.30,
}


def now():
    return time.perf_counter()


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# --------------------------------------------------------------------------- demo


def bench_demo(quick: bool, tile: int, epochs: int | None = None) -> dict:
    from mstgat_core.data.io import deposit_cells, load_deposits, load_grid
    from mstgat_core.data.preprocess import Normaliser, valid_mask
    from mstgat_core.graphs.graph import build_graph
    from mstgat_core.interpret import explain_cell
    from mstgat_core.training.pipeline import fit
    from mstgat_core.training.train import TrainConfig

    out = {}
    t = now()
    ds = load_grid(ASSETS / "south_china_li.nc")
    deposits = deposit_cells(ds, load_deposits(ASSETS / "south_china_li_deposits.csv"))
    out["load_s"] = now() - t
    out["grid"] = [int(ds.sizes["y"]), int(ds.sizes["x"])]
    out["elements"] = len(ds.data_vars)

    t = now()
    norm = Normaliser().fit(ds)
    mask = valid_mask(ds, norm.elements)
    features = norm.transform(ds, mask)
    out["preprocess_s"] = now() - t
    out["valid_cells"] = int(mask.sum())
    t = now()
    build_graph(mask, (1, 2, 3), "window")
    out["graph_build_s"] = now() - t
    del features

    from mstgat_core.model import ModelConfig
    from mstgat_core.training.finetune import finetune
    from mstgat_core.training.pretrain import PretrainConfig

    pretrain_config = PretrainConfig(epochs=3) if quick else PretrainConfig()
    t = now()
    trained = fit(ds, deposits, members=5, pretrain_config=pretrain_config)
    out["fit_pretrained_k5_s"] = now() - t
    out["pretrain_s"] = trained.metadata["pretrain"]["result"]["seconds"]
    out["pretrain_epochs"] = pretrain_config.epochs
    out["finetune_k5_s"] = trained.train_result.seconds
    prepared = trained.prepare(ds)
    rows, cols = prepared.rows_cols
    positives = np.flatnonzero(deposits.values[prepared.graph.mask])
    one = type(trained.model)(ModelConfig.from_dict(trained.config.to_dict(), members=1))
    one.load_backbone(trained.model.state_dict())
    features = one.grid_features(prepared.x, prepared.graph.stencil)
    t = now()
    finetune(one, prepared.x, prepared.graph.stencil, rows, cols, positives, features=features)
    out["finetune_k1_frozen_features_s"] = now() - t
    t = now()
    finetune(trained.model, prepared.x, prepared.graph.stencil, rows, cols, positives, features=features)
    out["finetune_k5_frozen_features_s"] = now() - t
    out["finetune_per_member_s"] = (out["finetune_k5_frozen_features_s"] - out["finetune_k1_frozen_features_s"]) / 4

    epochs = epochs or (3 if quick else TrainConfig().epochs)
    t = now()
    scratch = fit(ds, deposits, train_config=TrainConfig(epochs=epochs), members=1, pretrained=False)
    out["fit_scratch_s"] = now() - t
    result = scratch.train_result
    seconds = [e.seconds for e in result.history]
    out["epoch_s"] = float(np.median(seconds))
    out["epochs_run"] = len(result.history)
    out["train_s"] = result.seconds
    out["train_stopped"] = result.stopped

    ckpt = ASSETS / "mstgat_south_china.safetensors"
    if ckpt.exists():
        from mstgat_core.training.checkpoint import load_checkpoint

        fitted = load_checkpoint(ckpt)
        out["prediction_model"] = ckpt.name
    else:
        fitted = trained
        out["prediction_model"] = "trained in this run"
    fitted.model.eval()
    fitted.predict(ds)  # warm-up (graph code paths, allocator)
    t = now()
    probability = fitted.predict(ds)
    out["predict_s"] = now() - t
    out["predict_cells_per_s"] = out["valid_cells"] / out["predict_s"]
    t = now()
    tiled = fitted.predict(ds, tile=tile)
    out["predict_tiled_s"] = now() - t
    out["tiled_max_abs_diff"] = float(np.nanmax(np.abs(tiled.values - probability.values)))

    prepared = fitted.prepare(ds)
    rows, cols = prepared.rows_cols
    picks = np.random.default_rng(0).choice(len(rows), size=2 if quick else 5, replace=False)
    explain_cell(fitted, prepared, row=int(rows[picks[0]]), col=int(cols[picks[0]]))  # warm-up
    times = []
    for i in picks:
        t = now()
        explain_cell(fitted, prepared, row=int(rows[i]), col=int(cols[i]))
        times.append(now() - t)
    out["explain_cell_s"] = float(np.median(times))
    return out


# --------------------------------------------------------------------------- scaling


def peak_rss_gb() -> float:
    """This process's peak resident memory (GB).

    ``VmHWM`` belongs to the process's own address space, so unlike
    ``getrusage``'s ``ru_maxrss`` it does not inherit the parent's peak across
    fork + exec (which made every child report the parent's 2.1 GB).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 2**30
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30


def scaling_child(side: int, tile: int, n_elements: int, repeats: int = 1, members: int = 5) -> dict:
    """Runs in its own process: synthetic grid of side x side cells, tiled prediction of every layer."""
    import psutil

    from mstgat_core.data.preprocess import Normaliser
    from mstgat_core.data.synthetic import make_scenario
    from mstgat_core.model import MSTGAT, ModelConfig
    from mstgat_core.training.pipeline import FittedModel

    process = psutil.Process()
    t = now()
    ds = make_scenario(shape=(side, side), n_elements=n_elements, seed=1).grid
    make_s = now() - t
    torch.manual_seed(0)
    # Untrained weights: prediction cost does not depend on their values.
    config = ModelConfig(n_elements=n_elements, readout="fused", members=members)
    fitted = FittedModel(MSTGAT(config), Normaliser().fit(ds))
    valid = int(np.isfinite(ds.to_array()).all("variable").sum())
    rss_before = process.memory_info().rss
    peak = [rss_before]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    times = []
    for _ in range(max(int(repeats), 1)):  # best of N: the machine's speed drifts by +-30 % over minutes
        t = now()
        fitted.predict_layers(ds, tile=tile)
        times.append(now() - t)
    seconds = min(times)
    stop.set()
    sampler.join()
    return {
        "side": side,
        "cells": side * side,
        "valid_cells": valid,
        "tile": tile,
        "elements": n_elements,
        "members": members,
        "make_grid_s": make_s,
        "predict_s": seconds,
        "predict_runs_s": times,
        "cells_per_s": valid / seconds,
        "rss_before_predict_gb": rss_before / 2**30,
        "peak_rss_predict_gb": peak[0] / 2**30,
        "peak_rss_process_gb": peak_rss_gb(),
        "torch_threads": torch.get_num_threads(),
    }


def bench_scaling(sides, tile: int, n_elements: int, repeats: int = 1, members: int = 5) -> dict:
    rows = []
    for side in sides:
        cmd = [
            sys.executable,
            __file__,
            "--child-size",
            str(side),
            "--tile",
            str(tile),
            "--elements",
            str(n_elements),
            "--repeats",
            str(repeats),
            "--members",
            str(members),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"scaling run {side}x{side} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(
            f"  {side}x{side}: {rows[-1]['predict_s']:.1f} s, {rows[-1]['cells_per_s']:.0f} cells/s, "
            f"peak {rows[-1]['peak_rss_process_gb']:.2f} GB",
            flush=True,
        )
    ratios = [b["predict_s"] / a["predict_s"] for a, b in zip(rows, rows[1:])]
    return {"runs": rows, "time_ratio_per_4x": ratios}


# --------------------------------------------------------------------------- spectral FLOP/s


def spectral_flops_per_cell(n_elements: int, d: int, layers: int, ff: int) -> int:
    """Multiply-adds x 2 of one cell through the spectral branch (LayerNorm, softmax, GELU not counted).

    Counts the work the inference path does: every layer but the last updates
    all tokens; the last updates only [CLS] (its keys and values still come
    from all tokens).
    """
    tokens = n_elements + 1
    embed = 3 * n_elements * d  # value * w + b + embedding

    def layer(queries: int) -> int:
        projections = tokens * 2 * d * 2 * d + queries * 2 * d * d  # K, V for all tokens; Q for the queries
        mixing = 2 * 2 * queries * tokens * d  # scores QK^T and weights @ V over all heads
        return projections + mixing + queries * (2 * d * d + 2 * 2 * d * ff)  # out projection, FF

    return embed + (layers - 1) * layer(tokens) + layer(1)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = now()
        fn()
        best = min(best, now() - t)
    return best


@torch.no_grad()
def bench_spectral(quick: bool, n_elements: int = 10) -> dict:
    from mstgat_core.model import MSTGAT, ModelConfig

    c = ModelConfig(n_elements=n_elements, variant="spectral")
    model = MSTGAT(c).eval()
    cells = 16384 if quick else 131072
    x = torch.randn(cells, n_elements)
    repeats = 2 if quick else 3
    flops = spectral_flops_per_cell(n_elements, c.d_model, c.layers, c.ff_mult * c.d_model) * cells
    spectral_s = timed(lambda: model.predict_grid(x, None), repeats)  # + a 2-layer 32-wide head (not counted)
    n = 1024 if quick else 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    mm_s = timed(lambda: torch.mm(a, b), repeats)
    mm_flops = 2 * n**3
    out = {
        "elements": n_elements,
        "batch": model.spectral_batch(),
        "cells": cells,
        "flops": flops,
        "seconds": spectral_s,
        "gflops": flops / spectral_s / 1e9,
        "mm_n": n,
        "mm_gflops": mm_flops / mm_s / 1e9,
        "torch_threads": torch.get_num_threads(),
    }
    out["ratio"] = out["gflops"] / out["mm_gflops"]
    return out


# --------------------------------------------------------------------------- report


def table(results: dict) -> str:
    lines = ["| measure | value | target | met |", "| --- | --- | --- | --- |"]

    def row(name, value, target="", met=""):
        lines.append(f"| {name} | {value} | {target} | {met} |")

    def yes(ok):
        return "yes" if ok else "**no**"

    d = results.get("demo")
    if d:
        row("demo grid (cells, valid, elements)", f"{d['grid'][0]}x{d['grid'][1]}, {d['valid_cells']}, {d['elements']}")
        row("demo load (NetCDF + deposits)", f"{d['load_s']:.2f} s")
        row("demo preprocess (normaliser fit + transform)", f"{d['preprocess_s']:.2f} s")
        row("demo graph build (scales 1,2,3)", f"{d['graph_build_s']:.2f} s")
        if "pretrain_s" in d:
            row(
                "demo default fit: pretraining + fine-tuning 5 members",
                f"{d['fit_pretrained_k5_s']:.1f} s (pretraining {d['pretrain_s']:.1f} s, "
                f"{d['pretrain_epochs']} epochs; fine-tuning {d['finetune_k5_s']:.1f} s)",
                "< 120 s",
                yes(d["fit_pretrained_k5_s"] < 120),
            )
            row(
                "demo fine-tuning on frozen features: 1 / 5 members",
                f"{d['finetune_k1_frozen_features_s']:.2f} / {d['finetune_k5_frozen_features_s']:.2f} s "
                f"({d['finetune_per_member_s']:.2f} s per extra member)",
            )
        row("demo from scratch: one training epoch (median)", f"{d['epoch_s']:.2f} s")
        row(
            "demo from scratch: training to stop",
            f"{d['train_s']:.1f} s ({d['epochs_run']} epochs, {d['train_stopped']})",
        )
        row("demo full-grid prediction", f"{d['predict_s']:.2f} s = {d['predict_cells_per_s']:,.0f} cells/s")
        row("demo tiled prediction (max abs diff)", f"{d['predict_tiled_s']:.2f} s ({d['tiled_max_abs_diff']:.1e})")
        e = d.get("explain_cell_s")
        row("demo explain_cell latency", "n/a" if e is None else f"{e * 1000:.0f} ms")
    s = results.get("scaling")
    if s:
        for r in s["runs"]:
            ok = r["cells_per_s"] >= TARGETS["cells_per_s"]
            row(
                f"predict {r['side']}x{r['side']}, {r.get('members', 1)} members "
                f"({r['valid_cells'] / 1e6:.2f} M valid, tile {r['tile']})",
                f"{r['predict_s']:.1f} s = {r['cells_per_s']:,.0f} cells/s",
                f">= {TARGETS['cells_per_s']:,}",
                yes(ok),
            )
        for r in s["runs"]:
            target = f"< {TARGETS['peak_rss_gb_4m']} GB" if r["cells"] >= 4_000_000 else ""
            met = yes(r["peak_rss_process_gb"] < TARGETS["peak_rss_gb_4m"]) if target else ""
            row(
                f"peak RSS {r['side']}x{r['side']} (whole process / during prediction)",
                f"{r['peak_rss_process_gb']:.2f} / {r['peak_rss_predict_gb']:.2f} GB",
                target,
                met,
            )
        for (a, b), ratio in zip(zip(s["runs"], s["runs"][1:]), s["time_ratio_per_4x"]):
            row(
                f"time ratio {b['side']}² / {a['side']}²",
                f"{ratio:.2f}",
                f"<= {TARGETS['time_ratio_per_4x']}",
                yes(ratio <= TARGETS["time_ratio_per_4x"]),
            )
    f = results.get("spectral")
    if f:
        row(f"spectral branch FLOP/s (batch {f['batch']}, {f['elements']} elements)", f"{f['gflops']:.1f} GFLOP/s")
        row(f"dense torch.mm {f['mm_n']}³", f"{f['mm_gflops']:.1f} GFLOP/s")
        row(
            "spectral / dense ratio",
            f"{f['ratio']:.0%}",
            f">= {TARGETS['spectral_vs_mm']:.0%}",
            yes(f["ratio"] >= TARGETS["spectral_vs_mm"]),
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--tile", type=int, default=256, help="tile size of the scaling runs (default 256)")
    parser.add_argument("--elements", type=int, default=10, help="elements of the synthetic grids (default 10)")
    parser.add_argument("--skip", default="", help="comma list of sections to skip: demo,scaling,spectral")
    parser.add_argument("--sides", help="comma list of synthetic grid sides (default 500,1000,2000; quick 125,250,500)")
    parser.add_argument("--epochs", type=int, help="cap on demo training epochs (default: TrainConfig's, quick 3)")
    parser.add_argument("--repeats", type=int, default=1, help="scaling runs: best of N predictions per size")
    parser.add_argument("--members", type=int, default=5, help="ensemble members of the scaling runs (default 5)")
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_size:
        print(json.dumps(scaling_child(args.child_size, args.tile, args.elements, args.repeats, args.members)))
        return 0

    skip = set(filter(None, args.skip.split(",")))
    results = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_average_start": load_average(),
        },
        "quick": args.quick,
        "targets": TARGETS,
    }
    if "spectral" not in skip:
        print("spectral branch FLOP/s ...", flush=True)
        results["spectral"] = bench_spectral(args.quick, args.elements)
    if "demo" not in skip:
        print("South China demo ...", flush=True)
        results["demo"] = bench_demo(args.quick, args.tile, args.epochs)
    if "scaling" not in skip:
        print("prediction scaling ...", flush=True)
        sides = (125, 250, 500) if args.quick else (500, 1000, 2000)
        if args.sides:
            sides = tuple(int(v) for v in args.sides.split(","))
        results["scaling"] = bench_scaling(
            sides, min(args.tile, 128) if args.quick else args.tile, args.elements, args.repeats, args.members
        )
    results["machine"]["load_average_end"] = load_average()
    print()
    print(table(results))
    print(
        f"\nload average start {results['machine']['load_average_start']}, end {results['machine']['load_average_end']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
