"""Every learner through the same checks, against known per-row uplift and reference implementations."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import truth_columns
from uplift.data.campaign import campaign_data
from uplift.fit.crossfit import cross_fit, predict_uplift
from uplift.fit.learners import REGISTRY


def pehe(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


@pytest.fixture(scope="module")
def rct_fit(rct_df):
    data = campaign_data(rct_df, "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(rct_df), "revenue"], design="rct")
    names = tuple(n for n in REGISTRY)
    return data, cross_fit(data, learners=names, n_folds=3, random_state=0)


@pytest.mark.parametrize("name", [*REGISTRY, "ensemble"])
def test_learner_recovers_heterogeneous_uplift(rct_fit, rct_df, name):
    data, cf = rct_fit
    truth = rct_df["true_uplift"].to_numpy()
    pred = cf.uplift[name][:, 0]
    constant = pehe(np.full_like(truth, truth.mean()), truth)
    # Out-of-fold predictions must carry real signal about who responds.
    assert np.corrcoef(pred, truth)[0, 1] > 0.3, name
    assert pehe(pred, truth) < 2.5 * constant, name
    assert np.isfinite(pred).all()


@pytest.mark.parametrize("name", ["t", "x", "dr", "causal_forest"])
def test_fitted_model_predicts_new_customers(rct_fit, rct_df, name):
    data, cf = rct_fit
    X = data.X[:500]
    up, lo, hi = predict_uplift(cf, X, name, alpha=0.05)
    assert up.shape == (500, 1) and np.isfinite(up).all()
    if REGISTRY[name].gives_intervals:
        # The forest's 95% intervals cover the simulator's true uplift of most customers (measured: 98.6%; the
        # averaged fold standard errors are conservative), and a 50% interval is narrower and covers fewer.
        truth = rct_df["true_uplift"].to_numpy()[:500]
        covered = ((lo[:, 0] <= truth) & (truth <= hi[:, 0])).mean()
        _, lo50, hi50 = predict_uplift(cf, X, name, alpha=0.5)
        covered50 = ((lo50[:, 0] <= truth) & (truth <= hi50[:, 0])).mean()
        assert covered >= 0.9 and covered50 < covered and (hi50 - lo50).mean() < (hi - lo).mean()
    else:
        assert lo is None


def test_same_seed_same_result(rct_df):
    data = campaign_data(rct_df.head(3000), "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(rct_df), "revenue"], design="rct")
    a = cross_fit(data, learners=("x", "dr"), n_folds=3, random_state=5)
    b = cross_fit(data, learners=("x", "dr"), n_folds=3, random_state=5)
    np.testing.assert_array_equal(a.uplift["dr"], b.uplift["dr"])
    np.testing.assert_array_equal(a.uplift["ensemble"], b.uplift["ensemble"])


def test_continuous_revenue_outcome(rct_df):
    data = campaign_data(rct_df, "treatment", "revenue", id="customer_id",
                         exclude=[*truth_columns(rct_df), "conversion"], design="rct")
    cf = cross_fit(data, learners=("t", "dr"), n_folds=3)
    truth = rct_df["true_revenue_uplift"].to_numpy()
    assert np.corrcoef(cf.uplift["dr"][:, 0], truth)[0, 1] > 0.2
    # Revenue is heavy-tailed: the sample's own difference in means is the target of the average prediction.
    from uplift.effects.average import diff_in_means

    est, se = diff_in_means(data.outcomes["revenue"], data.treatment)
    assert abs(cf.uplift["dr"][:, 0].mean() - est) < 2 * se


def test_multi_arm_one_uplift_per_arm(multi_df):
    arms = [c for c in multi_df.columns if c.startswith("true_uplift_")]
    data = campaign_data(multi_df, "treatment", "conversion", id="customer_id", control="control",
                         exclude=[*truth_columns(multi_df), "revenue"], design="rct")
    cf = cross_fit(data, learners=("t", "x"), n_folds=3)
    assert cf.uplift["x"].shape == (len(multi_df), len(data.arms) - 1)
    for j, arm in enumerate(data.arms[1:]):
        truth = multi_df[f"true_uplift_{arm}"].to_numpy()
        assert np.corrcoef(cf.uplift["x"][:, j], truth)[0, 1] > 0.3, arm
    assert len(arms) >= 2


def test_dr_learner_matches_econml_reference(rct_df):
    """Our DR final stage on shared nuisances vs econml's DRLearner with the same LightGBM models."""
    from econml.dr import DRLearner
    from lightgbm import LGBMClassifier, LGBMRegressor

    data = campaign_data(rct_df, "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(rct_df), "revenue"], design="rct")
    truth = rct_df["true_uplift"].to_numpy()
    ours = cross_fit(data, learners=("dr",), n_folds=3).uplift["dr"][:, 0]
    X = np.nan_to_num(data.X)
    ref = DRLearner(model_propensity=LGBMClassifier(n_estimators=100, verbose=-1),
                    model_regression=LGBMRegressor(n_estimators=100, verbose=-1),
                    model_final=LGBMRegressor(n_estimators=100, num_leaves=15, min_child_samples=200, verbose=-1),
                    discrete_outcome=False, cv=3, random_state=0)
    ref.fit(data.outcomes["conversion"], data.treatment, X=X)
    theirs = ref.effect(X)
    # Same estimator, same base models: ours (with early stopping, out of fold) is at least as accurate.
    assert pehe(ours, truth) <= 1.1 * pehe(theirs, truth)
    assert np.corrcoef(theirs, truth)[0, 1] > 0.1  # the reference itself is a working estimate


def test_x_learner_matches_causalml_reference(rct_df):
    from causalml.inference.meta import BaseXRegressor
    from lightgbm import LGBMRegressor

    data = campaign_data(rct_df, "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(rct_df), "revenue"], design="rct")
    truth = rct_df["true_uplift"].to_numpy()
    ours = cross_fit(data, learners=("x",), n_folds=3).uplift["x"][:, 0]
    X = np.nan_to_num(data.X)
    ref = BaseXRegressor(learner=LGBMRegressor(n_estimators=100, verbose=-1))
    theirs = ref.fit_predict(X, data.treatment, data.outcomes["conversion"], p=np.full(len(X), 0.5)).ravel()
    assert pehe(ours, truth) <= 1.25 * pehe(theirs, truth)


def test_ensemble_weights_from_cross_products_equal_nnls_on_the_rows():
    from scipy.optimize import nnls

    from uplift.fit.crossfit import _stack_weights

    rng = np.random.default_rng(6)
    P = rng.normal(size=(5000, 3)) * [1.0, 0.5, 2.0]
    target = P @ [0.7, 0.0, 0.2] + 0.3 + rng.normal(size=5000)
    A = np.column_stack([P, np.ones(5000), target])
    w, intercept = _stack_weights(A.T @ A)
    ref, _ = nnls(np.column_stack([P, np.ones(5000), -np.ones(5000)]), target)
    np.testing.assert_allclose(w, ref[:3], atol=1e-8)
    assert intercept == pytest.approx(ref[3] - ref[4], abs=1e-8)


def test_rows_of_a_binned_matrix_train_like_the_copied_rows():
    from uplift.fit.models import BinnedMatrix, LGBMModel

    rng = np.random.default_rng(7)
    X = rng.normal(size=(6000, 4)).astype(np.float32)
    y = X[:, 0] + 0.1 * rng.normal(size=6000)
    matrix = BinnedMatrix(X).for_arm((np.arange(6000) % 2).astype(float))
    rows = matrix.rows(np.flatnonzero(np.arange(6000) % 3))
    np.testing.assert_array_equal(np.asarray(rows), X[rows.index])
    widened = np.asarray(rows.with_treatment())
    np.testing.assert_array_equal(widened[:, -1], rows.index % 2)
    a = LGBMModel("regression").fit(rows, y[rows.index]).predict(X)
    b = LGBMModel("regression").fit(X[rows.index], y[rows.index]).predict(X)
    assert np.corrcoef(a, b)[0, 1] > 0.99
