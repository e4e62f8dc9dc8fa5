"""Point-in-time features: hand-computed values on a tiny log, nothing after exposure, and the leakage guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift import Study
from uplift.datasets import simulate_events
from uplift.errors import UpliftInputError
from uplift.features import build_features

pytest.importorskip("duckdb")

T = pd.Timestamp


def tiny_log(planted: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [  # customer, time, type, amount, category
        ("a", "2024-05-31 12:00", "view", None, None),           # 0.5 days before a's exposure
        ("a", "2024-05-25 00:00", "purchase", 20.0, "home"),     # exactly 7 days before: inside the 7-day window
        ("a", "2024-05-25 00:00:01", "coupon_redeem", None, None),
        ("a", "2024-03-03 00:00", "purchase", 40.0, "toys"),     # exactly 90 days before
        ("a", "2023-06-02 00:00", "view", None, None),           # exactly 365 days before (2024 is a leap year)
        ("b", "2024-06-02 00:00", "view", None, None),           # 1.5 days before b's exposure
        ("b", "2024-06-10 00:00", "purchase", 15.0, "home"),     # 6.5 days after: the outcome
        ("b", "2024-06-20 00:00", "purchase", 99.0, "home"),     # 16.5 days after: outside the 14-day follow-up
    ]
    if planted:  # at and after a's exposure: may change the outcome, never a feature
        rows += [("a", "2024-06-01 00:00", "purchase", 55.0, "home"), ("a", "2024-06-05 00:00", "view", None, None)]
    events = pd.DataFrame(rows, columns=["cust", "ts", "kind", "value", "category"])
    events["ts"] = pd.to_datetime(events["ts"], format="ISO8601")
    sent = pd.DataFrame({"cust": ["a", "b", "c"], "arm": ["coupon", "control", "coupon"],
                         "sent_at": pd.to_datetime(["2024-06-01 00:00", "2024-06-03 12:00", "2024-06-02 00:00"])})
    return events, sent


def build(events, sent, **kwargs):
    return build_features(events, sent, id="cust", time="ts", event_type="kind", amount="value", channel=None,
                          exposure="sent_at", **kwargs)


def test_features_match_hand_computed_values():
    t = build(*tiny_log())
    f = t.frame.set_index("cust")
    assert f.loc["a", ["view_count_7d", "view_count_30d", "view_count_90d", "view_count_365d"]].tolist() == [1, 1, 1, 2]
    assert f.loc["a", ["purchase_count_7d", "purchase_count_30d", "purchase_count_90d"]].tolist() == [1, 1, 2]
    assert f.loc["a", "purchase_amount_90d"] == 60.0 and f.loc["a", "purchase_amount_30d"] == 20.0
    assert f.loc["a", "purchase_recency_days"] == pytest.approx(7.0)
    assert f.loc["a", "view_recency_days"] == pytest.approx(0.5)
    assert f.loc["a", "days_since_first_event"] == pytest.approx(365.0)
    assert f.loc["a", "aov_365d"] == 30.0 and f.loc["a", "redeem_rate_365d"] == 0.5
    assert f.loc["a", "purchase_trend_30v90"] == pytest.approx(1 / 30 - 1 / 90)
    assert f.loc["a", "category_share_home_365d"] == 0.5 and f.loc["a", "category_share_toys_365d"] == 0.5
    assert f.loc["b", ["view_count_7d", "view_recency_days"]].tolist() == [1, 1.5]
    # outcomes over [exposure, exposure + 14 days): a's purchase at the exposure instant counts, b's day-16.5 not
    assert f["conversion_14d"].tolist() == [1, 1, 0] and f["revenue_14d"].tolist() == [55.0, 15.0, 0.0]
    # a customer without events: zero counts, no recency
    assert f.loc["c", "view_count_365d"] == 0 and np.isnan(f.loc["c", "purchase_recency_days"])
    assert list(t.frame.columns[:3]) == ["cust", "arm", "sent_at"]  # the campaign table comes first, in its order
    assert {e["name"] for e in t.schema["features"]} == set(t.frame.columns[3:-2])
    assert all(e["window_end_days"] == 0.0 and e["end_after_exposure_days_max"] == 0.0
               for e in t.schema["features"])


def test_planted_event_after_exposure_changes_no_feature():
    with_plant, without = build(*tiny_log(planted=True)), build(*tiny_log(planted=False))
    features = with_plant.feature_names
    pd.testing.assert_frame_equal(with_plant.frame[features], without.frame[features])
    assert with_plant.frame["revenue_14d"].tolist() != without.frame["revenue_14d"].tolist()  # the plant is seen


def test_window_past_exposure_is_refused_and_forcing_it_is_loud_and_recorded():
    events, sent = tiny_log()
    with pytest.raises(UpliftInputError, match=r"after the exposure of 3 customer\(s\).*--allow-leakage") as err:
        build(events, sent, as_of="2024-06-06")
    assert "\n" not in str(err.value)
    with pytest.warns(UserWarning, match="LEAKAGE FORCED"):
        leaked = build(events, sent, as_of="2024-06-06", allow_leakage=True)
    clean = build(events, sent)
    # the planted view (2024-06-05) and purchase (at exposure) now count as a's behaviour
    assert leaked.frame.loc[0, "view_count_7d"] == 2 and clean.frame.loc[0, "view_count_7d"] == 1
    assert leaked.frame.loc[0, "purchase_recency_days"] == 5.0 and clean.frame.loc[0, "purchase_recency_days"] == 7.0
    assert leaked.schema["leakage"]["allowed"] and leaked.schema["leakage"]["max_days_past_exposure"] == 5.0
    # an as-of date before every exposure is fine
    early = build(events, sent, as_of="2024-05-31")
    assert not early.schema["leakage"]["customers_with_window_past_exposure"]


def test_campaign_start_for_everyone_and_mapped_columns():
    events, sent = tiny_log()
    t = build_features(events, sent.drop(columns="sent_at"), id="cust", time="ts", event_type="kind",
                       amount="value", exposure=None, campaign_start="2024-06-01", windows=[30])
    assert t.frame.set_index("cust").loc["b", "view_count_30d"] == 0  # b's view is after the campaign start
    with pytest.raises(UpliftInputError, match="no column 'time'.*--time-col"):
        build_features(events, sent, id="cust", time="time", event_type="kind", exposure="sent_at")


def test_forced_leak_moves_the_effect_estimate():
    log = simulate_events(6000, seed=5)
    kwargs = {"treatment": "arm", "observed_until": str(log.observed_until), "windows": [7, 30, 90]}
    clean = build_features(log.events, log.campaign, **kwargs)
    with pytest.warns(UserWarning, match="LEAKAGE FORCED"):
        leaked = build_features(log.events, log.campaign, as_of=str(log.observed_until), allow_leakage=True, **kwargs)

    def ate(table):
        study = Study(table.frame, "arm", "conversion_14d", id="customer_id",
                      exclude=["exposure_time", "revenue_14d"]).fit(["t"], n_folds=3, n_boot=20, allow_leakage=True)
        effects = study.ate()
        return study.design, float(effects.loc[effects["estimand"] == "ATE", "estimate"].iloc[0])

    truth = float(log.truth["true_uplift"].mean())
    (clean_design, clean_ate), (leaked_design, leaked_ate) = ate(clean), ate(leaked)
    assert clean_design == "rct" and abs(clean_ate - truth) < 0.015
    # The coupon's own visits made the arms look different: the study adjusts for features that the coupon caused,
    # and the post-exposure purchases among them explain the effect away.
    assert leaked_design == "observational" and leaked_ate < clean_ate - 0.015
