"""Campaign readout: known answers, error messages, and CI coverage of the realised effect end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from uplift import Study, simulate_campaign
from uplift.datasets import _simulate as sim
from uplift.effects.average import diff_in_means
from uplift.errors import UpliftInputError
from uplift.targeting.holdout import assign_holdout
from uplift.targeting.readouts import hajek, readout


def small_list(n: int = 2000, seed: int = 0, coupons=("a",), holdout: float = 0.2, explore: float = 0.0):
    """A sent list over synthetic customers whose predicted uplift is their true uplift."""
    rng = np.random.default_rng(seed)
    tl = pd.DataFrame({"customer_id": np.arange(1, n + 1), "coupon": rng.choice(list(coupons), n),
                       "uplift": rng.uniform(-0.02, 0.12, n), "cost": 1.0})
    tl["selected"] = tl["uplift"] > 0.02
    return assign_holdout(tl, holdout=holdout, explore=explore, random_state=seed)[0]


def draw_results(sent: pd.DataFrame, seed: int, base: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = base + np.where(sent["send"], sent["uplift"], 0.0)
    y = (rng.random(len(sent)) < p).astype(int)
    return pd.DataFrame({"customer_id": sent["customer_id"], "bought": y, "spend": y * rng.gamma(4, 10, len(sent))})


# ------------------------------------------------------------------------------------------------------------
# known answers

def test_estimate_equals_difference_in_means_and_scales_to_number_sent():
    sent = small_list(3000, seed=1)
    res = draw_results(sent, seed=2)
    out = readout(sent, res, id_col="customer_id", outcome="bought", value=25.0)
    sel = sent[sent["selected"]]
    y = res.set_index("customer_id").loc[sel["customer_id"], "bought"].to_numpy()
    est, se = diff_in_means(y.astype(float), sel["send"].to_numpy().astype(int))
    s = out["summary"]
    n_sent = int(sel["send"].sum())
    assert s["n_sent"] == n_sent and s["n_holdout"] == int(sel["holdout"].sum())
    assert s["realised_uplift"] == pytest.approx(est)
    assert s["incremental_conversions"] == pytest.approx(est * n_sent)
    # Agresti-Caffo smoothing: slightly wider than the plain Neyman interval at these counts, never narrower.
    assert se <= s["realised_uplift_se"] <= 1.05 * se
    # Revenue from a value per conversion, profit = revenue - spend, ROI = profit / spend (spend known exactly).
    assert s["incremental_revenue"] == pytest.approx(25.0 * s["incremental_conversions"])
    assert s["spend"] == pytest.approx(float(n_sent))
    assert s["profit"] == pytest.approx(s["incremental_revenue"] - s["spend"])
    assert s["roi_upper"] == pytest.approx(s["profit_upper"] / s["spend"])
    assert s["predicted_incremental_conversions"] == pytest.approx(sel.loc[sel["send"], "uplift"].sum())


def test_a_revenue_models_list_read_out_on_conversions_predicts_nothing_in_pp():
    """A list from a revenue model carries expected_incremental_outcome (money); read out on a 0/1 outcome, its
    uplift is not a conversion probability: the predicted figures are left out with a note, not shown as pp.
    Read out on the revenue itself they are kept."""
    sent = small_list(3000, seed=4)
    sent["uplift"] *= 50.0  # the revenue model's uplift, money per customer
    sent["expected_incremental_outcome"] = sent["uplift"]
    res = draw_results(sent, seed=5)
    out = readout(sent, res, id_col="customer_id", outcome="bought", revenue="spend")
    s = out["summary"]
    assert np.isnan(s["predicted_uplift"]) and np.isnan(s["predicted_incremental_conversions"])
    assert np.isfinite(s["realised_uplift"]) and out["by_coupon"]["predicted_uplift"].isna().all()
    assert any("fitted on (a continuous outcome such as revenue), not of 'bought'" in n for n in out["notes"])
    same = readout(sent, res, id_col="customer_id", outcome="spend")["summary"]
    assert same["predicted_uplift"] == pytest.approx(sent.loc[sent["selected"], "uplift"].mean(), rel=0.05)


def test_continuous_outcome_is_its_own_revenue():
    sent = small_list(3000, seed=2)
    res = draw_results(sent, seed=3)
    out = readout(sent, res, id_col="customer_id", outcome="spend")
    s = out["summary"]
    assert s["kind"] == "continuous" and "incremental_outcome" in s
    assert s["incremental_revenue"] == pytest.approx(s["incremental_outcome"])
    sel = sent[sent["selected"]].merge(res, on="customer_id")
    est, se = diff_in_means(sel["spend"].to_numpy(float), sel["send"].to_numpy().astype(int))
    assert s["realised_uplift"] == pytest.approx(est)
    assert s["realised_uplift_se"] == pytest.approx(se, rel=0.1)


def test_per_coupon_effects_are_within_coupon_differences_and_sum_to_total():
    sent = small_list(4000, seed=3, coupons=("a", "b", "c"))
    res = draw_results(sent, seed=4)
    out = readout(sent, res, id_col="customer_id", outcome="bought", revenue="spend")
    bc = out["by_coupon"].set_index("coupon")
    assert list(bc.index) == ["a", "b", "c"]
    merged = sent.merge(res, on="customer_id")
    for c in "abc":
        g = merged[merged["selected"] & (merged["coupon"] == c)]
        est, _ = diff_in_means(g["bought"].to_numpy(float), g["send"].to_numpy().astype(int))
        assert bc.loc[c, "realised_uplift"] == pytest.approx(est)
        rev, _ = diff_in_means(g["spend"].to_numpy(float), g["send"].to_numpy().astype(int))
        assert bc.loc[c, "incremental_revenue"] == pytest.approx(rev * g["send"].sum())
    s = out["summary"]
    assert bc["incremental_conversions"].sum() == pytest.approx(s["incremental_conversions"])
    assert bc["spend"].sum() == pytest.approx(s["spend"])


def test_ids_join_across_types_and_order():
    sent = small_list(1500, seed=5)
    res = draw_results(sent, seed=6).sample(frac=1.0, random_state=0)
    a = readout(sent, res, id_col="customer_id", outcome="bought")["summary"]
    res_text = res.assign(customer_id=res["customer_id"].astype(str))  # ids read back from a CSV as text
    b = readout(sent, res_text, id_col="customer_id", outcome="bought")["summary"]
    assert a["incremental_conversions"] == pytest.approx(b["incremental_conversions"])


def test_sent_list_survives_a_csv_round_trip(tmp_path):
    sent = small_list(1500, seed=5)
    res = draw_results(sent, seed=6)
    sent.to_csv(tmp_path / "sent.csv", index=False)
    back = pd.read_csv(tmp_path / "sent.csv", dtype={"send": str, "holdout": str, "selected": str})
    a = readout(sent, res, id_col="customer_id", outcome="bought")["summary"]
    b = readout(back, res, id_col="customer_id", outcome="bought")["summary"]
    assert a["incremental_conversions"] == pytest.approx(b["incremental_conversions"])
    with pytest.raises(UpliftInputError, match="'send' of the sent list must be true/false"):
        readout(sent.assign(send="maybe"), res, id_col="customer_id", outcome="bought")


def test_calibration_puts_predicted_next_to_realised_per_decile():
    # Large list, predicted uplift == true uplift: realised tracks predicted decile by decile.
    sent = small_list(60_000, seed=7, holdout=0.3)
    out = readout(sent, draw_results(sent, seed=8), id_col="customer_id", outcome="bought")
    cal = out["calibration"]
    assert list(cal["uplift_decile"]) == list(range(1, 11))
    covered = (cal["realised_uplift_lower"] <= cal["predicted_uplift"]) & (
        cal["predicted_uplift"] <= cal["realised_uplift_upper"])
    assert covered.sum() >= 8
    slope = np.polyfit(cal["predicted_uplift"], cal["realised_uplift"], 1)[0]
    assert 0.7 < slope < 1.3
    assert out["by_decile"]["n_sent"].sum() == out["summary"]["n_sent"]


def _older_format(sent: pd.DataFrame) -> pd.DataFrame:
    """The same list as versions before the one convention wrote it: uplift_decile 0-9 with 9 = highest among the
    selected (-1 otherwise) and rank from 0."""
    old = sent.copy()
    sel = old["uplift_decile"] > 0
    old.loc[sel, "uplift_decile"] = 10 - old.loc[sel, "uplift_decile"]
    if "rank" in old:
        old.loc[old["rank"] > 0, "rank"] -= 1
    return old


def _ranked_list(n: int, seed: int) -> pd.DataFrame:
    sent = small_list(n, seed=seed, coupons=("a", "b"), holdout=0.3)
    sent = sent.sort_values("uplift", ascending=False, kind="stable").reset_index(drop=True)
    sent["rank"] = np.where(sent["selected"], np.cumsum(sent["selected"]), -1)  # today's: from 1
    return sent


def test_a_list_of_an_older_version_is_read_in_its_own_convention(tmp_path):
    """Older lists numbered the deciles the other way (9 = highest, rank from 0): the readout recognises them and
    reports decile 1 = highest, the same table as for today's list, instead of reading them backwards."""
    sent = _ranked_list(20_000, seed=11)
    res = draw_results(sent, seed=12)
    old = _older_format(sent)
    assert set(old.loc[old["selected"], "uplift_decile"]) == set(range(10))
    old.to_csv(tmp_path / "old.csv", index=False)
    back = pd.read_csv(tmp_path / "old.csv")
    today = readout(sent, res, id_col="customer_id", outcome="bought")
    older = readout(back, res, id_col="customer_id", outcome="bought")
    pd.testing.assert_frame_equal(today["by_decile"], older["by_decile"])
    assert any("older version" in note for note in older["notes"])
    assert not any("older version" in note for note in today["notes"])
    top = older["by_decile"].iloc[0]
    assert top["uplift_decile"] == 1 and top["predicted_uplift"] == older["by_decile"]["predicted_uplift"].max()


