"""Drift between training and scoring customers: PSI, unseen categories, missing shares, predicted uplift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from uplift import simulate_campaign
from uplift.data.campaign import FeatureSchema
from uplift.datasets import _simulate as sim
from uplift.design.drift import drift_from_profile, drift_report, psi, training_profile
from uplift.errors import UpliftInputError

NOT_FEATURES = ("customer_id", "treatment", "conversion", "revenue")


def features(df: pd.DataFrame) -> list[str]:
    return [c for c in df if c not in NOT_FEATURES and not c.startswith(("true_", "propensity"))]


def predicted_uplift(df: pd.DataFrame) -> np.ndarray:
    """A perfect model's prediction: the simulator's uplift function evaluated on the (possibly shifted) features."""
    x = {c: df[c].to_numpy() for c in ("recency_days", "frequency", "newsletter", "monetary")}
    x["channel"] = df["channel"].cat.codes.to_numpy()
    return sim._uplift_profile(0, x)


@pytest.fixture(scope="module")
def train():
    df = simulate_campaign(6000, seed=1)
    schema = FeatureSchema.infer(df[features(df)])
    return df, schema, training_profile(df, schema, uplift=predicted_uplift(df))


def test_psi_known_answer():
    assert float(psi([0.5, 0.5], [0.25, 0.75])) == pytest.approx(0.25 * np.log(2) + 0.25 * np.log(1.5))
    assert float(psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5])) == 0.0
    # An empty bin is floored rather than infinite; rows of a 2-d array are separate comparisons.
    assert np.isfinite(psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))
    np.testing.assert_allclose(psi(np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([[0.5, 0.5], [0.25, 0.75]])),
                               [0.0, 0.2747], atol=1e-4)


def test_profile_is_json_and_reproduces_the_report(train):
    df, schema, profile = train
    restored = json.loads(json.dumps(profile))
    new = simulate_campaign(3000, seed=2)
    a = drift_from_profile(restored, new, schema, score_uplift=predicted_uplift(new))
    b = drift_report(df, new, schema, train_uplift=predicted_uplift(df), score_uplift=predicted_uplift(new))
    pd.testing.assert_frame_equal(a["features"], b["features"])
    assert a["uplift_psi"] == b["uplift_psi"] and a["warnings"] == b["warnings"]
    rec = profile["features"]["recency_days"]
    assert len(rec["edges"]) == 9 and np.allclose(rec["shares"], 0.1, atol=0.01)  # training deciles
    news = profile["features"]["newsletter"]
    assert len(news["shares"]) == len(news["edges"]) + 1 <= 3  # a 0/1 feature collapses to its values
    ch = profile["features"]["channel"]
    assert ch["levels"] == ["app", "store", "web"]
    np.testing.assert_allclose(ch["shares"], df["channel"].value_counts(normalize=True)[ch["levels"]], atol=1e-12)


def test_same_distribution_rarely_warns(train):
    df, schema, profile = train
    alarms, worst = 0, 0.0
    for rep in range(50):
        new = simulate_campaign(3000, seed=1000 + rep)
        rep_ = drift_from_profile(profile, new, schema, score_uplift=predicted_uplift(new), random_state=rep)
        alarms += rep_["drifted"]
        worst = max(worst, float(rep_["features"]["psi"].max()), rep_["uplift_psi"][0]["psi"])
    print(f"\nfalse-alarm rate over 50 same-distribution batches: {alarms / 50:.2f}; largest PSI {worst:.3f}")
    assert alarms <= 1
    assert worst < 0.05


def test_small_batches_do_not_raise_chance_alarms(train):
    # 60 customers: PSI over 10 bins is large by luck alone; the chance level keeps it from warning.
    df, schema, profile = train
    raw, alarms = 0, 0
    for rep in range(20):
        new = simulate_campaign(60, seed=2000 + rep)
        r = drift_from_profile(profile, new, schema, random_state=rep)
        raw += bool((r["features"]["psi"] > 0.2).any())
        alarms += r["drifted"]
    assert raw >= 10 and alarms <= 2


@pytest.mark.parametrize("shift, feature", [
    ("recency", "recency_days"), ("monetary", "monetary"), ("channel", "channel"),
])
def test_shifted_customers_trigger_the_warning(train, shift, feature):
    df, schema, profile = train
    pool = simulate_campaign(12_000, seed=3)
    if shift == "recency":  # a win-back campaign: customers have been away twice as long
        new = pool.iloc[:3000].assign(recency_days=lambda d: d["recency_days"] * 2)
    elif shift == "monetary":  # prices up by half
        new = pool.iloc[:3000].assign(monetary=lambda d: d["monetary"] * 1.5)
    else:  # an app-only campaign: mostly app customers, a few web, no store
        weight = pool["channel"].map({"app": 1.0, "web": 0.15, "store": 0.0}).astype(float)
        new = pool.sample(3000, weights=weight, random_state=0)
    rep = drift_from_profile(profile, new, schema, score_uplift=predicted_uplift(new))
    table = rep["features"].set_index("feature")
    assert rep["drifted"] and table.loc[feature, "drifted"]
    assert table.loc[feature, "psi"] > 0.2 > table.loc["noise_1", "psi"]
    assert any(w.startswith(f"feature {feature!r} has shifted") for w in rep["warnings"])
    uplift_psi = rep["uplift_psi"][0]["psi"]
    uplift_warned = any(w.startswith("predicted uplift has shifted") for w in rep["warnings"])
    if shift == "channel":  # channel drives the coupon's uplift: the predictions move as well
        assert uplift_psi > 0.2 and uplift_warned
    elif shift == "recency":  # only customers near the lapsed threshold change their uplift: a moderate move
        assert 0.1 < uplift_psi < 0.2 and not uplift_warned
    else:  # order value does not drive this coupon's uplift: the predictions stay put
        assert uplift_psi < 0.05 and not uplift_warned


def test_unseen_categories_and_missing_values(train):
    df, schema, profile = train
    new = simulate_campaign(3000, seed=4)
    channel = new["channel"].astype(object)
    channel[:300] = "kiosk"  # 10% from a channel the model never saw
    monetary = new["monetary"].astype(float)
    monetary[::8] = np.nan  # 12.5% of order values lost by the feed
    new = new.assign(channel=channel, monetary=monetary)
    rep = drift_from_profile(profile, new, schema)
    table = rep["features"].set_index("feature")
    assert table.loc["channel", "unseen_share"] == pytest.approx(0.1)
    assert table.loc["monetary", "missing_share_score"] == pytest.approx(0.125)
    assert table.loc["monetary", "missing_share_train"] == 0.0
    assert any("channel" in w and "never seen" in w for w in rep["warnings"])
    assert any("monetary" in w and "missing" in w for w in rep["warnings"])
    assert table.loc["monetary", "psi"] < 0.05  # the values that remain are as before
    assert not table.loc[["recency_days", "region", "age"], "drifted"].any()


def test_errors(train):
    df, schema, profile = train
    new = simulate_campaign(500, seed=5)
    with pytest.raises(UpliftInputError, match="'age'.*missing from the scoring data"):
        drift_from_profile(profile, new.drop(columns="age"), schema)
    other = FeatureSchema(("age", "shoe_size"), {})
    with pytest.raises(UpliftInputError, match="no entry for feature.*'shoe_size'"):
        drift_from_profile(profile, new.assign(shoe_size=1.0), other)
    with pytest.raises(UpliftInputError, match="one predicted uplift per row"):
        drift_from_profile(profile, new, schema, score_uplift=np.zeros(10))
    with pytest.raises(UpliftInputError, match="not a training profile"):
        drift_from_profile({"features": {}}, new, schema)
    no_uplift = training_profile(df, schema)
    with pytest.raises(UpliftInputError, match="holds no predicted uplift"):
        drift_from_profile(no_uplift, new, schema, score_uplift=predicted_uplift(new))
    with pytest.raises(UpliftInputError, match="numeric in training but row"):
        drift_from_profile(profile, new.assign(age="old"), schema)
