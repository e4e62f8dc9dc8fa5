"""The one nuisance cross-fitting loop and the two small callers the design checks and refutation are handed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from tests.conftest import confounded
from uplift.data.campaign import FeatureSchema
from uplift.errors import UpliftInputError
from uplift.fit.models import NUISANCE_PARAMS, LGBMModel, ModelFactory
from uplift.fit.nuisance import (
    calibrate_out_of_fold,
    cross_fit_aipw,
    cross_fit_propensity,
    fit_nuisances,
    fold_seed,
    make_folds,
    platt,
)


# ------------------------------------------------------------------------------------------- the loop
def test_each_fold_is_predicted_by_models_of_the_other_folds_only():
    """Scramble the labels of fold 0: its predictions do not move, every other fold's do."""
    X, t, _, y = confounded(3000, seed=2)
    M = FeatureSchema.infer(X).encode(X)
    folds = make_folds(t, 3, 0)
    factory = ModelFactory(categorical=[2])
    before = fit_nuisances(M, t, folds, factory, y=y, kind="continuous")
    y2 = y.copy()
    y2[folds == 0] = np.random.default_rng(0).permutation(y2[folds == 0]) * 5
    after = fit_nuisances(M, t, folds, factory, y=y2, kind="continuous")
    held = folds == 0
    np.testing.assert_array_equal(after.mu[held], before.mu[held])
    assert not np.allclose(after.mu[~held], before.mu[~held])
    np.testing.assert_array_equal(after.e, before.e, strict=True)  # the propensity never reads the outcome


def test_propensity_modes_and_the_seed_of_every_model():
    X, t, _, y = confounded(1500, seed=3)
    M = FeatureSchema.infer(X).encode(X)
    folds = make_folds(t, 3, 1)
    calls = []

    def seeds(fold, model, arm):
        calls.append((fold, model, arm))
        return fold_seed(fold, model, arm)

    share = fit_nuisances(M, t, folds, ModelFactory(categorical=[2]), y=y, kind="continuous", propensity="share",
                          seeds=seeds)
    assert sorted(calls) == sorted([(k, "outcome", a) for k in range(3) for a in (0, 1)])  # no propensity model
    for k in range(3):
        np.testing.assert_array_equal(share.e[folds == k, 1], np.float32(np.mean(t[folds != k])))
        assert share.fold_models[k].e[1] == np.mean(t[folds != k])
    none = fit_nuisances(M, t, folds, ModelFactory(categorical=[2]), y=y, kind="continuous", propensity=None)
    assert none.e is None and none.mu.shape == (1500, 2) and none.fold_models[0].e == {}
    only_e = fit_nuisances(M, t, folds, ModelFactory(categorical=[2]), dtype=np.float64)
    assert only_e.mu is None and only_e.e.dtype == np.float64 and np.isnan(only_e.e[:, 0]).all()
    with pytest.raises(ValueError, match="outcome y, a propensity"):
        fit_nuisances(M, t, folds, ModelFactory(), propensity=None)


def test_make_folds_falls_back_to_arm_strata_when_an_outcome_cell_is_too_small():
    t = np.array([0, 1] * 50)
    y = np.zeros(100)
    y[:2] = 1  # one converter per arm: fewer than the folds
    folds = make_folds(t, 5, 0, outcome=y)
    np.testing.assert_array_equal(folds, make_folds(t, 5, 0))
    assert (np.bincount(folds[t == 1]) == 10).all()


# ------------------------------------------------------------------------- the balance check's propensity
def _reference_propensity(X: pd.DataFrame, t: np.ndarray, n_folds: int, random_state: int) -> np.ndarray:
    """The balance check's propensity as it was written before the loop was shared (its numbers must not move)."""
    schema = FeatureSchema.infer(X)
    M = schema.encode(X)
    folds = np.empty(len(t), dtype=np.int64)
    raw = np.empty(len(t))
    for k, (train, test) in enumerate(StratifiedKFold(n_folds, shuffle=True, random_state=random_state).split(M, t)):
        folds[test] = k
        model = LGBMModel("binary", categorical=schema.categorical_indices, random_state=random_state)
        raw[test] = model.fit(M[train], t[train]).predict(M[test])
    raw = np.clip(raw, 1e-6, 1 - 1e-6)
    logit, out = np.log(raw / (1 - raw)), np.empty(len(t))
    for k in range(n_folds):
        held = folds == k
        a, b = platt(raw[~held], t[~held])
        out[held] = 1.0 / (1.0 + np.exp(-(a + b * logit[held])))
    return out


def test_cross_fit_propensity_reproduces_the_balance_checks_former_numbers():
    X, t, *_ = confounded(2500, seed=4)
    np.testing.assert_array_equal(cross_fit_propensity(X, t, n_folds=3, random_state=7),
                                  _reference_propensity(X, t, 3, 7))


def test_cross_fit_propensity_is_close_to_the_truth_and_calibrated(obs):
    X, t, e, _, e_hat = obs
    assert np.abs(e_hat - e).mean() < 0.08
    assert roc_auc_score(t, e_hat) == pytest.approx(roc_auc_score(t, e), abs=0.03)  # near the oracle AUC
    bins = np.digitize(e_hat, [0.2, 0.4, 0.6, 0.8])
    for b in np.unique(bins):
        assert t[bins == b].mean() == pytest.approx(e_hat[bins == b].mean(), abs=0.06)


