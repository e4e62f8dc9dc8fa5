"""Overlap-aware estimands: Crump-trimmed and overlap-weighted AIPW, the headline rule and reported clipping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import weak_overlap_frame
from uplift.data.campaign import campaign_data
from uplift.design.checks import crump_bounds
from uplift.effects.average import (
    average_effects,
    clipping_note,
    headline_effects,
    overlap_weighted_ate,
    trimmed_ate,
)
from uplift.fit.crossfit import cross_fit
from uplift.fit.learners import E_CLIP


def arrays(n: int, seed: int, steep: float):
    """Confounded rows with true nuisances: the propensity is logistic(steep * x), the effect 1 + x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    e = np.clip(1 / (1 + np.exp(-steep * x)), 0.001, 0.999)
    t = (rng.random(n) < e).astype(int)
    mu0, mu1 = x, 2 * x + 1.0
    y = np.where(t == 1, mu1, mu0) + rng.normal(size=n)
    mu = np.column_stack([mu0, mu1])
    return y, t, mu, np.column_stack([np.full(n, np.nan), e]), x


def table(y, t, mu, e):
    return average_effects(y, t, ("control", "coupon"), outcome="y", kind="continuous", design="observational",
                           mu=mu, e=e).set_index("estimand")


def test_good_overlap_keeps_the_ate_as_headline_and_adds_no_rows():
    y, t, mu, e, _ = arrays(5000, 0, steep=0.8)
    tab = table(y, t, mu, e)
    assert list(tab.index) == ["naive", "ATE", "ATT"]
    assert tab.loc["ATE", "headline"] and not tab.loc["naive", "headline"] and not tab.loc["ATT", "headline"]


def test_weak_overlap_makes_the_trimmed_effect_the_headline_and_says_why():
    y, t, mu, e, x = arrays(20_000, 1, steep=3.0)
    tab = table(y, t, mu, e)
    assert list(tab.index) == ["naive", "ATE", "ATT", "trimmed", "ATO"]
    assert headline_effects(tab.reset_index())["estimand"].tolist() == ["trimmed"]
    lo, hi = crump_bounds(e[:, 1])
    assert lo > 0.05 and (tab.loc["trimmed", "trim_lower"], tab.loc["trimmed", "trim_upper"]) == (lo, hi)
    note = tab.loc["trimmed", "note"]
    assert "Crump" in note and f"{lo:.3g}" in note and "extrapolation" in note
    keep = (e[:, 1] >= lo) & (e[:, 1] <= hi)
    assert tab.loc["trimmed", "n_treated"] + tab.loc["trimmed", "n_control"] == keep.sum() < len(y)
    # With true nuisances each estimate is unbiased for its own estimand, and the estimands differ.
    r = tab.loc["trimmed"]
    assert abs(r["estimate"] - (1 + x[keep]).mean()) < 3 * r["se"]
    h = e[:, 1] * (1 - e[:, 1])
    assert abs(tab.loc["ATO", "estimate"] - (h * (1 + x)).sum() / h.sum()) < 3 * tab.loc["ATO", "se"]


def test_propensity_clipping_is_counted_and_said():
    y, t, mu, e, _ = arrays(5000, 2, steep=3.0)
    tab = table(y, t, mu, e)
    outside = int(((e[:, 1] < E_CLIP[0]) | (e[:, 1] > E_CLIP[1])).sum())
    assert outside > 0 and tab.loc["ATE", "n_clipped"] == outside
    assert f"{outside:,} customers" in tab.loc["ATE", "note"]
    assert clipping_note(np.array([0.2, 0.5, 0.8])) == (0, "")


def test_trimmed_ate_ignores_rows_outside_the_bounds():
    y, t, mu, e, _ = arrays(4000, 3, steep=2.0)
    e = e[:, 1]
    est, se, keep = trimmed_ate(y, t, mu[:, 0], mu[:, 1], e, (0.2, 0.8))
    y_wild = np.where(keep, y, 1e6)  # outcomes outside the bounds cannot move the trimmed estimate
    assert trimmed_ate(y_wild, t, mu[:, 0], mu[:, 1], e, (0.2, 0.8))[:2] == (est, se)
    assert np.isnan(trimmed_ate(y, t, mu[:, 0], mu[:, 1], e, (0.4999, 0.5))[0])


def test_overlap_weights_need_no_clipping_at_extreme_propensities():
    rng = np.random.default_rng(4)
    n = 10_000
    e = np.where(rng.random(n) < 0.5, 1e-9, 0.5)  # half the rows have (almost) no chance of treatment
    t = (rng.random(n) < e).astype(float)
    y = 2.0 * t + rng.normal(size=n)
    est, se = overlap_weighted_ate(y, t, np.zeros(n), np.full(n, 2.0), e)
    assert np.isfinite(se) and abs(est - 2.0) < 3 * se + 1e-9


def test_headline_of_a_table_saved_before_the_column_is_the_ate():
    old = pd.DataFrame({"estimand": ["naive", "ATE", "ATT"], "estimate": [1.0, 2.0, 3.0]})
    assert headline_effects(old)["estimand"].tolist() == ["ATE"]


def test_rct_headline_is_the_difference_in_means():
    rng = np.random.default_rng(5)
    t = rng.integers(0, 2, 2000)
    tab = average_effects(rng.normal(size=2000), t, ("c", "t"), outcome="y", kind="continuous", design="rct")
    assert tab["headline"].tolist() == [True]


def _trimmed_coverage(reps: int, n: int) -> float:
    hits = 0
    for r in range(reps):
        df = weak_overlap_frame(n, seed=500 + r)
        data = campaign_data(df, "treatment", "conversion", exclude=["true_uplift", "propensity"],
                             design="observational")
        cf = cross_fit(data, learners=("t",), n_folds=3, random_state=r)
        tab = average_effects(data.outcomes["conversion"], data.treatment, data.arms, outcome="conversion",
                              kind="binary", design="observational", mu=cf.mu, e=cf.e).set_index("estimand")
        row = tab.loc["trimmed"]
        e = cf.e[:, 1]
        keep = (e >= row["trim_lower"]) & (e <= row["trim_upper"])
        truth = df["true_uplift"].to_numpy()[keep].mean()  # the effect on the customers the study kept
        hits += row["lower"] <= truth <= row["upper"]
    return hits / reps


@pytest.mark.slow
def test_trimmed_effect_interval_covers_its_truth_under_weak_overlap():
    # Full figure (200 replications, with the ATE beside it) in benchmarks/coverage.py --designs weak_overlap.
    assert _trimmed_coverage(reps=60, n=4000) >= 0.88
