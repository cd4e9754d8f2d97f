"""Merge reports of separate ``mstgat evaluate`` runs into one.

Running method groups (or seeds) in separate processes uses both cores. Runs
share the data and the fold construction, so a method's fold rows from
different seeds pool exactly as in one run; its means and standard deviations
are recomputed from the pooled rows. The pooled ROC / success-rate curves are
kept from the first report that has the method (they need raw scores).

    python scripts/merge_reports.py OUT.json [--markdown OUT.md] REPORT.json [REPORT.json ...]
"""

import argparse
import json
import sys

from mstgat_core.evaluate import fold_summary, report_markdown


def merge(reports: list[dict]) -> dict:
    protocol = dict(reports[0]["protocol"])
    fold_sizes, results = {}, {}
    for report in reports:
        for seed, sizes in report["protocol"]["fold_sizes"].items():
            if fold_sizes.setdefault(seed, sizes) != sizes:
                raise SystemExit(f"error: seed {seed} has different folds in two reports; they cannot be merged")
        for method, result in report["results"].items():
            if method not in results:
                results[method] = dict(result)
                continue
            seen = {(row["seed"], row["fold"]) for row in results[method]["folds"]}
            folds = results[method]["folds"] + [r for r in result["folds"] if (r["seed"], r["fold"]) not in seen]
            results[method].update(folds=folds, **fold_summary(folds))
    protocol["fold_sizes"] = fold_sizes
    protocol["seeds"] = sorted(int(s) for s in fold_sizes)
    protocol["seeds_per_method"] = {m: sorted({row["seed"] for row in r["folds"]}) for m, r in results.items()}
    return {"protocol": protocol, "results": results}


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
