"""Average effects: point estimates against known truth and CI coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import truth_columns
from uplift.data.campaign import campaign_data
from uplift.datasets import simulate_campaign
from uplift.effects.average import aipw_ate, average_effects, diff_in_means
from uplift.fit.crossfit import cross_fit


def test_neyman_se_matches_textbook():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, 4000)
    y = rng.normal(1 + 0.5 * t, 2.0)
    est, se = diff_in_means(y, t)
    assert abs(est - 0.5) < 4 * se
    assert abs(se - np.sqrt(4 / (t == 1).sum() + 4 / (t == 0).sum())) < 0.01


def test_aipw_with_true_nuisances_is_unbiased():
    rng = np.random.default_rng(1)
    n = 20000
    x = rng.normal(size=n)
    e = 1 / (1 + np.exp(-x))
    t = (rng.random(n) < e).astype(float)
    mu0, mu1 = x, x + 1 + 0.5 * x
    y = np.where(t == 1, mu1, mu0) + rng.normal(size=n)
    est, se = aipw_ate(y, t, mu0, mu1, e)
    assert abs(est - 1.0) < 3 * se
    att, att_se = aipw_ate(y, t, mu0, mu1, e, target="att")
    true_att = 1 + 0.5 * x[t == 1].mean()
    assert abs(att - true_att) < 3 * att_se


def _coverage(design: str, reps: int, n: int) -> float:
    hits = 0
    for r in range(reps):
        df = simulate_campaign(n, design=design, seed=1000 + r)
        data = campaign_data(df, "treatment", "conversion", id="customer_id",
                             exclude=[*truth_columns(df), "revenue"], design=design)
        mu = e = None
        if design == "observational":
            cf = cross_fit(data, learners=("t",), n_folds=3, random_state=r)
            mu, e = cf.mu, cf.e
        table = average_effects(data.outcomes["conversion"], data.treatment, data.arms, outcome="conversion",
                                kind="binary", design=design, mu=mu, e=e)
        row = table[table["estimand"] == "ATE"].iloc[0]
        truth = df["true_uplift"].mean()
        hits += row["lower"] <= truth <= row["upper"]
    return hits / reps


def test_ate_ci_coverage_rct_small_replication():
    # Full figure (>= 200 replications) in benchmarks/coverage.py; here a quick check that it is not broken.
    assert _coverage("rct", reps=60, n=3000) >= 0.85


def test_ate_ci_coverage_observational_small_replication():
    assert _coverage("observational", reps=20, n=4000) >= 0.8


def test_observational_naive_is_biased_and_adjusted_is_not(obs_df):
    data = campaign_data(obs_df, "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(obs_df), "revenue"], design="observational")
    cf = cross_fit(data, learners=("t",), n_folds=5)
    table = average_effects(data.outcomes["conversion"], data.treatment, data.arms, outcome="conversion",
                            kind="binary", design="observational", mu=cf.mu, e=cf.e).set_index("estimand")
    truth = obs_df["true_uplift"].mean()
    naive, adj = table.loc["naive"], table.loc["ATE"]
    assert abs(naive["estimate"] - truth) > 3 * naive["se"]
    assert abs(adj["estimate"] - truth) < abs(naive["estimate"] - truth) / 2
    assert adj["lower"] - 0.5 * adj["se"] <= truth <= adj["upper"] + 0.5 * adj["se"]


def test_att_does_not_raise_tiny_control_propensities():
    """ATT weights controls by e/(1-e); lifting e=0.001 to the clip would over-weight unlike controls."""
    from uplift.effects.average import aipw_ate

    y = np.array([1.0, 0.0, 5.0, 0.0])
    t = np.array([1, 1, 0, 0])
    mu0 = np.zeros(4)
    e = np.array([0.5, 0.5, 0.001, 0.5])
    est, _ = aipw_ate(y, t, mu0, mu0, e, target="att")
    # controls' weighted residuals: 5 * 0.001/0.999 and 0; treated residual sum 1; p = 0.5 → (1 - 0.005005) / 2
    assert est == pytest.approx((1 - 5 * 0.001 / 0.999) / 4 / 0.5)
