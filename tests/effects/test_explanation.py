"""SHAP explanations of uplift: additivity, recovery of the simulator's known drivers, plain-words drivers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tests.conftest import SHOP_DRIVERS
from uplift import Study, UpliftInputError, simulate_campaign
from uplift.datasets import UPLIFT_DRIVERS_SINGLE
from uplift.effects.explanation import explain

NOISE = ["noise_1", "noise_2", "noise_3", "noise_4"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The machine is shared: OpenMP/BLAS thread pools fighting over 2 busy cores are ~10x slower than one.
    with threadpool_limits(1):
        yield


def _study(df: pd.DataFrame, fast: bool = True) -> Study:
    truth = [c for c in df if c.startswith(("true_", "propensity"))]
    study = Study(df, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=truth + ["revenue"], design="rct")
    models = {}
    if fast:
        models = {"base_classifier": make_pipeline(SimpleImputer(), StandardScaler(),
                                                   LogisticRegression(solver="liblinear")),
                  "base_regressor": make_pipeline(SimpleImputer(), Ridge())}
    return study.fit(learners=["t"], n_folds=3, n_boot=20, **models)


@pytest.fixture(scope="module")
def sim() -> tuple[pd.DataFrame, Study]:
    df = simulate_campaign(6000, design="rct", seed=11)
    study = _study(df)
    # An "oracle" learner whose out-of-fold uplift is the simulator's true uplift: what SHAP must then find is
    # known exactly (the uplift depends on recency_days, frequency, channel and newsletter only).
    study.crossfit_.uplift["oracle"] = df[["true_uplift"]].to_numpy()
    return df, study


@pytest.fixture(scope="module")
def oracle(sim):
    return explain(sim[1].result, sim[1].data, learner="oracle", max_rows=800)


def test_shap_values_add_up_to_the_surrogate_prediction(sim, oracle):
    for ex in (oracle, explain(sim[1].result, sim[1].data, learner="t", max_rows=500)):
        np.testing.assert_allclose(ex.values.sum(axis=1) + ex.base_value, ex.prediction, atol=1e-6, rtol=0)
        np.testing.assert_allclose(ex.surrogate.predict(ex.codes), ex.prediction, atol=1e-12)
        assert ex.values.shape == (len(ex.data), len(ex.feature_names))


def test_importance_ranks_true_drivers_above_noise(oracle):
    imp = oracle.importance.set_index("feature")
    print(oracle.importance.to_string())
    drivers = list(UPLIFT_DRIVERS_SINGLE)
    others = [f for f in imp.index if f not in drivers]  # noise_*, age, tenure, region, monetary: no effect
    assert set(NOISE) <= set(others)
    assert imp.loc[drivers, "rank"].max() < imp.loc[others, "rank"].min()
    assert imp.loc[drivers, "lower"].min() > imp.loc[others, "upper"].max()
    assert list(imp["rank"]) == list(range(1, len(imp) + 1))
    np.testing.assert_allclose(imp["share"].sum(), 1.0)
    # A surrogate of a smooth known function must be nearly exact, and say so with a CI.
    lo, hi = oracle.surrogate_r2_ci
    print(f"oracle surrogate R² {oracle.surrogate_r2:.4f} [{lo:.4f}, {hi:.4f}]")
    assert oracle.surrogate_r2 > 0.95 and lo <= oracle.surrogate_r2 <= hi


def test_real_learner_top_driver_is_a_true_driver():
    df = simulate_campaign(6000, design="rct", seed=11)
    study = _study(df, fast=False)
    ex = explain(study.result, study.data, learner="t", max_rows=500)  # LightGBM T-learner, as analysts use it
    print(ex.importance.head(5).to_string(), f"\nsurrogate R² {ex.surrogate_r2:.3f} {ex.surrogate_r2_ci}")
    assert ex.importance.loc[0, "feature"] in UPLIFT_DRIVERS_SINGLE
    assert 0 < ex.surrogate_r2 <= 1 and ex.surrogate_r2_ci[0] <= ex.surrogate_r2 <= ex.surrogate_r2_ci[1]


def test_explained_rows_keep_original_labels_and_targets(sim, oracle):
    df, study = sim
    rows = oracle.data.index.to_numpy()
    assert len(rows) == 800 and len(np.unique(rows)) == 800
    pd.testing.assert_frame_equal(oracle.data, study.data.frame.loc[rows, list(study.schema.names)])
    assert set(oracle.data["channel"].astype(str)) == {"web", "app", "store"}
    np.testing.assert_allclose(oracle.target, df["true_uplift"].to_numpy()[rows])
    np.testing.assert_array_equal(oracle.ids, df["customer_id"].to_numpy()[rows])
    assert oracle.learner == "oracle" and oracle.arm == "1" and oracle.kind == "binary"


def test_top_drivers_in_plain_words(oracle):
    top = oracle.top_drivers(k=3)
    assert len(top) == 3 * len(oracle.data)
    assert list(top.columns[:2]) == ["row", "customer_id"]
    first = top[top["row"] == oracle.data.index[0]]
    # The three largest |SHAP| of that customer, in order.
    expected = np.sort(np.abs(oracle.values[0]))[::-1][:3]
    np.testing.assert_allclose(np.abs(first["contribution"]), expected)
    assert list(first["rank"]) == [1, 2, 3]
    assert top["text"].str.fullmatch(r"\w+ = \S+ (raises|lowers) uplift by \d+\.\d pp").all()
    raises = top["text"].str.contains("raises")
    assert (top.loc[raises, "contribution"] >= 0).all() and (top.loc[~raises, "contribution"] < 0).all()
    channel = top[top["feature"] == "channel"]
    assert set(channel["value"]) <= {"web", "app", "store"}
    assert channel["text"].str.startswith("channel = ").all()
    with pytest.raises(UpliftInputError, match="k must be between 1"):
        oracle.top_drivers(k=0)


def test_multi_arm_explains_the_chosen_arm():
    df = simulate_campaign(4000, design="rct", n_arms=2, seed=31)
    study = _study(df)
    study.crossfit_.uplift["oracle"] = df[["true_uplift_coupon_a", "true_uplift_coupon_b"]].to_numpy()
    ex_b = explain(study.result, study.data, learner="oracle", arm="coupon_b", max_rows=400)
    ex_a = explain(study.result, study.data, learner="oracle", max_rows=400)
    rank_b = ex_b.importance.set_index("feature")["rank"]
    rank_a = ex_a.importance.set_index("feature")["rank"]
    # Free shipping (coupon_b) works through basket size; the discount (coupon_a) does not.
    assert rank_b["monetary"] < rank_b[NOISE].min()
    assert rank_a["monetary"] > rank_a[list(UPLIFT_DRIVERS_SINGLE)].max()
    assert ex_b.arm == "coupon_b" and ex_a.arm == "coupon_a"


def test_each_coupon_is_explained_by_its_own_drivers(three_coupons):
    """Three coupons driven by different features: the fitted model's explanation of each arm ranks that arm's
    own driver first, and the drivers of the other coupons below it (an explanation of the first arm only, or of
    the wrong arm's column, fails)."""
    study, _ = three_coupons
    explanations = study.explain_arms(max_rows=800)
    assert list(explanations) == ["free_shipping", "pct10", "pct20"]
    for arm, expl in explanations.items():
        ranks = expl.importance.set_index("feature")["rank"]
        assert expl.arm == arm and (expl.importance["arm"] == arm).all()
        assert ranks.index[0] in SHOP_DRIVERS[arm], (arm, list(ranks.index[:3]))
        others = {f for a, drivers in SHOP_DRIVERS.items() if a != arm for f in drivers} - set(SHOP_DRIVERS[arm])
        assert ranks[list(others)].min() > 1
    only = study.explain_arms(arm="pct20", max_rows=300)
    assert list(only) == ["pct20"]


def test_bad_input_raises_one_line_errors(sim):
    _, study = sim
    with pytest.raises(UpliftInputError, match="learner 'r' was not fitted"):
        explain(study.result, study.data, learner="r")
    with pytest.raises(UpliftInputError, match="not a treated arm"):
        explain(study.result, study.data, arm="0")
    with pytest.raises(UpliftInputError, match="fitted on 6,000"):
        explain(study.result, _study(simulate_campaign(800, seed=1)).data)
    with pytest.raises(UpliftInputError, match="max_rows"):
        explain(study.result, study.data, max_rows=0)
