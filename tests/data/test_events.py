"""The event-log simulator: deterministic, realistic in shape, and its planted uplift is what the arms show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.datasets import EventLog, simulate_events


@pytest.fixture(scope="module")
def log() -> EventLog:
    return simulate_events(20_000, seed=11)


def test_same_seed_same_log():
    a, b = simulate_events(500, seed=4), simulate_events(500, seed=4)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not simulate_events(500, seed=5).events.equals(a.events)


def test_log_shape(log):
    per_customer = len(log.events) / len(log.campaign)
    assert 7 < per_customer < 15
    assert set(log.events["event_type"].unique()) == {"view", "add_to_cart", "purchase", "favourite", "review",
                                                      "coupon_redeem", "return"}
    assert log.events["amount"].notna().eq(log.events["event_type"].isin(["purchase", "return"])).all()
    assert log.events["timestamp"].max() < log.observed_until


def test_arms_differ_by_the_planted_uplift(log):
    exposure = log.campaign.set_index("customer_id")["exposure_time"]
    ev = log.events[log.events["event_type"] == "purchase"]
    after = (ev["timestamp"] - exposure.reindex(ev["customer_id"].astype(str)).to_numpy()).dt.total_seconds() / 86400
    buyers = set(ev.loc[(after >= 0).to_numpy() & (after < log.follow_up_days).to_numpy(), "customer_id"].astype(str))
    converted = log.campaign["customer_id"].isin(buyers).to_numpy()
    treated = (log.campaign["arm"] == "coupon").to_numpy()
    diff = converted[treated].mean() - converted[~treated].mean()
    se = np.sqrt(converted[treated].var() / treated.sum() + converted[~treated].var() / (~treated).sum())
    truth = log.truth["true_uplift"].mean()
    assert abs(diff - truth) < 3 * se and truth > 2 * se  # a real effect, recovered within noise
    # the coupon works more for deal seekers: the planted heterogeneity is there
    seekers = log.truth["true_deal_seeker"] > log.truth["true_deal_seeker"].median()
    assert log.truth.loc[seekers, "true_uplift"].mean() > 1.5 * log.truth.loc[~seekers, "true_uplift"].mean()
