"""targeting_list: the list is the allocation of the fitted model's scores of the customers given; exclusions,
holdout and exploration; and one list from every entry point (demo, Study.target, `uplift target`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import truth_columns
from uplift import Study, simulate_campaign
from uplift.errors import UpliftInputError
from uplift.targeting import (
    allocate,
    allocation_arms,
    exclusion_mask,
    honest_rule,
    parse_costs,
    policy_value,
    profit_warning,
    read_exclusions,
    targeting_list,
)
from uplift.viz.report import collect_report

COSTS = ["coupon_a=0.5", "coupon_b=1.2"]


@pytest.fixture(scope="module")
def result():
    df = simulate_campaign(3000, n_arms=2, seed=41)
    study = Study(df, "treatment", "conversion", id="customer_id", exclude=[*truth_columns(df), "revenue"])
    return study.fit(learners=["t"], n_folds=2, n_boot=20).result


@pytest.fixture(scope="module")
def customers():
    """New customers as read from a file: text ids with leading zeros, categories as plain text."""
    df = simulate_campaign(3000, n_arms=2, seed=42)
    out = df.drop(columns=[*truth_columns(df), "treatment", "conversion", "revenue"])
    out = out.astype({c: str for c in out.columns if isinstance(out[c].dtype, pd.CategoricalDtype)})
    return out.assign(customer_id=[f"{i:06d}" for i in range(len(out))])


def model_allocation(result, customers, **kwargs):
    """What the list must be: allocate() on the fitted model's predicted uplift of these customers."""
    up = result.predict_uplift(customers)[result.uplift_columns()].to_numpy()
    return allocate(up, parse_costs(COSTS, result.arms), 40.0, **kwargs)


def test_list_is_the_allocation_of_the_models_scores(result, customers):
    res = targeting_list(result, customers, cost=COSTS, value=40.0, budget=400.0)
    alloc = model_allocation(result, customers, budget=400.0)
    assert 100 < alloc.n_selected < len(customers) // 2  # a real cut through the customers
    ids = customers["customer_id"].to_numpy()
    assert res.list["customer_id"].tolist() == ids[alloc.order].tolist()  # same customers, in list order
    assert res.list["rank"].tolist() == list(range(1, alloc.n_selected + 1))  # rank from 1
    coupons = np.asarray(result.treated_arms, dtype=object)[alloc.arm[alloc.order]]
    assert res.list["coupon"].tolist() == coupons.tolist()
    assert res.summary["by_coupon"] == {a: int((alloc.arm == j).sum()) for j, a in enumerate(result.treated_arms)}
    np.testing.assert_allclose(res.list["expected_profit"].sum(), alloc.total_profit)
    assert res.holdout is None and "holdout" not in res.list


def test_training_customers_are_scored_with_the_fitted_model_not_out_of_fold(result):
    df = simulate_campaign(3000, n_arms=2, seed=41)  # the training rows of `result`
    res = targeting_list(result, df, cost=COSTS, value=40.0, budget=400.0)
    fitted = model_allocation(result, df, budget=400.0)
    assert res.list["customer_id"].tolist() == df["customer_id"].to_numpy()[fitted.order].tolist()
    oof = allocate(result.oof_uplift(), parse_costs(COSTS, result.arms), 40.0, budget=400.0)
    assert not np.array_equal(oof.arm, fitted.arm)  # the two rules really differ on these rows
    # ... while the honest value is the out-of-fold ranking's, at the list's own size and spend (factor 1 here).
    est = res.summary["estimated"]
    assert est["n_selected"] == fitted.n_selected and est["spend"] == pytest.approx(fitted.total_cost)
    costs = parse_costs(COSTS, result.arms)
    rule = allocation_arms(result.oof_uplift(), costs, 40.0, budget=fitted.total_cost,
                           max_customers=fitted.n_selected, allow_negative=True)
    pv = policy_value(result.crossfit.policy_dr, rule, costs, 40.0)
    assert est["incremental_outcome"] == pytest.approx(pv["incremental_outcome"])
    assert est["profit"] == pytest.approx(pv["incremental_revenue"] - fitted.total_cost)


