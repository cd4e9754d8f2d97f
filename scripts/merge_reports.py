"""Merge reports of separate ``mstgat evaluate --methods ...`` runs into one.

Running each method group in its own process uses both cores; the runs share
data, folds and seeds, so their reports merge into exactly the report that one
``mstgat evaluate`` run over all methods writes.

    python scripts/merge_reports.py OUT.json [--markdown OUT.md] REPORT.json [REPORT.json ...]
"""

import argparse
import json
import sys

from mstgat_core.evaluate import report_markdown


def merge(reports: list[dict]) -> dict:
    merged = {"protocol": dict(reports[0]["protocol"]), "results": {}}
    folds = json.dumps(reports[0]["protocol"]["fold_sizes"], sort_keys=True)
    for report in reports:
        if json.dumps(report["protocol"]["fold_sizes"], sort_keys=True) != folds:
            raise SystemExit("error: reports were made with different folds; they cannot be merged")
        merged["results"].update(report["results"])
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    merged = merge([json.load(open(path)) for path in args.reports])
    with open(args.out, "w") as f:
        json.dump(merged, f, indent=1)
    table = report_markdown(merged)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