def test_an_older_list_without_its_extreme_deciles_is_read_by_rank_or_direction():
    """A short or filtered older list may hold neither decile 0 nor 10: rank from 0 says which convention, and
    without a rank column the direction of the deciles against the predicted uplift does."""
    sent = _ranked_list(20_000, seed=13)
    res = draw_results(sent, seed=14)
    keep = ~sent["uplift_decile"].isin([1, 10])  # today's extremes: old 9 and 0
    sent, res = sent[keep].reset_index(drop=True), res[keep].reset_index(drop=True)
    sent.loc[sent["rank"] > 0, "rank"] -= sent.loc[sent["rank"] > 0, "rank"].min() - 1  # today's ranks from 1
    today = readout(sent, res, id_col="customer_id", outcome="bought")["by_decile"]
    old = _older_format(sent)
    assert old.loc[old["selected"], "rank"].min() == 0
    for frame in (old, old.drop(columns="rank")):
        out = readout(frame, res, id_col="customer_id", outcome="bought")
        pd.testing.assert_frame_equal(today, out["by_decile"])
        assert any("older version" in note for note in out["notes"])
    # today's list without its rank column stays as it is
    same = readout(sent.drop(columns="rank"), res, id_col="customer_id", outcome="bought")
    pd.testing.assert_frame_equal(today, same["by_decile"])
    assert not any("older version" in note for note in same["notes"])


