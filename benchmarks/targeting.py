"""Targeting and segment benchmarks with known truth (issue 3 acceptance).

1. Oracle capture: fit the default study on one simulated RCT campaign (n=100k), build a 20%-budget targeting
   list for a fresh 100k customers, and compare the TRUE incremental conversions of the chosen customers with
   those of the oracle list (top 20% by true uplift). Also checks that the list's reported 95% interval covers
   the true value of the chosen list.
2. Segment CI coverage: over many replications, the share of per-segment 95% CIs (AIPW on out-of-fold
   nuisances) that cover the true segment uplift (mean true uplift of the segment's customers).

Run: ``OMP_NUM_THREADS=2 python benchmarks/targeting.py [--n 100000] [--reps 100]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from uplift import Study, simulate_campaign

RESULTS = Path(__file__).parent / "results"


def truth_cols(df):
    return [c for c in df if c.startswith("true_") or c.startswith("propensity")]


def oracle_capture(n: int, seed: int = 7) -> dict:
    train = simulate_campaign(n, design="rct", seed=seed)
    fresh = simulate_campaign(n, design="rct", seed=seed + 1)
    t0 = time.perf_counter()
    study = Study(train, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=[*truth_cols(train), "revenue"], design="rct").fit()
    fit_s = time.perf_counter() - t0
    cost, value = 1.0, 1000.0  # value high enough that the budget, not profitability, binds
    budget = 0.2 * n * cost
    res = study.target(fresh.drop(columns=truth_cols(fresh)), cost=cost, value=value, budget=budget)
    chosen = fresh.set_index("customer_id").loc[res.list["customer_id"], "true_uplift"].to_numpy()
    oracle = np.sort(fresh["true_uplift"].to_numpy())[::-1][: len(chosen)]
    est = res.summary["estimated"]
    true_total = float(chosen.sum())
    return {
        "n": n, "fit_seconds": fit_s, "learner": study.best_learner_, "selected": len(chosen),
        "true_incremental_conversions_list": true_total, "oracle_incremental_conversions": float(oracle.sum()),
        "capture_ratio": true_total / float(oracle.sum()),
        "random_20pct_true": float(fresh["true_uplift"].mean() * len(chosen)),
        "reported": [est["incremental_outcome"], est["incremental_outcome_lower"], est["incremental_outcome_upper"]],
        "reported_interval_covers_truth": bool(est["incremental_outcome_lower"] <= true_total
                                               <= est["incremental_outcome_upper"]),
    }


def list_value_coverage(reps: int, n: int = 50_000) -> dict:
    """Over replications: capture ratio, and whether the list's reported 95% interval covers its true value."""
    caps, hits, gaps = [], 0, []
    for r in range(reps):
        out = oracle_capture(n, seed=9000 + 2 * r)
        caps.append(out["capture_ratio"])
        hits += out["reported_interval_covers_truth"]
        gaps.append(out["reported"][0] - out["true_incremental_conversions_list"])
        print(f"rep {r}: capture {caps[-1]:.3f}, covers {out['reported_interval_covers_truth']}", flush=True)
    return {"reps": reps, "n": n, "capture_mean": float(np.mean(caps)), "capture_min": float(np.min(caps)),
            "interval_coverage": hits / reps, "mean_estimate_minus_truth": float(np.mean(gaps)),
            "sd_estimate_minus_truth": float(np.std(gaps, ddof=1)) if reps > 1 else None}


