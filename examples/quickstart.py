"""Quickstart: simulate a coupon campaign, fit uplift models, read the results, and write the HTML report.

Run it with ``python examples/quickstart.py`` (about half a minute on a laptop). The simulated campaign is a
randomised test: half of 4,000 customers got a coupon e-mail; we know each customer's true uplift, so those
columns are excluded from the features (a real campaign never has them).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from uplift import Study, simulate_campaign
from uplift.viz.report import write_report


def main() -> Path:
    df = simulate_campaign(4000, design="rct", n_arms=1, seed=7)
    truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]

    # Roles: who got the coupon, what we measure, the customer id; every other column is a feature.
    study = Study(df, treatment="treatment", outcome=["conversion", "revenue"], id="customer_id",
                  exclude=truth)
    study.fit(learners=["t", "x", "dr"], n_folds=3, n_boot=100)

    with pd.option_context("display.width", 140, "display.max_columns", 20, "display.precision", 4):
        print("Leaderboard (out-of-fold scores with 95% CIs; lower DR loss is better):")
        print(study.leaderboard()[["rank", "learner", "qini", "qini_lower", "qini_upper", "uplift_at_k",
                                   "uplift_at_k_lower", "uplift_at_k_upper", "dr_loss", "dr_loss_se"]]
              .to_string(index=False))
        print(f"\nChosen model: {study.best_learner_}\n")
        print("Average effect of the coupon (conversion in percentage points, revenue in its own units):")
        effects = study.ate()
        print(effects[["outcome", "estimand", "estimate_display", "lower_display", "upper_display", "unit"]]
              .to_string(index=False))

    out_dir = Path(tempfile.mkdtemp(prefix="uplift-quickstart-"))
    # Cost of one coupon and value of one conversion turn uplift into money for the targeting section.
    path = write_report(study.result, out_dir / "report.html", data=study.data,
                        command_line="python examples/quickstart.py", cost=0.5, value=30.0, budget=300.0)
    print(f"\nReport written to {path}")
    return path


if __name__ == "__main__":
    main()