def test_hajek_with_constant_propensity_is_difference_in_means():
    rng = np.random.default_rng(0)
    y, t = rng.normal(size=500), rng.random(500) < 0.3
    est, se = hajek(y, t, np.full(500, 0.3))
    ref, ref_se = diff_in_means(y, t.astype(int))
    assert est == pytest.approx(ref) and se == pytest.approx(ref_se, rel=0.02)


def test_exploration_ipw_recovers_known_effect_among_not_selected():
    # Not-selected customers explored at 30% with a known effect of +0.05 (vs predicted below 0.02).
    rng = np.random.default_rng(9)
    n = 20_000
    tl = pd.DataFrame({"customer_id": np.arange(n), "coupon": "a", "uplift": rng.uniform(0, 0.1, n), "cost": 0.5})
    tl["selected"] = tl["uplift"] > 0.05
    sent = assign_holdout(tl, holdout=0.2, explore=0.3, random_state=1)[0]
    p = 0.1 + np.where(sent["send"], 0.05, 0.0)
    res = pd.DataFrame({"customer_id": sent["customer_id"], "bought": (rng.random(n) < p).astype(int)})
    ex = readout(sent, res, id_col="customer_id", outcome="bought", value=10.0)["exploration"]
    assert ex["n_not_selected"] == int((~sent["selected"]).sum())
    assert ex["n_explored"] == int(sent["explore"].sum())
    assert ex["realised_uplift_lower"] < 0.05 < ex["realised_uplift_upper"]
    assert ex["exploration_spend"] == pytest.approx(0.5 * ex["n_explored"])
    # A targeting list made with include_all=True has no cost for its not-selected rows: the coupon's price
    # on the selected list is used, and said so.
    blank = sent.assign(cost=np.where(sent["selected"], sent["cost"], np.nan))
    out = readout(blank, res, id_col="customer_id", outcome="bought", value=10.0)
    assert out["exploration"]["spend_if_all_sent"] == pytest.approx(0.5 * ex["n_not_selected"])
    assert any("price of their coupon" in note for note in out["notes"])


