"""DoWhy refutations on simulated campaigns whose true effect is known."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest

from uplift.design.refute import dowhy_refute
from uplift.errors import UpliftInputError
from uplift.fit.nuisance import cross_fit_aipw

CONFOUNDERS = ["x1", "x2", "region"]


def campaign(n: int, seed: int, effect: float = 1.0) -> pd.DataFrame:
    """Coupon sent more often to high-x1 / low-x2 / northern customers, who also spend more."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], n)
    e = 1.0 / (1.0 + np.exp(-(-0.3 + 1.0 * x1 - 0.7 * x2 + 0.4 * (region == "north"))))
    coupon = (rng.random(n) < e).astype(int)
    spend = effect * coupon + x1 + 0.5 * x2 + 0.3 * (region == "north") + rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "region": region, "coupon": coupon, "spend": spend})


@pytest.fixture(scope="module")
def linear_result() -> pd.DataFrame:
    return dowhy_refute(campaign(3000, seed=7), "coupon", "spend", CONFOUNDERS, random_state=0)


def test_linear_regression_recovers_the_effect_and_passes_all_refuters(linear_result):
    res = linear_result.set_index("refuter")
    assert list(res.index) == ["placebo", "random_common_cause", "data_subset", "unobserved"]
    assert {"estimate", "new_estimate", "p_value_or_bound", "passed", "meaning"} <= set(res.columns)
    est = res.iloc[0]
    assert est["estimate_lower"] < 1.0 < est["estimate_upper"]  # true effect is 1.0
    naive = campaign(3000, seed=7).groupby("coupon")["spend"].mean().diff().iloc[-1]
    assert naive > 1.3  # the adjustment matters: the naive difference is far off
    assert res["passed"].all()
    assert res["meaning"].map(lambda m: isinstance(m, str) and len(m) > 40 and "\n" not in m).all()


def test_placebo_effect_ci_covers_zero_and_excludes_the_real_effect(linear_result):
    placebo = linear_result.set_index("refuter").loc["placebo"]
    assert placebo["new_lower"] <= 0.0 <= placebo["new_upper"]
    assert placebo["new_upper"] < 0.5 * placebo["estimate"]
    assert placebo["p_value_or_bound"] > 0.05


def test_stability_refuters_stay_near_the_original(linear_result):
    res = linear_result.set_index("refuter")
    for name in ("random_common_cause", "data_subset"):
        assert res.loc[name, "new_estimate"] == pytest.approx(res.loc[name, "estimate"], abs=0.05)
        assert res.loc[name, "new_lower"] <= res.loc[name, "new_estimate"] <= res.loc[name, "new_upper"]


def test_unobserved_confounder_erases_a_small_effect_but_not_a_large_one(linear_result):
    small = dowhy_refute(campaign(3000, seed=7, effect=0.1), "coupon", "spend", CONFOUNDERS,
                         refuters=("unobserved",))
    row = small.iloc[0]
    assert row["estimate_lower"] > 0  # significant on its own ...
    assert not row["passed"] and row["p_value_or_bound"] < 0  # ... but a plausible hidden confounder flips it
    big = linear_result.set_index("refuter").loc["unobserved"]
    assert big["passed"] and 0 < big["p_value_or_bound"] < big["estimate"]


def test_aipw_estimator_runs_through_dowhy_refuters():
    res = dowhy_refute(campaign(2000, seed=3), "coupon", "spend", CONFOUNDERS, estimate_method="aipw",
                       refuters=("placebo", "data_subset"), num_simulations=4, random_state=1,
                       aipw_scores=cross_fit_aipw)
    res = res.set_index("refuter")
    assert res.loc["placebo", "estimate_lower"] < 1.0 < res.loc["placebo", "estimate_upper"]
    assert res.loc["placebo", "new_lower"] <= 0.0 <= res.loc["placebo", "new_upper"]
    assert res["passed"].all()


