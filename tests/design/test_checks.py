"""Design checks against hand computations, closed forms and independent reference implementations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score

from uplift._stats import Z95
from uplift.design.checks import (
    balance_auc,
    balance_table,
    crump_bounds,
    declared_split,
    delong_auc,
    e_value,
    ipw_weights,
    leakage_check,
    overlap_summary,
    sample_ratio_check,
    srm_test,
    trim_mask,
    vanished_arm,
)
from uplift.errors import UpliftInputError
from uplift.fit.nuisance import cross_fit_propensity


# ------------------------------------------------------------------------------------------------ SRM
def test_srm_detects_51_49_split_on_100k_rows():
    r = srm_test({"control": 51_000, "coupon": 49_000})
    assert not r["passed"]
    assert r["expected"] == {"control": 50_000.0, "coupon": 50_000.0}
    assert r["chi2"] == pytest.approx(40.0)  # 2 * 1000^2 / 50000
    assert r["p_value"] < 1e-8
    assert "51,000" in r["message"] and "50,000" in r["message"] and "\n" not in r["message"]


def test_srm_passes_a_true_50_50_split_and_a_declared_unequal_split():
    n_treated = int(np.random.default_rng(3).binomial(100_000, 0.5))
    assert srm_test([100_000 - n_treated, n_treated])["passed"]
    r = srm_test({"control": 10_100, "email": 89_900}, expected_shares={"control": 10, "email": 90})
    assert r["passed"] and r["expected"]["control"] == pytest.approx(10_000.0)
    assert not srm_test({"control": 10_100, "email": 89_900})["passed"]  # equal split was not declared


@pytest.mark.parametrize("bad", [[100], [10, -1], {"a": 5, "b": 2.5}])
def test_srm_rejects_bad_counts(bad):
    with pytest.raises(UpliftInputError):
        srm_test(bad)


def _random_arms(shares, n, seed=0):
    """Arm codes drawn in random order with these shares (a real randomisation, not exact counts)."""
    return np.random.default_rng(seed).choice(len(shares), size=n, p=np.asarray(shares) / np.sum(shares))


@pytest.mark.parametrize("shares", [(40, 20, 20, 20), (75, 25), (90, 10), (25, 75)])
def test_an_undeclared_unequal_design_is_reported_not_refused(shares):
    arms = [f"arm{i}" for i in range(len(shares))]
    r = sample_ratio_check(_random_arms(shares, 50_000), arms)
    assert r["passed"] is None and r["declared"] is None and r["vanished"] is None
    assert "needs the declared split" in r["message"] and "observed arm0" in r["message"]
    assert r["message"].lower().count("sample-ratio") == 0


@pytest.mark.parametrize("shares", [(40, 20, 20, 20), (75, 25), (90, 10)])
def test_a_declared_unequal_design_passes_given_as_shares_or_counts(shares):
    arms = [f"arm{i}" for i in range(len(shares))]
    codes = _random_arms(shares, 50_000, seed=1)
    as_shares = [f"{a}={s / sum(shares)}" for a, s in zip(arms, shares, strict=True)]
    as_counts = dict(zip(arms, np.asarray(shares) * 1000, strict=True))
    for declared in (as_shares, as_counts):
        r = sample_ratio_check(codes, arms, declared)
        assert r["passed"] is True and sum(r["declared"].values()) == pytest.approx(1.0)


def test_51_49_on_a_declared_50_50_design_of_100k_rows_fails_once_worded():
    codes = np.r_[np.zeros(51_000, int), np.ones(49_000, int)]
    np.random.default_rng(0).shuffle(codes)
    r = sample_ratio_check(codes, ["control", "coupon"], ["control=50", "coupon=50"])
    assert r["passed"] is False and r["p_value"] < 1e-8
    assert r["message"].lower().count("sample-ratio mismatch") == 1


def test_a_wrong_declaration_fails_and_an_equal_split_passes_undeclared():
    codes = _random_arms((75, 25), 20_000, seed=2)
    assert sample_ratio_check(codes, ["a", "b"], {"a": 50, "b": 50})["passed"] is False
    assert sample_ratio_check(_random_arms((1, 1), 20_000), ["a", "b"])["passed"] is True


@pytest.mark.parametrize("declared, match", [
    (["a=1"], "no share for arm 'b'"), (["a=1", "b=1", "zz=1"], "arm 'zz', which is not in the data"),
    (["a=x", "b=1"], "'x' is not a number"), (["a=0", "b=1"], "positive"), (["a", "b=1"], "ARM=SHARE")])
def test_a_bad_declared_split_is_one_line_naming_the_arm(declared, match):
    with pytest.raises(UpliftInputError, match=match):
        declared_split(declared, ["a", "b"])


def test_an_arm_that_vanished_over_part_of_the_data_fails_without_a_declaration():
    codes = _random_arms((75, 25), 20_000, seed=3)
    codes[12_000:14_000] = 0                     # the coupon arm was not logged for a while
    r = sample_ratio_check(codes, ["control", "coupon"])
    assert r["passed"] is False and "'coupon' has no rows in rows 12,001-14,000" in r["message"]
    # The same arms sorted by arm (a per-arm export) are not a vanished arm.
    assert vanished_arm(np.sort(codes), ["control", "coupon"]) is None


# -------------------------------------------------------------------------------------------- balance
def test_balance_table_hand_example():
    X = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0], "channel": ["web", "web", "app", "web"]})
    tab = balance_table(X, [1, 1, 0, 0]).set_index(["feature", "level"], drop=False)
    # age: means 25 vs 45, sample variances 50 and 50 -> SMD = -20 / sqrt(50)
    age = tab.iloc[0]
    assert (age["mean_treated"], age["mean_control"]) == (25.0, 45.0)
    assert age["smd"] == pytest.approx(-20 / np.sqrt(50))
    assert age["variance_ratio"] == pytest.approx(1.0)
    # channel=app: shares 0 vs 0.5, variances 0 and 0.25 -> SMD = -0.5 / sqrt(0.125)
    app = tab.loc[("channel", "app")]
    assert app["smd"] == pytest.approx(-0.5 / np.sqrt(0.125))
    assert tab["flagged"].all()
    # Weighted means move, the (unweighted) denominator does not: treated age = (20 + 3 * 30) / 4 = 27.5.
    weighted = balance_table(X, [1, 1, 0, 0], weights=[1, 3, 1, 1])
    assert weighted.loc[0, "mean_treated"] == pytest.approx(27.5)
    assert weighted.loc[0, "smd"] == pytest.approx((27.5 - 45) / np.sqrt(50))


def test_balance_table_matches_direct_formula_and_reports_missingness():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, 500)
    x = rng.normal(size=500) + 0.3 * t
    x[:40] = np.nan
    tab = balance_table(pd.DataFrame({"x": x}), t)
    a, b = x[(t == 1) & ~np.isnan(x)], x[(t == 0) & ~np.isnan(x)]
    expected = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert tab.loc[0, "smd"] == pytest.approx(expected)
    assert tab["level"].tolist() == [None, "(missing)"]
    miss = np.isnan(x)
    assert tab.loc[1, "mean_treated"] == pytest.approx(miss[t == 1].mean())


def test_ipw_weighting_balances_a_true_confounder(obs):
    X, t, e, *_ = obs
    before = balance_table(X, t).set_index("feature")
    after = balance_table(X, t, weights=ipw_weights(e, t)).set_index("feature")  # oracle propensity
    assert abs(before.loc["x1", "smd"]) > 0.5
    assert abs(after.loc["x1", "smd"]) < 0.1 and abs(after.loc["x2", "smd"]) < 0.1


def test_balance_table_rejects_misaligned_treatment():
    with pytest.raises(UpliftInputError, match="rows"):
        balance_table(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), [0, 1])
    with pytest.raises(UpliftInputError, match="0 \\(control\\) and 1"):
        balance_table(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), [0, 1, 2])


# ----------------------------------------------------------------------------------- AUC / propensity
def test_delong_matches_sklearn_auc_and_bootstrap_se():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 800)
    s = np.round(rng.normal(size=800) + 0.6 * y, 1)  # rounding creates ties
    auc, se = delong_auc(y, s)
    assert auc == pytest.approx(roc_auc_score(y, s))
    idx = rng.integers(0, 800, size=(250, 800))
    boot = [roc_auc_score(y[i], s[i]) for i in idx]
    assert se == pytest.approx(np.std(boot), rel=0.15)


def test_balance_auc_passes_randomised_and_fails_confounded(obs):
    X, t, _, _, e_hat = obs
    rct_t = np.random.default_rng(9).integers(0, 2, len(X))
    rct = balance_auc(rct_t, cross_fit_propensity(X, rct_t, n_folds=3))
    assert rct["passed"] and rct["lower"] <= 0.5 + 0.03
    conf = balance_auc(t, e_hat)
    assert not conf["passed"]
    assert conf["lower"] > 0.7 and conf["lower"] < conf["auc"] < conf["upper"]


def test_balance_auc_is_the_delong_interval_and_its_rule():
    rng = np.random.default_rng(2)
    t = rng.integers(0, 2, 40_000)
    weak = rng.normal(size=40_000) + 0.1 * t  # AUC ~0.53: detectable at this n, but below 0.55
    r = balance_auc(t, 1 / (1 + np.exp(-weak)))
    auc, se = delong_auc(t, weak)
    assert r["auc"] == pytest.approx(auc) and r["auc"] == pytest.approx(roc_auc_score(t, weak))
    assert (r["lower"], r["upper"]) == pytest.approx((auc - Z95 * se, auc + Z95 * se))
    assert r["lower"] > 0.5 and r["auc"] < 0.55 and r["passed"]  # passes on the 0.55 rule alone
    strong = rng.normal(size=40_000) + 0.4 * t
    assert not balance_auc(t, 1 / (1 + np.exp(-strong)))["passed"]
    small = rng.integers(0, 2, 300)  # AUC may exceed 0.55 by chance at this n, but its CI covers 0.5
    r = balance_auc(small, rng.uniform(size=300))
    assert r["lower"] <= 0.5 <= r["upper"] and r["passed"]


def test_balance_auc_rejects_propensities_that_are_not_one_probability_per_row():
    with pytest.raises(UpliftInputError, match="one propensity per row"):
        balance_auc([0, 1, 0, 1], [0.5, 0.5])
    with pytest.raises(UpliftInputError, match="probabilities"):
        balance_auc([0, 1, 0, 1], [0.5, 0.5, 1.5, 0.5])


# ------------------------------------------------------------------------------------ overlap / trim
def test_overlap_summary_counts():
    e = np.array([0.01, 0.02, 0.5, 0.6, 0.97, 0.3, 0.4, 0.5])
    t = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    o = overlap_summary(e, t)
    assert (o["n_outside_control"], o["n_outside_treated"]) == (2, 1)
    assert (o["share_outside_control"], o["share_outside_treated"]) == (0.5, 0.25)
    assert (o["min_control"], o["max_treated"]) == (0.01, 0.97)
    assert o["hist_control"].sum() == 4 and o["hist_treated"].sum() == 4 and len(o["bin_edges"]) == 21
    assert o["hist_control"][0] == 2 and o["hist_treated"][-2] == 0 and o["hist_treated"][-1] == 1
    assert not o["passed"]
    assert overlap_summary(np.full(8, 0.5), t)["passed"]


def test_trim_mask_fixed_bounds_counts():
    e = np.array([0.01, 0.05, 0.2, 0.5, 0.95, 0.951, 0.99])
    keep, n_dropped = trim_mask(e)
    assert keep.tolist() == [False, True, True, True, True, False, False]
    assert n_dropped == 3
    keep, n_dropped = trim_mask(e, bounds=(0.1, 0.9))
    assert n_dropped == 5 and keep.tolist() == [False, False, True, True, False, False, False]


def test_crump_matches_closed_form_for_uniform_propensities():
    # For e ~ U(0, 1): 1 / (a (1 - a)) = 2 E[g | a <= e <= 1 - a] = 4 ln((1 - a) / a) / (1 - 2a).
    alpha = brentq(lambda a: 1 / (a * (1 - a)) - 4 * np.log((1 - a) / a) / (1 - 2 * a), 1e-4, 0.49)
    lo, hi = crump_bounds(np.linspace(1e-4, 1 - 1e-4, 200_001))
    assert lo == pytest.approx(alpha, abs=0.002) and hi == pytest.approx(1 - alpha, abs=0.002)


def test_crump_minimises_the_trimmed_variance_bound():
    # Independent reference: the rule minimises E[g 1{A}] / P(A)^2 over symmetric sets A = [a, 1 - a].
    e = np.random.default_rng(2).beta(0.6, 0.9, 20_000)
    g = 1 / (e * (1 - e))
    grid = np.linspace(0.0, 0.3, 3001)
    objective = [np.mean(g * ((e >= a) & (e <= 1 - a))) / np.mean((e >= a) & (e <= 1 - a)) ** 2 for a in grid]
    lo, _ = crump_bounds(e)
    assert lo == pytest.approx(grid[int(np.argmin(objective))], abs=0.005)
    keep, n_dropped = trim_mask(e, "crump")
    assert n_dropped == int(((e < lo) | (e > 1 - lo)).sum()) > 0


def test_crump_keeps_everything_when_overlap_is_good():
    assert crump_bounds(np.random.default_rng(0).uniform(0.3, 0.7, 1000)) == (0.0, 1.0)
    with pytest.raises(UpliftInputError):
        trim_mask(np.array([0.2, 0.5]), bounds="wide")


# ------------------------------------------------------------------------------------------- leakage
def test_leakage_check_flags_post_treatment_feature_not_confounders(obs):
    X, t, _, _, e_hat = obs
    rng = np.random.default_rng(4)
    # Moved by the campaign (visits after the coupon) but not strong enough to give the arm away alone.
    visits_after = 0.5 * X["x1"].to_numpy() + 1.0 * t + rng.normal(size=len(t))
    coupon_code = np.where(t == 1, "SPRING10", "none")
    found = leakage_check(X.assign(visits_after=visits_after, coupon_code=coupon_code), t, e_hat)
    assert set(found["feature"]) == {"visits_after", "coupon_code"}  # x1, x2, region are clean
    checks = found.groupby("feature")["reason"].apply(set)
    assert checks["visits_after"] == {"weighted_smd"}
    assert {"single_feature_auc", "single_arm_level"} <= checks["coupon_code"]
    assert found.loc[found["reason"] == "weighted_smd", "statistic"].abs().min() > 0.5
    assert found["message"].map(lambda m: len(m) > 40 and "\n" not in m).all()


def test_leakage_check_counts_missingness_that_only_one_arm_has():
    rng = np.random.default_rng(2)
    t = rng.integers(0, 2, 2000)
    redeemed_days = np.where(t == 1, rng.normal(0.0, 1.0, 2000), np.nan)  # only coupon holders can redeem
    found = leakage_check(pd.DataFrame({"redeemed_days": redeemed_days}), t, np.full(2000, 0.5))
    auc = found[found["reason"] == "single_feature_auc"]
    assert len(auc) == 1 and auc["statistic"].iloc[0] == pytest.approx(1.0)


def test_leakage_check_clean_randomised_data_is_empty():
    rng = np.random.default_rng(8)
    t = rng.integers(0, 2, 3000)
    X = pd.DataFrame({"age": rng.normal(40, 10, 3000), "tier": rng.choice(["a", "b", "c"], 3000),
                      "kids": rng.integers(0, 3, 3000)})
    found = leakage_check(X, t, np.full(3000, t.mean()))
    assert list(found.columns) == ["feature", "reason", "statistic", "message"]
    assert found.empty


# -------------------------------------------------------------------------------------------- E-value
def test_e_value_known_values():
    # VanderWeele & Ding (2017): RR 3.9 (1.8, 8.7) -> E-values 7.26 and 3.0.
    r = e_value(3.9, 1.8, 8.7, kind="rr")
    assert r["e_value"] == pytest.approx(3.9 + np.sqrt(3.9 * 2.9))
    assert r["e_value"] == pytest.approx(7.26, abs=0.005)
    assert r["e_value_ci"] == pytest.approx(3.0)
    # Protective effect: invert, use the upper limit (nearest the null).
    r = e_value(0.8, 0.71, 0.91, kind="rr")
    assert r["e_value"] == pytest.approx(1.25 + np.sqrt(1.25 * 0.25))
    assert r["e_value_ci"] == pytest.approx(1 / 0.91 + np.sqrt(1 / 0.91 * (1 / 0.91 - 1)))
    # CI containing the null needs no confounding at all.
    assert e_value(1.3, 0.9, 1.8, kind="rr")["e_value_ci"] == 1.0


def test_e_value_for_risk_difference_and_smd():
    r = e_value(0.05, 0.02, 0.08, baseline_risk=0.10)  # RR 1.5 (1.2, 1.8)
    assert (r["rr"], r["rr_lower"]) == (pytest.approx(1.5), pytest.approx(1.2))
    assert r["e_value"] == pytest.approx(1.5 + np.sqrt(0.75))
    assert r["e_value_ci"] == pytest.approx(1.2 + np.sqrt(1.2 * 0.2))
    assert e_value(-0.01, -0.03, 0.01, baseline_risk=0.10)["e_value_ci"] == 1.0
    rr = np.exp(0.91 * 0.5)
    assert e_value(0.5, 0.3, 0.7, kind="smd")["e_value"] == pytest.approx(rr + np.sqrt(rr * (rr - 1)))
    with pytest.raises(UpliftInputError, match="baseline_risk"):
        e_value(0.05, 0.02, 0.08)
    with pytest.raises(UpliftInputError):
        e_value(0.05, 0.06, 0.08, baseline_risk=0.1)


def test_leakage_check_does_not_blame_confounders_for_poor_overlap():
    """A strong pre-treatment confounder with poor overlap is not a post-treatment feature (LaLonde-like)."""
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.normal(size=n)
    e = 1 / (1 + np.exp(-(4 * x - 6)))  # most controls have e << 0.05
    t = (rng.random(n) < e).astype(int)
    assert not overlap_summary(e, t)["passed"]
    assert leakage_check(pd.DataFrame({"x": x}), t, e).empty
    found = leakage_check(pd.DataFrame({"x": x, "spent_after": x + 2 * t}), t, e)
    assert set(found["feature"]) == {"spent_after"}
