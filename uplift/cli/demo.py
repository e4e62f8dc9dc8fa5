"""``uplift demo``: the whole default study on the embedded Hillstrom e-mail experiment.

Design checks → cross-fitted learners and leaderboard → average effect of each e-mail on visits, conversions
and spend → a short targeting preview. It is the first thing a new user runs, so every step prints what it
found and with what uncertainty.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.cli.render import RichProgress, console, show_study, table
from uplift.study import Study

#: Money assumptions of the preview, stated on screen: the analyst replaces them with the real ones.
EMAIL_COST = 0.10


def run_demo(frame: pd.DataFrame, *, folds: int = 5, seed: int = 0, out: Path | None = None,
             as_json: bool = False) -> dict:
    """Run the demo study on Hillstrom and print (or return as JSON) its results."""
    from uplift.targeting import allocation as targeting

    started = time.perf_counter()
    study = Study(frame, treatment="segment", outcome=["visit", "conversion", "spend"], control="No E-Mail",
                  design="rct")
    progress = RichProgress(enabled=not as_json)
    try:
        study.fit(n_folds=folds, random_state=seed, progress=progress)
    finally:
        progress.stop()

    # Targeting preview: value of one incremental visit = observed spend per visit (a stated assumption).
    visits = frame["visit"].to_numpy() == 1
    value = float(frame.loc[visits, "spend"].mean() / 1.0)
    uplift = study.oof_uplift()
    arms = list(study.arms[1:])
    alloc = targeting.allocate(uplift, np.full(len(arms), EMAIL_COST), value, budget=0.2 * len(frame) * EMAIL_COST)
    chosen = alloc.arm >= 0
    preview = pd.DataFrame({
        "arm": [arms[a] for a in range(len(arms))],
        "customers": [int((alloc.arm == a).sum()) for a in range(len(arms))],
    })
    value_ci = targeting.policy_value(study.crossfit_.policy_dr, alloc.arm, np.full(len(arms), EMAIL_COST), value)
    elapsed = time.perf_counter() - started
    extra = {
        "targeting_preview": {
            "budget": 0.2 * len(frame) * EMAIL_COST, "cost_per_email": EMAIL_COST,
            "value_per_visit": value, "customers_selected": int(chosen.sum()),
            "by_arm": preview, "policy_value": value_ci,
        },
        "seconds": elapsed,
    }
    if out is not None:
        study.save(out)
        extra["model_dir"] = str(out)
    show_study(study, as_json, extra)
    if not as_json:
        console.print(table(
            f"Targeting preview: 20% budget at ${EMAIL_COST:.2f}/e-mail, a visit valued at ${value:.2f} "
            "(observed spend per visit; replace with your own)", preview, {"arm": "e-mail", "customers": "customers"}))
        pv = value_ci
        console.print(
            f"expected incremental visits {pv['incremental_outcome']:.0f} "
            f"[{pv['incremental_outcome_lower']:.0f}, {pv['incremental_outcome_upper']:.0f}], "
            f"profit ${pv['profit']:,.0f} [{pv['profit_lower']:,.0f}, {pv['profit_upper']:,.0f}] "
            "(doubly-robust policy value on out-of-fold scores, 95% CI)")
        console.print(f"demo finished in {elapsed:.1f} s")
    return extra
