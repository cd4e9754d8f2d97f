"""Train the bundled South China MSTGAT checkpoint.

    python scripts/build_checkpoint.py [--out assets/mstgat_south_china.safetensors] [--seed 0]

Uses the bundled demo grid and deposits (built by scripts/build_assets.py) and
the default model: MSTGAT pretrained on every cell of the grid by
masked-element reconstruction (no labels), then an ensemble of 5 heads
fine-tuned on all 21 deposit cells, the head's regularisation and its share
in the fused score chosen by inner cross-validation over the deposit
clusters. The model's skill is measured by ``mstgat evaluate`` and the
benchmark (docs/results.md), not by this checkpoint.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "assets" / "mstgat_south_china.safetensors"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from mstgat_core.cli import main as mstgat
    from mstgat_core.training.demo import write_demo_layers

    status = mstgat(
        [
            "train",
            str(ROOT / "assets" / "south_china_li.nc"),
            "--deposits",
            str(ROOT / "assets" / "south_china_li_deposits.csv"),
            "--out",
            args.out,
            "--seed",
            str(args.seed),
        ]
    )
    if status == 0:  # its prediction on the demo grid, so that the dashboard starts without predicting
        print(f"wrote {write_demo_layers(checkpoint_path=args.out)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
