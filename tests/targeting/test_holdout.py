"""Holdout and exploration assignment: shares, stratification, design probabilities, power, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from uplift.errors import UpliftInputError
from uplift.targeting.holdout import (
    _systematic,
    assign_holdout,
    minimum_detectable_uplift,
    required_holdout_share,
    uplift_deciles,
)


def make_list(n: int = 5000, seed: int = 0, coupons=("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer_id": np.arange(100, 100 + n), "rank": np.arange(n),
                         "coupon": rng.choice(list(coupons), n, p=[0.7, 0.3][:len(coupons)] if len(coupons) == 2
                                              else None),
                         "uplift": rng.gamma(2.0, 0.01, n), "cost": 0.5})


def test_holdout_share_is_exact_within_every_coupon_and_decile():
    tl = make_list()
    out, summary = assign_holdout(tl, holdout=0.1, random_state=3)
    assert len(out) == len(tl) and out["selected"].all()
    assert summary["n_holdout"] == int(out["holdout"].sum()) and abs(summary["n_holdout"] - 500) <= 1
    assert (out["send"] == ~out["holdout"]).all() and not out["explore"].any()
    np.testing.assert_allclose(out["propensity"], 0.9)
    # Systematic sampling in stratified order: every coupon x decile cell gets its share up to rounding.
    cells = out.groupby(["coupon", "uplift_decile"])["holdout"].agg(["sum", "size"])
    assert len(cells) == 20
    assert (np.abs(cells["sum"] - 0.1 * cells["size"]) < 1).all()
    # Deciles are within coupon and follow the predicted uplift.
    for _, g in out.groupby("coupon"):
        means = g.groupby("uplift_decile")["uplift"].mean()
        assert list(means.index) == list(range(1, 11)) and means.is_monotonic_decreasing  # 1 = highest
    assert summary["holdout_by_coupon"] == out.groupby("coupon")["holdout"].sum().astype(int).to_dict()


def test_every_customer_is_held_out_with_the_design_probability():
    # 4000 draws of a 37-row, 3-stratum design: each row's holdout frequency is binomial(4000, 0.1).
    rng = np.random.default_rng(0)
    strata = [np.repeat([0, 1, 2], [5, 20, 12])]
    draws = np.array([_systematic(strata, 0.1, rng) for _ in range(4000)])
    freq = draws.mean(axis=0)
    assert np.all(np.abs(freq - 0.1) < 4 * np.sqrt(0.1 * 0.9 / 4000))
    assert set(draws.sum(axis=1)) <= {3, 4}  # 3.7 expected in total, always rounded up or down


def test_deterministic_by_seed_and_input_untouched():
    tl = make_list(800)
    before = tl.copy()
    a, _ = assign_holdout(tl, random_state=7)
    b, _ = assign_holdout(tl, random_state=7)
    c, _ = assign_holdout(tl, random_state=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a["holdout"].equals(c["holdout"])
    pd.testing.assert_frame_equal(tl, before)
    assert list(a.columns[:5]) == list(tl.columns)


def test_uplift_deciles_match_pandas_ranks_per_group():
    rng = np.random.default_rng(1)
    up, groups = rng.normal(size=1000), rng.integers(0, 3, 1000)
    dec = uplift_deciles(up, groups)
    pct = pd.Series(up).groupby(groups).rank(method="first", pct=True).to_numpy()
    np.testing.assert_array_equal(dec, 11 - np.ceil(pct * 10))  # decile 1 = the highest tenth
    for g in range(3):
        sizes = np.bincount(dec[groups == g], minlength=11)[1:]
        assert sizes.max() - sizes.min() <= 1


def test_exploration_of_not_selected_customers():
    tl = make_list(3000)
    rest = make_list(5000, seed=1).assign(customer_id=lambda d: d["customer_id"] + 10_000)
    out, summary = assign_holdout(tl, holdout=0.1, explore=0.02, not_selected=rest, random_state=0)
    ns = out[~out["selected"]]
    assert len(ns) == 5000 and summary["n_not_selected"] == 5000
    assert abs(ns["explore"].sum() - 100) <= 1 and summary["n_explore"] == int(ns["explore"].sum())
    assert (ns["send"] == ns["explore"]).all() and not ns["holdout"].any()
    np.testing.assert_allclose(ns["propensity"], 0.02)
    assert (ns["uplift_decile"] == -1).all()
    assert summary["n_coupons_sent"] == int(out["send"].sum())
    # A list made with include_all=True carries its not-selected rows: the same split, found automatically.
    combined = pd.concat([tl.assign(selected=True), rest.assign(selected=False)], ignore_index=True)
    out2, _ = assign_holdout(combined, holdout=0.1, explore=0.02, random_state=0)
    pd.testing.assert_frame_equal(out.drop(columns="selected"), out2.drop(columns="selected"), check_like=True)


def test_minimum_detectable_uplift_has_the_stated_power():
    # Simulate many sent-vs-holdout campaigns with a true uplift equal to the MDE: ~80% are significant.
    n_sent, n_hold, p0 = 9000, 1000, 0.05
    mde = minimum_detectable_uplift(n_sent, n_hold, base_rate=p0)
    rng = np.random.default_rng(0)
    x1 = rng.binomial(n_sent, p0 + mde, 20_000) / n_sent
    x0 = rng.binomial(n_hold, p0, 20_000) / n_hold
    z = (x1 - x0) / np.sqrt(x1 * (1 - x1) / n_sent + x0 * (1 - x0) / n_hold)
    power = np.mean(z > norm.ppf(0.975))
    assert 0.77 < power < 0.83
    # Continuous outcome: the closed form.
    cont = minimum_detectable_uplift(900, 100, outcome_sd=20.0)
    assert cont == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * 20 * np.sqrt(1 / 900 + 1 / 100))


def test_warning_when_holdout_too_small_and_suggested_share_is_enough():
    tl = make_list(2000).assign(uplift=0.01)
    _, summary = assign_holdout(tl, holdout=0.05, base_rate=0.05)
    assert summary["mde"] > 0.01 and summary["warning"] is not None
    assert "holdout of 100 customers" in summary["warning"]
    # In percentage points, as every table shows a conversion uplift (not the raw fraction 0.0436).
    assert f"{100 * summary['mde']:.2f} pp per customer" in summary["warning"]
    assert "predicts 1.00 pp" in summary["warning"] and "0.01" not in summary["warning"]
    need = required_holdout_share(2000, 0.01, np.sqrt(0.05 * 0.95))
    assert need is None and "no holdout share" in summary["warning"]
    big = make_list(40_000).assign(uplift=0.01)
    _, summary = assign_holdout(big, holdout=0.05, base_rate=0.05)
    need = required_holdout_share(40_000, 0.01, np.sqrt(0.05 * 0.95))
    assert f"about {need:.0%}" in summary["warning"]
    n_h = round(need * 40_000)
    z = norm.ppf(0.975) + norm.ppf(0.8)
    assert z * np.sqrt(0.05 * 0.95 * (1 / n_h + 1 / (40_000 - n_h))) == pytest.approx(0.01, rel=0.01)
    _, ok = assign_holdout(big, holdout=0.3, base_rate=0.05)
    assert ok["warning"] is None and ok["mde"] < 0.01
    _, no_rate = assign_holdout(big, holdout=0.3)
    assert no_rate["mde"] is None and "base_rate" in no_rate["note"]


@pytest.mark.parametrize("kwargs, match", [
    ({"holdout": 0.0}, "holdout must be a share"),
    ({"holdout": 1.0}, "holdout must be a share"),
    ({"explore": 0.1}, "needs the customers the model did not select"),
    ({"explore": -0.1}, "explore must be a share"),
    ({"uplift_col": "score"}, "no column 'score'"),
    ({"base_rate": 3.0}, "base_rate"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(UpliftInputError, match=match):
        assign_holdout(make_list(200), **kwargs)


def test_bad_lists():
    tl = make_list(200)
    with pytest.raises(UpliftInputError, match="1 duplicated"):
        assign_holdout(pd.concat([tl, tl.iloc[[0]]]))
    with pytest.raises(UpliftInputError, match="missing or non-numeric"):
        assign_holdout(tl.assign(uplift=np.where(tl.index == 4, np.nan, tl["uplift"])))
    with pytest.raises(UpliftInputError, match="both selected and not selected"):
        assign_holdout(tl, not_selected=tl.iloc[:3], explore=0.1)
    with pytest.raises(UpliftInputError, match="empty"):
        assign_holdout(tl.iloc[:0])