def test_platt_step_recovers_a_known_miscalibration():
    rng = np.random.default_rng(6)
    score = rng.uniform(0.05, 0.95, 20_000)  # over-cautious: the truth is twice as extreme on the logit scale
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(0.3 + 2.0 * np.log(score / (1 - score)))))).astype(float)
    a, b = platt(score, y)
    assert a == pytest.approx(0.3, abs=0.08) and b == pytest.approx(2.0, abs=0.1)


def test_no_row_calibrates_its_own_propensity():
    rng = np.random.default_rng(8)
    score = rng.uniform(0.1, 0.9, 3000)
    t = (rng.random(3000) < score).astype(int)
    folds = make_folds(t, 3, 0)
    before = calibrate_out_of_fold(score, t, folds)
    flipped = t.copy()
    flipped[folds == 2] = 1 - flipped[folds == 2]
    after = calibrate_out_of_fold(score, flipped, folds)
    np.testing.assert_array_equal(after[folds == 2], before[folds == 2])
    assert not np.allclose(after[folds != 2], before[folds != 2])


@pytest.mark.parametrize("t, n_folds, match", [
    (np.r_[np.zeros(99), 2], 3, "only 0"),
    (np.zeros(50), 3, "one 0/1 flag per row"),
    (np.r_[np.zeros(98), 1, 1], 3, "at least n_folds=3"),
    (np.r_[np.zeros(50), np.ones(50)], 1, "n_folds must be at least 2"),
])
def test_cross_fit_propensity_names_bad_input(t, n_folds, match):
    X = pd.DataFrame({"x": np.arange(100.0)})
    with pytest.raises(UpliftInputError, match=match):
        cross_fit_propensity(X, t, n_folds=n_folds)


# ------------------------------------------------------------------------------ refutation's AIPW scores
def test_cross_fit_aipw_reproduces_the_refutations_former_estimate():
    """The loop the refutation's AIPW estimator had of its own (2 stratified folds, quick LightGBM, one seed)."""
    from uplift.effects.average import aipw_ate

    X, t, _, y = confounded(2000, seed=5)
    schema = FeatureSchema.infer(X)
    M, cat = schema.encode(X), schema.categorical_indices
    mu0, mu1, e = np.empty(len(y)), np.empty(len(y)), np.empty(len(y))
    fit = dict(params={**NUISANCE_PARAMS, "learning_rate": 0.1}, categorical=cat, max_rounds=100,
               early_stopping=20, random_state=3)
    for train, test in StratifiedKFold(2, shuffle=True, random_state=3).split(M, t):
        e[test] = LGBMModel("binary", **fit).fit(M[train], t[train]).predict(M[test])
        for arm, mu in ((0, mu0), (1, mu1)):
            rows = train[t[train] == arm]
            mu[test] = LGBMModel("regression", **fit).fit(M[rows], y[rows]).predict(M[test])
    value, se = aipw_ate(y, t, mu0, mu1, e)
    scores = cross_fit_aipw(X, t, y, n_folds=2, random_state=3)
    assert scores.mean() == value and scores.std(ddof=1) / np.sqrt(len(y)) == se
    assert abs(value - 1.0) < 3 * se  # the true effect is 1.0 ...
    assert abs(y[t == 1].mean() - y[t == 0].mean() - 1.0) > 5 * se  # ... and the naive difference is far off


# ------------------------------------------------------------------------- pooled outcome models, when
def _targeted(n: int, steepness: float, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    e = 1 / (1 + np.exp(-steepness * X[:, 0]))
    t = (rng.random(n) < e).astype(int)
    y = (rng.random(n) < 0.1 + 0.05 * t + 0.05 * (X[:, 1] > 0)).astype(float)
    return X, t, y


@pytest.mark.parametrize("steepness, pooled", [(0.5, False), (6.0, True)])
def test_outcome_models_pool_only_where_the_overlap_check_fails(steepness, pooled):
    """``"weak overlap"``: the decision follows the propensities the same call fitted; the models it then
    fits are exactly those of the explicit choice (same seeds, same rows), and the propensities are the same
    whichever way the outcome models go."""
    X, t, y = _targeted(4000, steepness, seed=5)
    folds = make_folds(t, 3, 0, outcome=y)
    factory = ModelFactory()
    auto = fit_nuisances(X, t, folds, factory, y=y, kind="binary", pooled_outcome="weak overlap")
    explicit = fit_nuisances(X, t, folds, factory, y=y, kind="binary", pooled_outcome=pooled)
    other = fit_nuisances(X, t, folds, factory, y=y, kind="binary", pooled_outcome=not pooled)
    assert auto.pooled is pooled and explicit.pooled is pooled
    np.testing.assert_array_equal(auto.mu, explicit.mu)
    assert not np.array_equal(auto.mu, other.mu)
    np.testing.assert_array_equal(auto.e, other.e)
    assert all((fm.mu[0].base_ is not None) is pooled for fm in auto.fold_models)


def test_a_randomised_design_never_pools_and_a_bad_choice_is_named():
    X, t, y = _targeted(1500, 6.0, seed=6)  # even with the arm following x0: a share is not a model
    folds = make_folds(t, 3, 0)
    share = fit_nuisances(X, t, folds, ModelFactory(), y=y, kind="binary", propensity="share",
                          pooled_outcome="weak overlap")
    assert share.pooled is False
    with pytest.raises(ValueError, match="pooled_outcome"):
        fit_nuisances(X, t, folds, ModelFactory(), y=y, kind="binary", pooled_outcome="always")