def test_aipw_estimate_is_the_mean_of_the_injected_scores_refitted_on_every_refuted_data_set():
    df = campaign(600, seed=5)
    calls = []

    def scores(confounders, t, y, n_folds, seed):
        calls.append((list(confounders.columns), t.copy(), n_folds, seed))
        return y - y.mean() + 2.0 * t  # "scores" whose mean is 2 * the treated share

    res = dowhy_refute(df, "coupon", "spend", CONFOUNDERS, estimate_method="aipw", refuters=("placebo",),
                       num_simulations=3, random_state=2, aipw_scores=scores).iloc[0]
    first = calls[0][1]
    assert res["estimate"] == pytest.approx(2.0 * first.mean())
    v = df["spend"].to_numpy() - df["spend"].mean() + 2.0 * first
    assert res["estimate_upper"] - res["estimate"] == pytest.approx(1.959964 * v.std(ddof=1) / np.sqrt(600))
    assert len(calls) == 1 + 3  # the estimate, then once per placebo simulation
    assert all(sorted(c) == ["x0", "x1", "x2"] and (n, s) == (2, 2) for c, _, n, s in calls)
    np.testing.assert_array_equal(first, df["coupon"].to_numpy())
    assert not any(np.array_equal(t, first) for _, t, _, _ in calls[1:])  # placebo hands over shuffled flags


def test_aipw_without_a_score_function_is_refused():
    with pytest.raises(UpliftInputError, match="aipw_scores"):
        dowhy_refute(campaign(200, seed=1), "coupon", "spend", CONFOUNDERS, estimate_method="aipw")


def test_refutation_is_deterministic_and_leaves_global_rng_alone():
    df = campaign(1500, seed=11)
    np.random.seed(123)  # noqa: NPY002 - the legacy global RNG is what DoWhy touches
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    a = dowhy_refute(df, "coupon", "spend", CONFOUNDERS, refuters=("placebo", "data_subset", "unobserved"),
                     num_simulations=5, random_state=4)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    b = dowhy_refute(df, "coupon", "spend", CONFOUNDERS, refuters=("placebo", "data_subset", "unobserved"),
                     num_simulations=5, random_state=4)
    pd.testing.assert_frame_equal(a, b)
    # Subsets really differ from one simulation to the next (DoWhy 0.12 repeats one subset given an int seed).
    assert a.set_index("refuter").loc["data_subset", "new_upper"] > a.set_index("refuter").loc[
        "data_subset", "new_lower"]


@pytest.mark.parametrize("kwargs, match", [
    ({"treatment": "coupons"}, "treatment column 'coupons'"),
    ({"confounders": ["x1", "spend"]}, "both a confounder"),
    ({"refuters": ("bootstrap",)}, "unknown refuter"),
    ({"estimate_method": "backdoor.propensity_score_matching"}, "estimate_method"),
])
def test_bad_input_is_named(kwargs, match):
    args = {"df": campaign(200, seed=1), "treatment": "coupon", "outcome": "spend",
            "confounders": CONFOUNDERS}
    with pytest.raises(UpliftInputError, match=match):
        dowhy_refute(**{**args, **kwargs})


def test_non_binary_treatment_and_blank_confounders_are_rejected():
    df = campaign(200, seed=1)
    with pytest.raises(UpliftInputError, match="0/1"):
        dowhy_refute(df.assign(coupon=df["coupon"] * 2), "coupon", "spend", CONFOUNDERS)
    with pytest.raises(UpliftInputError, match="missing values"):
        dowhy_refute(df.assign(x1=df["x1"].where(df.index > 5)), "coupon", "spend", CONFOUNDERS)


def test_networkx_name_dowhy_012_needs_is_available():
    # DoWhy 0.12 calls networkx.algorithms.d_separated, which networkx 3.5 removed; refute restores the name.
    import networkx.algorithms

    from uplift.design.refute import _networkx_compat

    _networkx_compat()
    assert callable(networkx.algorithms.d_separated)
    if tuple(int(p) for p in version("dowhy").split(".")[:2]) <= (0, 12):
        assert dowhy_refute(campaign(500, seed=2), "coupon", "spend", CONFOUNDERS, refuters=("placebo",),
                            num_simulations=2)["estimate"].notna().all()
