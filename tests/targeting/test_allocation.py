"""Budgeted coupon targeting: constraints, greedy vs exact optimum, policy-value CIs, curves, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from uplift.errors import UpliftInputError
from uplift.targeting.allocation import (
    allocate,
    baseline_policies,
    exact_allocation,
    policy_value,
    profit_curve,
)

try:  # the prefix property is checked with hypothesis when it is installed, else with seeded loops
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    given = None

COSTS3 = np.array([1.0, 2.5, 5.0])  # e.g. 5%, 10% and 20% off


def campaign(seed: int, n: int = 200, n_arms: int = 3, random_costs: bool = False):
    """Predicted uplift of a coupon ladder: bigger coupons lift more, with diminishing returns; some
    customers react negatively ("sleeping dogs"). ``random_costs`` draws prices, lifts and value too."""
    rng = np.random.default_rng(seed)
    if random_costs:
        cost = np.sort(rng.uniform(0.5, 8, n_arms)).round(2)
        base = rng.normal(0.02, 0.04, n)
        uplift = base[:, None] * rng.uniform(0.5, 2.5, n_arms) + rng.normal(0, 0.02, (n, n_arms))
        return uplift, cost, float(rng.uniform(40, 200))
    base = rng.normal(0.02, 0.03, n)
    lift = np.array([1.0, 1.6, 2.0])[:n_arms]
    uplift = base[:, None] * lift + rng.normal(0, 0.01, (n, n_arms))
    return uplift, COSTS3[:n_arms], 100.0


def profit_of(uplift, cost, value, arm) -> float:
    sel = arm >= 0
    return float((uplift[sel, arm[sel]] * value - cost[arm[sel]]).sum())


# ------------------------------------------------------------------------------------------------------------
# allocate: single coupon

def test_single_coupon_ranks_by_profit_and_skips_unprofitable():
    up = np.array([0.1, 0.5, 0.3, -0.2, 0.3])
    # profits at value 10, cost 1: [0, 4, 2, -3, 2]
    alloc = allocate(up, cost=1.0, value=10.0)
    assert alloc.arm.tolist() == [-1, 0, 0, -1, 0]          # zero profit is not positive
    assert alloc.order.tolist() == [1, 2, 4]                 # tie 2 vs 4 broken by index
    assert alloc.rank.tolist() == [-1, 0, 1, -1, 2]
    np.testing.assert_allclose(alloc.cumulative_cost, [1, 2, 3])
    np.testing.assert_allclose(alloc.cumulative_profit, [4, 6, 8])
    assert alloc.total_profit == pytest.approx(8.0) and alloc.roi == pytest.approx(8 / 3)
    np.testing.assert_allclose(alloc.incremental_revenue, alloc.incremental_outcome * 10)

    assert allocate(up, cost=1.0, value=10.0, budget=2.5).order.tolist() == [1, 2]
    assert allocate(up, cost=1.0, value=10.0, max_customers=1).order.tolist() == [1]
    everyone = allocate(up, cost=1.0, value=10.0, allow_negative=True)
    assert everyone.order.tolist() == [1, 2, 4, 0, 3]         # losers last, least bad first
    assert allocate(up, cost=1.0, value=10.0, budget=4, allow_negative=True).order.tolist() == [1, 2, 4, 0]


def test_no_budget_gives_every_profitable_customer_their_best_coupon():
    up, cost, value = campaign(0)
    profit = up * value - cost
    alloc = allocate(up, cost, value)
    best = profit.max(axis=1)
    expected = np.where(best > 0, profit.argmax(axis=1), -1)
    np.testing.assert_array_equal(alloc.arm, expected)
    assert alloc.total_profit == pytest.approx(best[best > 0].sum())
    # and the exact optimum agrees
    assert exact_allocation(up, cost, value).total_profit == pytest.approx(alloc.total_profit)


def _list_at(up, cost, value, budget, **kw):
    a = allocate(up, cost, value, budget=budget, **kw)
    return a.order.tolist(), a.arm[a.order].tolist()


def _check_prefix(up, cost, value, b1, b2, **kw):
    small, large = sorted((b1, b2))
    o1, a1 = _list_at(up, cost, value, small, **kw)
    o2, a2 = _list_at(up, cost, value, large, **kw)
    assert o2[: len(o1)] == o1 and a2[: len(a1)] == a1


if given is not None:
    @settings(max_examples=80, derandomize=True, deadline=None)
    @given(
        up=st.lists(st.floats(-0.3, 0.6, allow_nan=False), min_size=1, max_size=40),
        cost=st.floats(0.1, 5.0),
        value=st.floats(1.0, 50.0),
        b1=st.floats(0.0, 1.0),
        b2=st.floats(0.0, 1.0),
        cap=st.one_of(st.none(), st.integers(0, 40)),
    )
    def test_single_coupon_list_at_smaller_budget_is_a_prefix(up, cost, value, b1, b2, cap):
        up = np.round(np.array(up), 3)  # coarse values create ties, which must break the same way
        total = cost * up.size
        _check_prefix(up, [cost], value, cost + b1 * total, cost + b2 * total, max_customers=cap)
else:  # pragma: no cover
    def test_single_coupon_list_at_smaller_budget_is_a_prefix():
        rng = np.random.default_rng(7)
        for _ in range(80):
            up = np.round(rng.uniform(-0.3, 0.6, rng.integers(1, 40)), 3)
            cost, value = rng.uniform(0.1, 5), rng.uniform(1, 50)
            b1, b2 = cost + rng.uniform(0, cost * up.size, 2)
            _check_prefix(up, [cost], value, b1, b2)


# ------------------------------------------------------------------------------------------------------------
# allocate: several coupons

@pytest.mark.parametrize("allow_negative", [False, True])
def test_budget_and_customer_cap_never_exceeded(allow_negative):
    rng = np.random.default_rng(1)
    for seed in range(15):
        up, cost, value = campaign(seed, n=150, n_arms=int(rng.integers(1, 4)))
        budget = float(rng.uniform(cost.min(), 300))
        cap = int(rng.integers(0, 150)) if seed % 2 else None
        alloc = allocate(up, cost, value, budget=budget, max_customers=cap, allow_negative=allow_negative)
        assert alloc.total_cost <= budget * (1 + 1e-9)
        assert alloc.cumulative_cost[-1] == pytest.approx(alloc.total_cost) if alloc.n_selected else True
        if cap is not None:
            assert alloc.n_selected <= cap
        assert np.all(np.diff(alloc.profit[alloc.order]) <= 0)  # list is in profit order


def test_no_loss_making_coupon_unless_allowed():
    up, cost, value = campaign(3)
    profit = up * value - cost
    for budget in (None, 20.0, 400.0):
        alloc = allocate(up, cost, value, budget=budget)
        assert (alloc.profit[alloc.selected] > 0).all()
        assert (profit[alloc.selected, alloc.arm[alloc.selected]] > 0).all()
    # sleeping dogs exist in this campaign, and allow_negative lets a volume target reach them
    n_profitable = int((profit.max(axis=1) > 0).sum())
    assert n_profitable < len(up)
    alloc = allocate(up, cost, value, allow_negative=True, max_customers=n_profitable + 10)
    assert alloc.n_selected == n_profitable + 10
    assert (alloc.profit[alloc.selected] <= 0).sum() == 10


def test_exclude_min_roi_and_ci_bounds():
    up, cost, value = campaign(4)
    profit = up * value - cost
    exclude = np.zeros(len(up), dtype=bool)
    exclude[::3] = True
    alloc = allocate(up, cost, value, budget=150.0, exclude=exclude, min_roi=1.0,
                     lower=up - 0.01, upper=up + 0.01)
    sel = alloc.selected
    assert not (sel & exclude).any()
    roi = profit[sel, alloc.arm[sel]] / cost[alloc.arm[sel]]
    assert (roi >= 1.0).all()
    np.testing.assert_allclose(alloc.outcome_upper[sel] - alloc.outcome_lower[sel], 0.02)
    assert np.isnan(alloc.outcome_lower[~sel]).all()
    frame = alloc.to_frame(arm_names=["5%", "10%", "20%"])
    assert frame["customer"].tolist() == alloc.order.tolist()
    assert set(frame["coupon"]) <= {"5%", "10%", "20%"}


def test_upgrade_beats_two_small_coupons_when_it_pays():
    # customer 0 gains a lot from the big coupon; customer 1 is barely profitable
    up = np.array([[0.10, 0.40], [0.03, 0.03]])
    alloc = allocate(up, cost=[1.0, 3.0], value=10.0, budget=3.0)
    assert alloc.arm.tolist() == [1, -1]
    assert alloc.total_profit == pytest.approx(1.0)
    assert exact_allocation(up, cost=[1.0, 3.0], value=10.0, budget=3.0).arm.tolist() == [1, -1]


def test_exact_allocation_matches_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(6):
        up = rng.normal(0.05, 0.08, (6, 2))
        cost, value = np.array([1.0, 2.2]), 40.0
        budget = float(rng.uniform(1.0, 10.0))
        combos = np.array(list(itertools.product([-1, 0, 1], repeat=6)))
        spend = np.where(combos >= 0, cost[np.maximum(combos, 0)], 0).sum(axis=1)
        gain = np.where(combos >= 0, up[np.arange(6), np.maximum(combos, 0)] * value
                        - cost[np.maximum(combos, 0)], 0).sum(axis=1)
        best = gain[spend <= budget].max()
        assert exact_allocation(up, cost, value, budget=budget).total_profit == pytest.approx(best)


def test_greedy_within_one_percent_of_exact_optimum(capsys):
    shares = [0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9]
    gaps = []
    for seed in range(24):
        up, cost, value = campaign(100 + seed, random_costs=seed % 2 == 1)
        full = allocate(up, cost, value).total_cost
        budget = round(shares[seed % len(shares)] * full, 2)
        greedy = allocate(up, cost, value, budget=budget)
        exact = exact_allocation(up, cost, value, budget=budget)
        assert exact.method == "exact"
        assert greedy.total_cost <= budget * (1 + 1e-9) and exact.total_cost <= budget * (1 + 1e-9)
        assert greedy.total_profit <= exact.total_profit * (1 + 1e-7)  # the exact one is an upper bound
        gaps.append((exact.total_profit - greedy.total_profit) / exact.total_profit)
    with capsys.disabled():
        print(f"\ngreedy vs exact: worst gap {max(gaps):.4%}, mean {np.mean(gaps):.4%} over {len(gaps)} "
              "instances (n=200, A=3)")
    assert max(gaps) < 0.01


def test_greedy_with_customer_cap_close_to_exact():
    gaps = []
    for seed in range(6):
        up, cost, value = campaign(200 + seed)
        full = allocate(up, cost, value)
        cap = full.n_selected // 3
        budget = round(0.5 * full.total_cost, 2)
        greedy = allocate(up, cost, value, budget=budget, max_customers=cap)
        exact = exact_allocation(up, cost, value, budget=budget, max_customers=cap)
        assert greedy.n_selected <= cap and exact.n_selected <= cap
        gaps.append((exact.total_profit - greedy.total_profit) / exact.total_profit)
    assert max(gaps) < 0.02


def test_ties_break_by_customer_index():
    up = np.tile([[0.05, 0.08]], (6, 1))
    a1 = allocate(up, cost=[1.0, 2.0], value=40.0, budget=4.0)
    a2 = allocate(up, cost=[1.0, 2.0], value=40.0, budget=4.0)
    np.testing.assert_array_equal(a1.arm, a2.arm)
    # profit 1.0 at cost 1 vs 1.2 at cost 2: four small coupons earn most, given to the first four rows
    assert a1.arm.tolist() == [0, 0, 0, 0, -1, -1]


# ------------------------------------------------------------------------------------------------------------
# policy value and baselines

def test_policy_value_hand_computed():
    dr = np.array([[1.0, 2.0], [0.0, 4.0], [3.0, 0.0], [5.0, 5.0]])
    arm = np.array([0, 1, 0, -1])
    pv = policy_value(dr, arm, cost=[0.5, 1.0], value=2.0)
    # coupon 0 rows: scores 1, 3 (var 2); coupon 1 row: score 4, borrows pooled var of [1, 4, 3] = 7/3
    se = np.sqrt(2 * 2.0 + 1 * 7 / 3)
    assert pv["incremental_outcome"] == pytest.approx(8.0)
    assert pv["incremental_outcome_se"] == pytest.approx(se)
    assert pv["spend"] == pytest.approx(2.0)
    assert pv["profit"] == pytest.approx(14.0) and pv["profit_se"] == pytest.approx(2 * se)
    assert pv["roi"] == pytest.approx(7.0) and pv["roi_se"] == pytest.approx(se)
    assert pv["profit_lower"] == pytest.approx(14 - 1.959964 * 2 * se, rel=1e-5)
    assert (pv["n_rows"], pv["n_selected"]) == (4, 3)


def test_policy_value_ci_covers_true_profit():
    """dr = true uplift + noise: the 95% CIs of profit and ROI cover the true values ~95% of the time."""
    rng = np.random.default_rng(11)
    n, value, cost = 2000, 30.0, np.array([0.5, 1.5])
    x = rng.uniform(-1, 1, n)
    tau = np.column_stack([0.03 + 0.02 * x, 0.06 + 0.05 * x])       # true uplift per coupon
    predicted = tau + rng.normal(0, 0.01, tau.shape)
    alloc = allocate(predicted, cost, value, budget=700.0)
    sel = alloc.selected
    true_outcome = tau[sel, alloc.arm[sel]].sum()
    true_profit = true_outcome * value - alloc.total_cost
    true_roi = true_profit / alloc.total_cost
    noise_sd = rng.uniform(0.5, 1.5, n)[:, None]                     # heteroscedastic DR noise
    hits = {"profit": 0, "roi": 0}
    reps = 200
    for _ in range(reps):
        dr = tau + rng.normal(0, 1, tau.shape) * noise_sd
        pv = policy_value(dr, alloc.arm, cost, value)
        hits["profit"] += pv["profit_lower"] <= true_profit <= pv["profit_upper"]
        hits["roi"] += pv["roi_lower"] <= true_roi <= pv["roi_upper"]
    for name, h in hits.items():
        assert 0.90 <= h / reps <= 0.98, (name, h / reps)


def test_baseline_policies():
    rng = np.random.default_rng(2)
    dr = np.column_stack([0.05 + rng.normal(0, 0.5, 400), 0.08 + rng.normal(0, 0.5, 400)])
    base = baseline_policies(dr, cost=[1.0, 2.0], value=25.0, budget=100.0, random_state=0,
                             arm_names=["small", "big"])
    policies = ("everyone", "random", "random (one draw)")
    assert set(base) == {f"{p}: {a}" for p in policies for a in ("small", "big")}
    every = policy_value(dr, np.zeros(400, dtype=int), [1.0, 2.0], 25.0)
    assert base["everyone: small"]["profit"] == pytest.approx(every["profit"])
    rnd = base["random: big"]
    assert rnd["n_selected"] == 50 and rnd["spend"] == pytest.approx(100.0)
    assert rnd["incremental_outcome"] == pytest.approx(dr[:, 1].sum() / 8)
    everyone_big = base["everyone: big"]
    width = everyone_big["incremental_outcome_upper"] - everyone_big["incremental_outcome_lower"]
    assert rnd["incremental_outcome_upper"] - rnd["incremental_outcome_lower"] == pytest.approx(width / 8)
    assert base["random (one draw): small"]["n_selected"] == 100
    again = baseline_policies(dr, cost=[1.0, 2.0], value=25.0, budget=100.0, random_state=0)
    assert again["random (one draw): coupon 0"]["profit"] == base["random (one draw): small"]["profit"]
    single = baseline_policies(dr[:, :1], cost=1.0, value=25.0, budget=None)
    assert single["random"]["profit"] == pytest.approx(single["everyone"]["profit"])


# ------------------------------------------------------------------------------------------------------------
# profit curve

def test_profit_curve():
    up = np.array([0.1, 0.3, 0.0, 0.25])
    curve = profit_curve(up, 1.0, value=10.0)
    # profits 0, 2, -1, 1.5 → order 1, 3, 0, 2
    np.testing.assert_allclose(curve["expected_profit"], [0, 2, 3.5, 3.5, 2.5])
    assert curve.attrs["cutoff"] == 2
    assert curve["within_cutoff"].tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(curve["share_targeted"], [0, 0.25, 0.5, 0.75, 1.0])

    rng = np.random.default_rng(3)
    n = 500
    up = rng.normal(0.05, 0.05, n)
    dr = up + rng.normal(0, 0.5, n)
    curve = profit_curve(up, np.full(n, 1.0), value=30.0, dr=dr)
    order = np.lexsort((np.arange(n), -up))
    k = 100
    assert curve["estimated_profit"].iloc[k] == pytest.approx(30 * dr[order[:k]].sum() - k)
    se = 30 * np.sqrt(k) * dr[order[:k]].std(ddof=1)
    assert curve["estimated_profit_upper"].iloc[k] - curve["estimated_profit"].iloc[k] == pytest.approx(
        1.959964 * se, rel=1e-5)
    assert curve.attrs["cutoff"] == int((up * 30 - 1 > 0).sum())


# ------------------------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("kwargs, match", [
    ({"cost": [-1.0, 2.0]}, "cost must be finite and >= 0"),
    ({"budget": -5.0}, "budget must be >= 0"),
    ({"budget": 0.5}, r"smaller than the cheapest coupon \(cost 1\)"),
    ({"cost": [1.0, 2.0, 3.0]}, "give one cost per coupon"),
    ({"exclude": np.zeros(3, dtype=bool)}, "exclude must be a boolean mask of length 4"),
    ({"lower": np.zeros((4, 3))}, "lower must have the shape of uplift"),
    ({"max_customers": -1}, "max_customers must be a whole number"),
    ({"max_customers": 2.5}, "max_customers must be a whole number"),
    ({"value": -2.0}, "value .* must be finite and >= 0"),
])
def test_allocate_rejects_bad_input(kwargs, match):
    args = {"uplift": np.full((4, 2), 0.1), "cost": [1.0, 2.0], "value": 10.0} | kwargs
    with pytest.raises(UpliftInputError, match=match):
        allocate(**args)
    with pytest.raises(UpliftInputError):
        exact_allocation(**args)


def test_other_bad_inputs():
    up = np.full((4, 2), 0.1)
    up[2, 1] = np.nan
    with pytest.raises(UpliftInputError, match="row 2, coupon column 1"):
        allocate(up, [1.0, 2.0], 10.0)
    msg = str(pytest.raises(UpliftInputError, allocate, np.ones((3, 1)), [4.0], 10.0, budget=3).value)
    assert "\n" not in msg and "cheapest coupon (cost 4)" in msg
    dr = np.zeros((4, 2))
    with pytest.raises(UpliftInputError, match="arm has value 2 at row 1"):
        policy_value(dr, np.array([0, 2, -1, 1]), [1.0, 1.0], 1.0)
    with pytest.raises(UpliftInputError, match="arm must be an integer array of length 4"):
        policy_value(dr, np.array([0, 1]), [1.0, 1.0], 1.0)
    with pytest.raises(UpliftInputError, match="dr must be finite scores of length 3"):
        profit_curve(np.zeros(3), 1.0, 1.0, dr=np.zeros(4))
    with pytest.raises(UpliftInputError, match="smaller than the cheapest coupon"):
        baseline_policies(dr, [1.0, 2.0], 1.0, budget=0.5)


def test_list_summary_counts_are_on_the_scale_of_the_scored_customers():
    """Scoring twice as many customers as the study had: every count and amount is scaled alike."""
    from tests.conftest import truth_columns
    from uplift import Study, simulate_campaign

    df = simulate_campaign(3000, seed=21)
    study = Study(df, "treatment", "conversion", id="customer_id",
                  exclude=[*truth_columns(df), "revenue"]).fit(learners=["t"], n_folds=3, n_boot=10)
    fresh = simulate_campaign(6000, seed=22).drop(columns=truth_columns(df))
    res = study.target(fresh, cost=1.0, value=60.0, budget=600.0)
    est = res.summary["estimated"]
    assert est["n_rows"] == 6000
    assert abs(est["n_selected"] - res.summary["customers_selected"]) <= 0.25 * res.summary["customers_selected"] + 5
    assert all(b["n_rows"] == 6000 for b in res.summary["baselines"].values() if "n_rows" in b)


@pytest.mark.parametrize("seed", range(6))
def test_allocation_arms_is_the_allocation_s_arm(seed):
    from uplift.targeting.allocation import allocation_arms

    rng = np.random.default_rng(seed)
    n, n_arms = 3000, 1 + seed % 3
    up = rng.normal(0.02, 0.05, size=(n, n_arms))
    up[rng.random(n) < 0.05] = 0.03  # exact ties
    cost = np.sort(rng.uniform(0.2, 1.5, size=n_arms))
    kwargs = [{"budget": 150.0}, {"budget": 80.0, "max_customers": 90}, {"max_customers": 400},
              {"budget": 60.0, "min_roi": 0.5}, {"budget": 300.0, "allow_negative": True},
              {"budget": 1e9}][seed]
    full = allocate(up, cost, 30.0, **kwargs)
    arms = allocation_arms(up, cost, 30.0, **kwargs)
    np.testing.assert_array_equal(arms, full.arm)
    assert arms.dtype == full.arm.dtype


def test_partial_sort_equals_the_stable_full_sort():
    from uplift.targeting.allocation import _smallest

    rng = np.random.default_rng(3)
    values = rng.integers(0, 40, size=5000).astype(float)  # many ties
    for m in (0, 1, 7, 250, 4999, 5000, 6000):
        np.testing.assert_array_equal(_smallest(values, m), np.argsort(values, kind="stable")[:m])


def test_profit_curve_in_a_given_order_is_the_policy_value_of_every_prefix():
    """With the rows' coupons and ``ranked``, each point of the curve (value and band) is :func:`policy_value` of
    the rows taken so far, with their coupons: the per-coupon standard error, not one pooled variance."""
    rng = np.random.default_rng(3)
    n, costs = 60, np.array([1.0, 2.5, 1.5])
    arm = rng.integers(0, 3, n)
    dr = np.column_stack([rng.normal(m, s, n) for m, s in ((0.05, 0.2), (0.1, 1.5), (0.02, 0.6))])
    rows = np.arange(n)
    curve = profit_curve(rng.uniform(0, 0.2, n), costs[arm], 40.0, dr=dr[rows, arm], arm=arm, ranked=True)
    for k in (5, 17, 42, n):
        take = np.where(rows < k, arm, -1)
        pv = policy_value(dr, take, costs, 40.0)
        got = curve.iloc[k]
        assert got["cumulative_cost"] == pytest.approx(pv["spend"])
        assert got["estimated_profit"] == pytest.approx(pv["profit"])
        assert got["estimated_profit_upper"] == pytest.approx(pv["profit_upper"])
    pooled = profit_curve(rng.uniform(0, 0.2, n), costs[arm], 40.0, dr=dr[rows, arm], ranked=True)
    assert pooled["estimated_profit_upper"].iloc[n] != pytest.approx(curve["estimated_profit_upper"].iloc[n])
