"""Does a study on features built by `uplift features` recover the planted uplift? And what does a leak do?

The simulated shop (``uplift.datasets.simulate_events``) knows each customer's true uplift and the latent traits
that drive it. Three default studies (``Study.fit()``: every default learner, 5 folds), each on the same 70% of
customers, are compared on the other 30% (held out):

1. **features**: the campaign table built from the raw events by :func:`uplift.features.build_features` (as of
   each exposure, windows 7/30/90/365 days, outcome ``conversion_14d``);
2. **true traits**: the simulator's latent traits instead of features (the best a feature builder could do);
3. **leak forced**: features as of the end of the log (after every exposure), forced with ``allow_leakage``.

Per study: PEHE (root mean squared error of the predicted against the true uplift, percentage points) and the
policy value of targeting the top 20% by predicted uplift (mean true uplift of those customers, pp), each with a
95% bootstrap CI over held-out customers, beside random targeting and the oracle; and the average effect (ATE)
of the studies, to show how far the forced leak moves it. Run: ``python benchmarks/features_acceptance.py
[--customers 40000]``; writes benchmarks/results/features_acceptance.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
# benchmarks/coverage.py would shadow the coverage package numba imports: the package root, not this folder.
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from uplift import Study  # noqa: E402
from uplift.datasets import simulate_events  # noqa: E402
from uplift.features import build_features  # noqa: E402

RESULTS = HERE / "results"
TOP = 0.2
TRAITS = ["true_activity", "true_buy_rate", "true_basket", "true_deal_seeker", "true_momentum", "true_return_rate",
          "true_tenure_days", "true_category", "true_channel"]


def _ci(values: np.ndarray) -> list[float]:
    return [round(float(np.quantile(values, 0.025)), 3), round(float(np.quantile(values, 0.975)), 3)]


def held_out_scores(predicted: np.ndarray, truth: np.ndarray, seed: int, n_boot: int = 400) -> dict:
    """PEHE and top-20% policy value (pp) with bootstrap CIs over the held-out customers."""
    rng = np.random.default_rng(seed)
    k = int(round(TOP * len(truth)))

    def stats(idx: np.ndarray) -> tuple[float, float]:
        p, t = predicted[idx], truth[idx]
        top = np.argsort(-p, kind="stable")[: int(round(TOP * len(idx)))]
        return float(np.sqrt(np.mean((p - t) ** 2))) * 100, float(t[top].mean()) * 100

    pehe, value = stats(np.arange(len(truth)))
    boot = np.array([stats(rng.integers(0, len(truth), len(truth))) for _ in range(n_boot)])
    oracle = float(np.sort(truth)[-k:].mean()) * 100
    return {"pehe_pp": round(pehe, 3), "pehe_ci": _ci(boot[:, 0]), "top20_value_pp": round(value, 3),
            "top20_value_ci": _ci(boot[:, 1]), "oracle_top20_pp": round(oracle, 3),
            "random_pp": round(float(truth.mean()) * 100, 3)}


def fit_and_score(name: str, table: pd.DataFrame, train: np.ndarray, test: np.ndarray, truth: np.ndarray,
                  exclude: list[str], seed: int) -> dict:
    start = time.perf_counter()
    study = Study(table.iloc[train].reset_index(drop=True), "arm", "conversion_14d", id="customer_id",
                  exclude=exclude).fit(random_state=seed, allow_leakage=True)
    seconds = time.perf_counter() - start
    predicted = study.predict_uplift(table.iloc[test].reset_index(drop=True))["uplift"].to_numpy()
    effects = study.ate()
    adjusted = effects[effects["estimand"] != "naive"].iloc[0]
    doc = {"study": name, "design": study.design, "chosen_learner": study.best_learner_,
           "ate_pp": round(float(adjusted["estimate"]) * 100, 3),
           "ate_ci": [round(float(adjusted["lower"]) * 100, 3), round(float(adjusted["upper"]) * 100, 3)],
           "fit_seconds": round(seconds, 1), **held_out_scores(predicted, truth[test], seed)}
    print(json.dumps(doc), flush=True)
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    log = simulate_events(args.customers, seed=args.seed)
    truth = log.truth["true_uplift"].to_numpy()
    common = {"treatment": "arm", "observed_until": str(log.observed_until)}
    clean = build_features(log.events, log.campaign, **common).frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        leaked = build_features(log.events, log.campaign, as_of=str(log.observed_until), allow_leakage=True,
                                **common).frame
    traits = log.campaign.merge(log.truth[["customer_id", *TRAITS]], on="customer_id")
    traits["conversion_14d"] = clean["conversion_14d"].to_numpy()
    order = np.random.default_rng(args.seed + 1).permutation(args.customers)
    train, test = np.sort(order[: int(0.7 * args.customers)]), np.sort(order[int(0.7 * args.customers):])
    drop = ["exposure_time", "revenue_14d"]
    studies = [fit_and_score("features (uplift features, as of exposure)", clean, train, test, truth, drop, args.seed),
               fit_and_score("true traits (simulator)", traits, train, test, truth, ["exposure_time"], args.seed),
               fit_and_score("leak forced (features as of the log's end)", leaked, train, test, truth, drop,
                             args.seed)]
    true_ate = round(float(truth[train].mean()) * 100, 3)
    doc = {"customers": args.customers, "events": len(log.events), "train": len(train), "held_out": len(test),
           "true_ate_train_pp": true_ate, "studies": studies,
           "leak_ate_shift_pp": round(studies[2]["ate_pp"] - studies[0]["ate_pp"], 3),
           "note": "one run on a 2-core machine shared with other jobs; fit times are indicative"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "features_acceptance.json").write_text(json.dumps(doc, indent=1) + "\n")
    rows = [f"| {s['study']} | {s['design']} | {s['pehe_pp']} [{s['pehe_ci'][0]}, {s['pehe_ci'][1]}] | "
            f"{s['top20_value_pp']} [{s['top20_value_ci'][0]}, {s['top20_value_ci'][1]}] | {s['ate_pp']} "
            f"[{s['ate_ci'][0]}, {s['ate_ci'][1]}] | {s['fit_seconds']} |" for s in studies]
    md = [
        "# Events → features → study: recovering the planted uplift",
        "",
        f"simulate_events({args.customers:,}, seed {args.seed}): {len(log.events):,} events; default study "
        f"(`Study.fit()`, every default learner, 5 folds) on {len(train):,} customers, scored on {len(test):,} "
        f"held out. Percentage points, 95% bootstrap CIs over held-out customers (ATE: the study's own CI).",
        "",
        "| study | design | PEHE (pp) | top-20% policy value (pp) | ATE (pp) | fit (s) |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"Random targeting: {studies[0]['random_pp']} pp; oracle top 20%: {studies[0]['oracle_top20_pp']} pp; "
        f"true ATE on the training customers {true_ate} pp.",
        f"Forcing the leak moves the ATE by {doc['leak_ate_shift_pp']:+} pp (the coupon's own visits and the "
        "outcome's purchases become features, the study turns observational and adjusts the effect away).",
        "",
        f"{doc['note']}.",
        "",
    ]
    (RESULTS / "features_acceptance.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