def test_summary_row_footer_and_written_list_are_the_same_customers_when_the_budget_does_not_bind(result, customers):
    """A budget far above what positive-profit customers cost: the list stops early; every figure describes it."""
    res = targeting_list(result, customers, cost=COSTS, value=40.0, budget=1e6)
    summary, est = res.summary, res.summary["estimated"]
    lst = res.list
    assert summary["spend"] < 1e6 / 10  # the budget does not bind
    assert est["n_selected"] == summary["customers_selected"] == len(lst)
    assert est["spend"] == pytest.approx(summary["spend"]) == pytest.approx(lst["cost"].sum())
    assert sum(summary["by_coupon"].values()) == len(lst)
    # The random baselines spend what the list spends, not the budget.
    for name, base in summary["baselines"].items():
        if name.startswith("random") and "one draw" not in name:
            assert base["spend"] == pytest.approx(summary["spend"], rel=0.01)


def test_a_list_whose_honest_profit_may_be_a_loss_says_so(result, customers):
    # Coupons priced so the list is marginal: the model still sees profitable customers, honestly it is unclear.
    res = targeting_list(result, customers, cost=["coupon_a=3.9", "coupon_b=4.4"], value=40.0)
    est = res.summary["estimated"]
    if est["profit_lower"] <= 0:
        assert "may lose money" in res.summary["warning"] or "expected to lose" in res.summary["warning"]
    else:
        assert res.summary["warning"] is None
    assert profit_warning({"profit": -5.0, "profit_lower": -9.0, "profit_upper": -1.0}).find("below zero") > 0
    assert profit_warning({"profit": 5.0, "profit_lower": -1.0, "profit_upper": 11.0}).find("includes zero") > 0
    assert profit_warning({"profit": 5.0, "profit_lower": 1.0, "profit_upper": 9.0}) is None


def test_the_honest_profit_curve_marks_the_list_and_keeps_the_model_curve_beside_it(result, customers):
    res = targeting_list(result, customers, cost=COSTS, value=40.0, budget=400.0)
    curve = res.curve
    assert {"estimated_profit", "estimated_profit_lower", "estimated_profit_upper", "expected_profit"} <= set(curve)
    band = curve.dropna(subset=["estimated_profit_lower"])  # one row has no variance of its own
    assert len(band) >= len(curve) - 1
    assert (band["estimated_profit_lower"] <= band["estimated_profit"]).all()
    assert (band["estimated_profit"] <= band["estimated_profit_upper"]).all()
    cut = curve.attrs["cutoff"]
    assert curve["n_targeted"].iloc[cut] == res.summary["customers_selected"]
    # The honest curve is the out-of-fold DR value of the list's rule, continued: at the whole base every row has
    # the coupon the rule gave it, or (not on the list) its most profitable one.
    up, dr = result.oof_uplift(), result.crossfit.policy_dr
    costs = parse_costs(COSTS, result.arms)
    rule = honest_rule(result, result.best_learner, costs, 40.0, n_list=len(customers),
                       n_selected=res.summary["customers_selected"], spend=res.summary["spend"])
    everyone = np.where(rule >= 0, rule, np.argmax(up * 40.0 - costs, axis=1))
    whole = policy_value(dr, everyone, costs, 40.0)
    spend_gap = res.summary["spend"] - policy_value(dr, rule, costs, 40.0)["spend"]  # the list's own spend
    assert curve["estimated_profit"].iloc[-1] == pytest.approx(whole["profit"] - spend_gap)
    assert curve["estimated_profit_upper"].iloc[-1] - curve["estimated_profit"].iloc[-1] == pytest.approx(
        whole["profit_upper"] - whole["profit"])


