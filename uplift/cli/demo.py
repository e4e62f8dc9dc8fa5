"""``uplift demo``: the whole default study on the embedded Hillstrom e-mail experiment.

Design checks → cross-fitted learners and leaderboard → average effect of each e-mail on visits, conversions
and spend → a short targeting preview. It is the first thing a new user runs, so every step prints what it
found and with what uncertainty.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from uplift.cli.render import RichProgress, console, show_study, show_targeting
from uplift.fit.result import FitResult
from uplift.study import Study
from uplift.targeting import TargetingResult, targeting_list

#: Where the demo's data comes from, said before anything else is printed.
DATA_SOURCE = ("Kevin Hillstrom's MineThatData E-Mail Analytics challenge (2008): a randomised e-mail experiment, "
               "men's e-mail / women's e-mail / no e-mail, embedded in the package (uplift.load_hillstrom)")

#: Money assumptions of the preview, stated on screen: the analyst replaces them with the real ones.
EMAIL_COST = 0.10
#: The preview's budget e-mails this share of the customers.
BUDGET_SHARE = 0.2


def visit_value(frame: pd.DataFrame) -> float:
    """The preview's value of one incremental visit: the observed spend per visit (a stated assumption)."""
    return float(frame.loc[frame["visit"].to_numpy() == 1, "spend"].mean())


def targeting_preview(result: FitResult, frame: pd.DataFrame, *, value: float | None = None) -> TargetingResult:
    """The demo's targeting list: :data:`BUDGET_SHARE` of the customers' worth of e-mails at :data:`EMAIL_COST`
    each, a visit valued at ``value`` (default :func:`visit_value`). It is the list ``uplift target`` and
    ``Study.target`` give for the same customers and numbers: all three call :func:`targeting_list`."""
    value = visit_value(frame) if value is None else value
    return targeting_list(result, frame, cost=EMAIL_COST, value=value, budget=BUDGET_SHARE * len(frame) * EMAIL_COST)


def run_demo(frame: pd.DataFrame, *, folds: int = 5, seed: int = 0, out: Path | None = None,
             as_json: bool = False) -> dict:
    """Run the demo study on Hillstrom and print (or return as JSON) its results."""
    started = time.perf_counter()
    if not as_json:
        counts = frame["segment"].value_counts()
        console.print(f"[bold]Demo data: the Hillstrom e-mail experiment[/], {len(frame):,} customers ("
                      + ", ".join(f"{arm} {n:,}" for arm, n in counts.items()) + f"); source: {DATA_SOURCE}",
                      highlight=False)
    study = Study(frame, treatment="segment", outcome=["visit", "conversion", "spend"], control="No E-Mail",
                  design="rct")
    progress = RichProgress(enabled=not as_json)
    try:
        study.fit(n_folds=folds, random_state=seed, progress=progress)
    finally:
        progress.stop()

    summary = targeting_preview(study.result, frame).summary
    value, budget = summary["value_per_unit"], summary["budget"]
    preview = pd.DataFrame({"arm": list(summary["by_coupon"]), "customers": list(summary["by_coupon"].values())})
    elapsed = time.perf_counter() - started
    extra = {
        "targeting_preview": {
            "budget": budget, "cost_per_email": EMAIL_COST, "value_per_visit": value,
            "customers_selected": summary["customers_selected"], "by_arm": preview,
            "policy_value": summary["estimated"],
        },
        "seconds": elapsed,
        "data": {"name": "Hillstrom e-mail experiment", "rows": len(frame), "source": DATA_SOURCE},
    }
    if out is not None:
        study.save(out)
        extra["model_dir"] = str(out)
    show_study(study, as_json, extra)
    if not as_json:
        console.print(f"[bold]Targeting preview[/]: a budget of {budget:,.0f} e-mails {BUDGET_SHARE:.0%} of the "
                      f"customers at {EMAIL_COST:.2f} each; a visit is valued at {value:.2f} (observed spend per "
                      "visit; replace both with your own). The same list as `uplift target`:", highlight=False)
        show_targeting(summary, None, kind=study.crossfit_.kind)
        console.print(f"demo finished in {elapsed:.1f} s")
    return extra