def segment_coverage(reps: int, n: int = 6000) -> dict:
    """Coverage of segment CIs for the categorical segments ``channel`` and ``region`` (rct and observational)."""
    hits = {"rct": 0, "observational": 0}
    total = {"rct": 0, "observational": 0}
    for r in range(reps):
        design = "rct" if r % 2 == 0 else "observational"
        df = simulate_campaign(n, design=design, seed=5000 + r)
        study = Study(df, treatment="treatment", outcome="conversion", id="customer_id",
                      exclude=[*truth_cols(df), "revenue"], design=design)
        study.fit(learners=["t"], n_folds=3, n_boot=10)
        for col in ("channel", "region"):
            seg = study.segments([col], min_size=100)
            for row in seg.itertuples():
                if not np.isfinite(row.lower) or " = " not in row.segment:
                    continue
                level = row.segment.split(" = ", 1)[1]
                truth = df.loc[df[col].astype(str) == level, "true_uplift"].mean()
                hits[design] += bool(row.lower <= truth <= row.upper)
                total[design] += 1
    return {"reps": reps, **{f"intervals_{d}": total[d] for d in total},
            **{f"coverage_{d}": hits[d] / max(total[d], 1) for d in total}}


def markdown(r: dict) -> str:
    """The results as a markdown section (benchmarks/results/targeting.md)."""
    lines = ["## Targeting and segment benchmarks (known truth)", ""]
    if "oracle_capture" in r:
        c = r["oracle_capture"]
        lo, hi = c["reported"][1], c["reported"][2]
        lines += [
            f"**Oracle capture at a 20% budget** (rct simulator, fit on n={c['n']:,}, list for {c['n']:,} fresh "
            f"customers, learner `{c['learner']}`): the list's true incremental conversions are "
            f"{c['true_incremental_conversions_list']:.1f} vs the oracle's {c['oracle_incremental_conversions']:.1f} "
            f"(top 20% by true uplift): **{c['capture_ratio']:.1%} captured**; random 20% would give "
            f"{c['random_20pct_true']:.1f}. Reported estimate {c['reported'][0]:.1f} [{lo:.1f}, {hi:.1f}] "
            f"({'covers' if c['reported_interval_covers_truth'] else 'misses'} the true value in this one draw; "
            "see the replications below).", ""]
    if "list_value_coverage" in r:
        v = r["list_value_coverage"]
        lines += [
            f"**List value over {v['reps']} replications** (n={v['n']:,} train + {v['n']:,} fresh, 20% budget): "
            f"capture mean {v['capture_mean']:.1%}, worst {v['capture_min']:.1%}; the reported 95% interval "
            f"covers the list's true incremental conversions in {v['interval_coverage']:.0%} of replications; "
            f"estimate − truth {v['mean_estimate_minus_truth']:+.1f} ± {v['sd_estimate_minus_truth']:.1f} (mean ± SD).",
            ""]
    if "segment_coverage" in r:
        s = r["segment_coverage"]
        lines += [
            "| design | replications | segment intervals | coverage of the true segment uplift |",
            "|---|---:|---:|---:|",
            f"| rct | {s['reps'] // 2} | {s['intervals_rct']} | {s['coverage_rct']:.1%} |",
            f"| observational | {s['reps'] // 2} | {s['intervals_observational']} | "
            f"{s['coverage_observational']:.1%} |", "",
            "Segments: `channel` and `region` levels, 95% AIPW intervals on out-of-fold nuisances, n=6,000 per "
            "replication; truth = mean true uplift of the segment's customers.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--list-reps", type=int, default=20, help="replications of the list-value coverage check")
    ap.add_argument("--list-n", type=int, default=50_000)
    ap.add_argument("--only", choices=["all", "capture", "list", "segments", "markdown"], default="all")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "targeting.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if args.only in ("all", "capture"):
        results["oracle_capture"] = oracle_capture(args.n)
        print(json.dumps(results["oracle_capture"], indent=1))
    if args.only in ("all", "list"):
        results["list_value_coverage"] = list_value_coverage(args.list_reps, args.list_n)
        print(json.dumps(results["list_value_coverage"], indent=1))
    if args.only in ("all", "segments"):
        results["segment_coverage"] = segment_coverage(args.reps)
        print(json.dumps(results["segment_coverage"], indent=1))
    path.write_text(json.dumps(results, indent=1))
    (RESULTS / "targeting.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