def test_the_curve_is_computed_when_first_read_and_equals_the_honest_profit_curve(result, customers, monkeypatch):
    """A list alone never builds the curve (a row per training row: ~2 GB at 14M rows); read, it is the honest
    profit curve of the list's own rule, computed once."""
    import uplift.targeting.lists as lists
    calls = []
    real = lists.honest_profit_curve
    monkeypatch.setattr(lists, "honest_profit_curve", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = targeting_list(result, customers, cost=COSTS, value=40.0, budget=400.0)
    assert calls == []
    costs = parse_costs(COSTS, result.arms)
    direct = real(result, result.best_learner, costs, 40.0, n_list=len(customers),
                  n_selected=res.summary["customers_selected"], spend=res.summary["spend"])
    pd.testing.assert_frame_equal(res.curve, direct)
    assert res.curve.attrs == direct.attrs and res.curve is res.curve and calls == [1]


def _at_the_cut(res) -> tuple[dict, dict]:
    row = res.curve.iloc[res.curve.attrs["cutoff"]]
    est = res.summary["estimated"]
    keys = ("n_targeted", "cumulative_cost", "estimated_profit", "estimated_profit_lower", "estimated_profit_upper")
    return ({k: float(row[k]) for k in keys},
            {k: float(est[e]) for k, e in zip(keys, ("n_selected", "spend", "profit", "profit_lower", "profit_upper"),
                                                strict=True)})


def test_the_honest_curve_at_the_budget_cut_is_the_lists_honest_value_one_coupon():
    df = simulate_campaign(3000, seed=43)
    fit = Study(df, "treatment", "conversion", id="customer_id", exclude=[*truth_columns(df), "revenue"]).fit(
        learners=["t"], n_folds=2, n_boot=20).result
    res = targeting_list(fit, simulate_campaign(2000, seed=44), cost=0.5, value=40.0, budget=300.0)
    curve, listed = _at_the_cut(res)
    assert curve == pytest.approx(listed, rel=1e-9)
    assert 0 < res.curve.attrs["cutoff"] < len(res.curve) - 1  # the budget binds: the curve goes on past it


def test_the_honest_curve_follows_the_lists_mix_of_three_coupons_under_a_budget(three_coupons):
    """Coupons of 1, 2.5 and 1.5 under a budget of 5,000: the list buys another mix than "everyone their most
    profitable coupon"; the curve takes the list's customers with the list's coupons, so at the cut it reads the
    list's honest value, and the rows up to the cut carry the coupons the rule gives them."""
    from tests.shop import BASKET
    from tests.shop import COSTS as SHOP_COSTS
    study, _ = three_coupons
    result = study.result
    res = study.target(cost=SHOP_COSTS, value=BASKET, budget=5000.0)  # the API call
    curve, listed = _at_the_cut(res)
    assert curve == pytest.approx(listed, rel=1e-9)
    costs = parse_costs(SHOP_COSTS, result.arms)
    rule = honest_rule(result, result.best_learner, costs, BASKET, n_list=len(study.data.frame),
                       n_selected=res.summary["customers_selected"], spend=res.summary["spend"])
    cut = res.curve.attrs["cutoff"]
    on_list = res.curve["coupon"].to_numpy()[1:cut + 1]
    assert np.bincount(on_list, minlength=3).tolist() == np.bincount(rule[rule >= 0], minlength=3).tolist()
    best = np.argmax(result.oof_uplift() * BASKET - costs, axis=1)
    assert (best[rule >= 0] != rule[rule >= 0]).any()  # the budget's mix is not everyone's most profitable coupon


def test_exclusions_match_text_ids_with_leading_zeros_exactly(result, customers, tmp_path):
    top = targeting_list(result, customers, cost=COSTS, value=40.0, budget=400.0).list["customer_id"].head(5)
    # Twins of the five best customers under ids without the zeros: same features, other customers.
    twins = customers[customers["customer_id"].isin(top)].assign(customer_id=lambda d: d["customer_id"].str.lstrip("0"))
    both = pd.concat([customers, twins], ignore_index=True)
    optout = tmp_path / "optout.csv"
    optout.write_text("customer_id,reason\n" + "".join(f"{i},asked\n" for i in top))
    excluded = read_exclusions(optout, "customer_id")
    assert excluded == top.tolist()  # "000123" stays "000123" (a CSV reader would make it 123)

    res = targeting_list(result, both, cost=COSTS, value=40.0, budget=400.0, exclude=excluded)
    listed = set(res.list["customer_id"])
    assert not listed & set(top)
    assert set(twins["customer_id"]) <= listed  # "123" is not "000123": the twins stay on the list
    alloc = model_allocation(result, both, budget=400.0, exclude=both["customer_id"].isin(top).to_numpy())
    assert res.list["customer_id"].tolist() == both["customer_id"].to_numpy()[alloc.order].tolist()


def test_exclusion_ids_match_integer_customer_ids_by_value():
    # A customer file read from CSV has integer ids; the opt-out list still says "007".
    assert exclusion_mask(np.array([7, 70, 8]), ["007", "x"]).tolist() == [True, False, False]
    assert exclusion_mask(pd.Series(["007", "7", "07"]), ["007", 7]).tolist() == [True, True, False]


def test_holdout_is_a_stratified_random_share_of_the_selected(result, customers):
    kwargs = dict(cost=COSTS, value=40.0, budget=900.0, holdout=0.2)
    res = targeting_list(result, customers, **kwargs)
    plain = targeting_list(result, customers, cost=COSTS, value=40.0, budget=900.0).list
    assert res.list["customer_id"].tolist() == plain["customer_id"].tolist()  # the same list, marked
    lst = res.list
    assert lst["selected"].all() and (lst["send"] == ~lst["holdout"]).all()
    np.testing.assert_allclose(lst["propensity"], 0.8)
    per_coupon = lst.groupby("coupon")["holdout"].agg(["sum", "size"])
    assert len(per_coupon) == 2 and (np.abs(per_coupon["sum"] - 0.2 * per_coupon["size"]) < 1).all()
    assert res.holdout["n_holdout"] == lst["holdout"].sum()
    assert res.holdout["holdout_by_coupon"] == per_coupon["sum"].to_dict()
    assert res.holdout["base_rate"] == pytest.approx(
        result.ate.query("estimand == 'ATE'")["control_mean"].iloc[0])  # the control conversion rate

    # Each customer is held out with probability 0.2, whatever her rank: over many seeds, the top and the
    # bottom of the list are held out equally often.
    draws = np.array([targeting_list(result, customers, random_state=s, **kwargs).list["holdout"].to_numpy()
                      for s in range(40)])
    rate = draws.mean(axis=0)
    assert rate.mean() == pytest.approx(0.2, abs=0.005)
    half = len(rate) // 2
    assert abs(rate[:half].mean() - 0.2) < 0.02 and abs(rate[half:].mean() - 0.2) < 0.02
    assert rate.std() < 0.1  # binomial spread (0.063 for 40 draws), not a fixed set of customers


def test_explore_only_sends_to_customers_not_selected(result, customers):
    res = targeting_list(result, customers, cost=COSTS, value=40.0, budget=400.0, holdout=0.1, explore=0.2,
                         include_all=True)
    lst = res.list
    assert len(lst) == len(customers)
    assert not (lst["explore"] & lst["selected"]).any() and not (lst["holdout"] & ~lst["selected"]).any()
    assert (lst["send"] == ((lst["selected"] & ~lst["holdout"]) | lst["explore"])).all()
    rest = lst[~lst["selected"]]
    np.testing.assert_allclose(rest["propensity"], 0.2)
    per_coupon = rest.groupby("coupon")["explore"].agg(["sum", "size"])
    assert (np.abs(per_coupon["sum"] - 0.2 * per_coupon["size"]) < 1).all()
    # Without include_all the list holds the selected and the explored customers only.
    sent = targeting_list(result, customers, cost=COSTS, value=40.0, budget=400.0, holdout=0.1, explore=0.2).list
    assert sent["customer_id"].tolist() == lst.loc[lst["selected"] | lst["explore"], "customer_id"].tolist()


def test_include_all_returns_every_customer_once(result, customers):
    res = targeting_list(result, customers, cost=COSTS, value=40.0, budget=400.0, include_all=True)
    lst = res.list
    assert sorted(lst["customer_id"]) == sorted(customers["customer_id"])
    assert lst["selected"].sum() == res.summary["customers_selected"]
    assert (lst.loc[~lst["selected"], "rank"] == -1).all()
    assert lst["selected"].iloc[: res.summary["customers_selected"]].all()  # the list first, in rank order


@pytest.mark.parametrize("kwargs, needle", [
    ({"holdout": 1.5}, "holdout must be a share in [0, 1)"),
    ({"holdout": -0.1}, "holdout must be a share in [0, 1)"),
    ({"explore": 1.0, "holdout": 0.1}, "explore must be a share in [0, 1)"),
    ({"explore": 0.1}, "explore needs a holdout"),
])
def test_bad_holdout_or_explore_is_one_line(result, customers, kwargs, needle):
    with pytest.raises(UpliftInputError) as err:
        targeting_list(result, customers, cost=COSTS, value=40.0, **kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------------------
# one list from every entry point, on the demo data

@pytest.fixture(scope="module")
def hillstrom():
    from uplift import load_hillstrom

    frame = load_hillstrom()
    study = Study(frame, treatment="segment", outcome=["visit", "conversion", "spend"], control="No E-Mail",
                  design="rct").fit(learners=["t"], n_folds=2, n_boot=20)
    return frame, study


def by_coupon(lst: pd.DataFrame) -> dict[str, list[int]]:
    return {c: sorted(g["row"].tolist()) for c, g in lst.groupby("coupon")}


def test_demo_study_target_and_cli_select_the_same_customers(hillstrom, tmp_path):
    from typer.testing import CliRunner

    from uplift.cli import app
    from uplift.cli.demo import targeting_preview

    frame, study = hillstrom
    money = {"cost": 0.10, "value": 7.0, "budget": 1280.0}
    preview = targeting_preview(study.result, frame, value=7.0)
    assert preview.summary["budget"] == pytest.approx(money["budget"])  # the demo's 20% budget at 0.10 an e-mail
    api = targeting_list(study.result, frame, **money)
    facade = study.target(frame, **money)
    study.save(tmp_path / "model")
    frame.to_csv(tmp_path / "hillstrom.csv", index=False)
    out = tmp_path / "list.csv"
    res = CliRunner().invoke(app, ["target", str(tmp_path / "model"), str(tmp_path / "hillstrom.csv"), "--cost",
                                   "0.10", "--value", "7", "--budget", "1280", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    cli = pd.read_csv(out)

    expected = by_coupon(api.list)
    assert sum(map(len, expected.values())) > 10_000  # most of the 1280 / 0.10 e-mails are sent
    for lst in (preview.list, facade.list, cli):
        assert by_coupon(lst) == expected
    summary = json.loads(res.stdout)["summary"]
    assert summary["by_coupon"] == api.summary["by_coupon"] == preview.summary["by_coupon"]
    assert summary["estimated"]["profit"] == pytest.approx(api.summary["estimated"]["profit"], rel=1e-12)

    # The report's targeting section: the same list, from `uplift report` on the saved model and the data file.
    report = collect_report(study.result, study.data, cost=0.10, value=7.0, budget=1280.0, segment_by=[],
                            explain=False)
    assert by_coupon(report.targeting.list) == expected
    html = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["report", str(tmp_path / "model"), "--data", str(tmp_path / "hillstrom.csv"),
                                   "--cost", "0.10", "--value", "7", "--budget", "1280", "--out", str(html)])
    assert res.exit_code == 0, res.output
    for coupon, n in api.summary["by_coupon"].items():
        assert f"{coupon} {n:,}" in html.read_text(encoding="utf-8")  # "Mens E-Mail 8,463", counts for people


def test_the_list_keeps_its_scores_so_a_drift_check_reads_them_instead_of_scoring_again(result, customers):
    res = targeting_list(result, customers, cost=COSTS, value=40.0, budget=400.0)
    expected = result.predict_uplift(customers)
    pd.testing.assert_frame_equal(res.scores, expected)
    again, reused = result.drift(customers), result.drift(customers, uplift=res.scores)
    assert reused["uplift_psi"] == again["uplift_psi"] and reused["warnings"] == again["warnings"]


def test_uplift_target_scores_the_customers_once(result, customers, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from uplift.cli import app
    from uplift.fit.result import FitResult
    from uplift.persist import save_result

    save_result(result, tmp_path / "model")
    customers.to_csv(tmp_path / "customers.csv", index=False)
    calls = []
    score = FitResult.score
    monkeypatch.setattr(FitResult, "score", lambda self, X, **kw: calls.append(len(X)) or score(self, X, **kw))
    res = CliRunner().invoke(app, ["target", str(tmp_path / "model"), str(tmp_path / "customers.csv"), "--cost",
                                   COSTS[0], "--cost", COSTS[1], "--value", "40", "--budget", "400", "--out",
                                   str(tmp_path / "list.csv"), "--json"])
    assert res.exit_code == 0, res.output
    assert calls == [len(customers)]  # the list's scores feed the drift check too
    assert json.loads(res.stdout)["drift"]["n_score"] == len(customers)