# ------------------------------------------------------------------------------------------------------------
# errors

def test_results_with_ids_never_in_the_list():
    sent = small_list(500, seed=10)
    res = draw_results(sent, seed=1)
    extra = pd.DataFrame({"customer_id": [10_001, 10_002], "bought": [1, 0], "spend": [5.0, 0.0]})
    with pytest.raises(UpliftInputError, match="2 id.*never in the sent list"):
        readout(sent, pd.concat([res, extra]), id_col="customer_id", outcome="bought")


def test_duplicated_ids_in_results_or_list():
    sent = small_list(500, seed=11)
    res = draw_results(sent, seed=1)
    with pytest.raises(UpliftInputError, match="results has 1 duplicated id"):
        readout(sent, pd.concat([res, res.iloc[[3]]]), id_col="customer_id", outcome="bought")
    with pytest.raises(UpliftInputError, match="sent list has 1 duplicated id"):
        readout(pd.concat([sent, sent.iloc[[3]]]), res, id_col="customer_id", outcome="bought")


def test_list_without_holdout():
    sent = small_list(500, seed=12)
    res = draw_results(sent, seed=1)
    with pytest.raises(UpliftInputError, match="no column 'holdout'"):
        readout(sent.drop(columns="holdout"), res, id_col="customer_id", outcome="bought")
    everyone = sent.assign(holdout=False, send=sent["selected"] | sent["explore"])
    with pytest.raises(UpliftInputError, match="no holdout customers"):
        readout(everyone, res, id_col="customer_id", outcome="bought")


def test_missing_outcomes_are_counted_never_dropped():
    sent = small_list(500, seed=13)
    res = draw_results(sent, seed=1)
    with pytest.raises(UpliftInputError, match="^7 of 500 customers of the list have no row"):
        readout(sent, res.iloc[7:], id_col="customer_id", outcome="bought")
    blank = res.astype({"bought": float})
    blank.loc[[0, 5, 9], "bought"] = np.nan
    with pytest.raises(UpliftInputError, match="missing or not a number for 3 customer"):
        readout(sent, blank, id_col="customer_id", outcome="bought")
    with pytest.raises(UpliftInputError, match="no column 'revenue'"):
        readout(sent, res, id_col="customer_id", outcome="bought", revenue="revenue")


# ------------------------------------------------------------------------------------------------------------
# end to end: fit on campaign 1, target campaign 2 with a holdout and exploration, read out, repeat

def true_baseline(df: pd.DataFrame) -> np.ndarray:
    """The simulator's no-coupon conversion probability p0(x) of every row (not stored in its frame)."""
    x = {c: df[c].to_numpy() for c in ("frequency", "recency_days", "newsletter", "monetary", "age",
                                        "tenure_months")}
    x["channel"], x["region"] = df["channel"].cat.codes.to_numpy(), df["region"].cat.codes.to_numpy()
    return expit(sim._baseline_intercept(df.attrs["simulation"]["base_rate"]) + sim._baseline_score(x))


