"""Data-boundary benchmark (issue 15): the same realistic shop export fitted by two checkouts of uplift.

The export (tests/shop.py: 60k customers, string ids with leading zeros, two ISO date columns, 12% missing age, an
income column with the code -999, ~86% zero revenue, three coupons and a larger control group) is written with
pandas, as an analyst's CSV. For each checkout (``--before``, e.g. main, and ``--after``, this branch) the script
runs, in a fresh process measured by ``/usr/bin/time -v``:

1. ``uplift fit shop.csv --treatment coupon --outcome revenue --id customer_id --exclude converted --folds 2
   --allow-srm`` (default learners; 2 folds to keep the run short on a shared machine): wall time, peak RSS;
2. ``uplift target`` of 60k fresh customers (signed up and ordering like the training ones, ids with leading
   zeros) with the coupon costs of tests/shop.py: the list's honest estimated profit (doubly-robust value of the
   same rule on out-of-fold training rows) and its TRUE expected profit from the known per-customer uplift.

Run: ``OMP_NUM_THREADS=2 python benchmarks/data_boundary.py --before /work/main --after .``
Writes benchmarks/results/data_boundary.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from shop import COSTS, oracle_profit, shop_campaign, true_profit  # noqa: E402

RESULTS = HERE / "results"
CLI = "import sys; from uplift.cli.commands import main; sys.argv[0] = 'uplift'; main()"


def run(tree: Path, args: list[str], cwd: Path) -> dict:
    """One CLI command of the checkout ``tree`` under /usr/bin/time -v: wall seconds, peak RSS, stdout."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", CLI, *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{tree}: uplift {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    h, m, s = (float(g or 0) for g in wall.groups())
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {"seconds": round(h * 3600 + m * 60 + s, 1), "peak_rss_mb": round(rss_kb / 1024), "stdout": proc.stdout}


def measure(tree: Path, work: Path, truth_fresh: pd.DataFrame, folds: int) -> dict:
    model = work / f"model-{tree.name}"
    fit = run(tree, ["fit", "shop.csv", "--treatment", "coupon", "--outcome", "revenue", "--id", "customer_id",
                     "--exclude", "converted", "--out", str(model), "--folds", str(folds), "--allow-srm",
                     "--json"], work)
    fitted = json.loads(fit.pop("stdout"))
    out = work / f"list-{tree.name}.csv"
    costs = [a for k, v in COSTS.items() for a in ("--cost", f"{k}={v}")]
    target = run(tree, ["target", str(model), "fresh.csv", "--out", str(out), *costs, "--json"], work)
    summary = json.loads(target.pop("stdout"))["summary"]
    listed = pd.read_csv(out, dtype=str)
    ids_ok = bool(listed["customer_id"].str.len().eq(6).all())
    return {
        "fit_seconds": fit["seconds"], "fit_peak_rss_mb": fit["peak_rss_mb"],
        "chosen_learner": fitted.get("chosen_learner"),
        "features": json.loads((model / "manifest.json").read_text())["schema"]["names"],
        "category_levels": sum(len(v) for v in json.loads((model / "manifest.json").read_text())["schema"][
            "categories"].values()),
        "list_customers": int(summary["customers_selected"]),
        "honest_estimated_profit": summary["estimated"]["profit"]["estimate"]
        if isinstance(summary["estimated"].get("profit"), dict) else summary["estimated"].get("profit"),
        "true_profit_of_list": round(true_profit(listed.assign(arm=listed["coupon"]), truth_fresh), 1),
        "list_ids_keep_leading_zeros": ids_ok,
        "target_seconds": target["seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, required=True, help="checkout before the change (e.g. /work/main)")
    ap.add_argument("--after", type=Path, required=True, help="checkout after the change (this branch)")
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--folds", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="data_boundary_"))
    export, _ = shop_campaign(args.n, seed=0)
    export.to_csv(work / "shop.csv", index=False)
    fresh, truth_fresh = shop_campaign(args.n, seed=1, first_id=args.n + 1)
    fresh.drop(columns=["coupon", "converted", "revenue"]).to_csv(work / "fresh.csv", index=False)
    results = {"n": args.n, "folds": args.folds, "omp_threads": os.environ.get("OMP_NUM_THREADS"),
               "costs": COSTS, "oracle_true_profit": round(oracle_profit(truth_fresh), 1)}
    for label, tree in (("before", args.before.resolve()), ("after", args.after.resolve())):
        results[label] = {"tree": str(tree), **measure(tree, work, truth_fresh, args.folds)}
        print(label, json.dumps(results[label]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "data_boundary.json").write_text(json.dumps(results, indent=1))
    b, a = results["before"], results["after"]
    rows = [("fit wall time (s)", b["fit_seconds"], a["fit_seconds"]),
            ("fit peak RSS (MB)", b["fit_peak_rss_mb"], a["fit_peak_rss_mb"]),
            ("chosen learner", b["chosen_learner"], a["chosen_learner"]),
            ("category levels in the model", b["category_levels"], a["category_levels"]),
            (f"customers on the list (of {args.n:,} fresh)", b["list_customers"], a["list_customers"]),
            ("honest estimated profit of the list", round(b["honest_estimated_profit"], 1),
             round(a["honest_estimated_profit"], 1)),
            ("TRUE expected profit of the list", b["true_profit_of_list"], a["true_profit_of_list"]),
            ("list ids keep leading zeros", b["list_ids_keep_leading_zeros"], a["list_ids_keep_leading_zeros"])]
    md = ["# Data boundary: the realistic shop export before and after issue 15", "",
          f"{args.n:,} training customers, {args.folds} folds, default learners, `--allow-srm` (control 40%, three "
          f"coupons 20% each), OMP_NUM_THREADS={results['omp_threads']}; the list is for {args.n:,} fresh customers "
          f"with costs {COSTS} (revenue units). Produced by `benchmarks/data_boundary.py`.", "",
          "| measure | before | after |", "|---|---|---|", *[f"| {m} | {x} | {y} |" for m, x, y in rows], "",
          f"The best possible list (each customer with the coupon of largest positive TRUE profit) would earn "
          f"{results['oracle_true_profit']:,}.", "",
          f"Features after: {', '.join(a['features'] or [])}.", ""]
    (RESULTS / "data_boundary.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