@pytest.fixture(scope="module")
def campaign2():
    first = simulate_campaign(6000, seed=101)
    truth = [c for c in first if c.startswith("true_") or c.startswith("propensity")]
    study = Study(first, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"]).fit(
        learners=["t"], n_folds=3, n_boot=20)
    second = simulate_campaign(6000, seed=202)
    customers = second.drop(columns=truth + ["treatment", "conversion", "revenue"])
    targeting = study.target(customers, cost=0.5, value=40.0, include_all=True).list
    return second, targeting


def test_true_baseline_matches_the_simulator():
    df = simulate_campaign(60_000, seed=5)
    p0 = true_baseline(df)
    control = df["treatment"].to_numpy() == 0
    # Control conversions are Bernoulli(p0): their mean matches within sampling error.
    assert abs(df["conversion"][control].mean() - p0[control].mean()) < 3 * np.sqrt(0.03 / control.sum())
    treated = ~control
    expected = p0[treated] + df["true_uplift"].to_numpy()[treated]
    assert abs(df["conversion"][treated].mean() - expected.mean()) < 3 * np.sqrt(0.05 / treated.sum())


def test_readout_interval_covers_realised_effect_end_to_end(campaign2):
    df, targeting = campaign2
    rows_of = pd.Index(df["customer_id"])
    p0, tau = true_baseline(df), df["true_uplift"].to_numpy()
    basket = 15.0 + 0.9 * df["monetary"].to_numpy(dtype=float)  # the simulator's expected order value
    rng = np.random.default_rng(2024)
    n_rep = 200
    hit_conv, hit_rev, hit_explore, errors, ses = [], [], [], [], []
    for rep in range(n_rep):
        # Holdout and exploration re-drawn each time; outcomes drawn from the true per-row probabilities.
        sent, plan = assign_holdout(targeting, holdout=0.1, explore=0.02, random_state=rep, base_rate=0.04)
        rows = rows_of.get_indexer(sent["customer_id"])
        send = sent["send"].to_numpy()
        y = (rng.random(len(rows)) < p0[rows] + np.where(send, tau[rows], 0.0)).astype(int)
        spend = np.where(y == 1, basket[rows] * np.exp(0.6 * rng.standard_normal(len(rows)) - 0.18), 0.0)
        results = pd.DataFrame({"customer_id": sent["customer_id"], "conversion": y, "revenue": spend})
        out = readout(sent, results, id_col="customer_id", outcome="conversion", revenue="revenue")
        s, ex = out["summary"], out["exploration"]
        sel = sent["selected"].to_numpy()
        truth = tau[rows][sel & send].sum()  # incremental conversions actually caused among those sent
        truth_rev = (tau * basket)[rows][sel & send].sum()
        hit_conv.append(s["incremental_conversions_lower"] <= truth <= s["incremental_conversions_upper"])
        hit_rev.append(s["incremental_revenue_lower"] <= truth_rev <= s["incremental_revenue_upper"])
        hit_explore.append(ex["realised_uplift_lower"] <= tau[rows][~sel].mean() <= ex["realised_uplift_upper"])
        errors.append(s["incremental_conversions"] - truth)
        ses.append(s["incremental_conversions_se"])
    rate, rate_rev, rate_explore = np.mean(hit_conv), np.mean(hit_rev), np.mean(hit_explore)
    print(f"\ncoverage over {n_rep} replications: conversions {rate:.3f}, revenue {rate_rev:.3f}, "
          f"exploration {rate_explore:.3f}; holdout {plan['n_holdout']} of {plan['n_selected']}")
    assert 0.90 <= rate <= 0.98
    assert 0.90 <= rate_rev <= 0.98
    assert rate_explore >= 0.85  # ~60 explored customers with ~2 conversions: a rough but honest interval
    # Unbiased: the mean error is within sampling noise of zero, and the SE matches the spread of errors.
    assert abs(np.mean(errors)) < 3 * np.std(errors) / np.sqrt(n_rep)
    assert 0.8 < np.mean(ses) / np.std(errors) < 1.3
