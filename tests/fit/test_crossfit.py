"""cross_fit directly: every out-of-fold array comes from models that never saw its row, the doubly-robust scores
are the AIPW formula on those arrays, the arrays are float32 and the folds are stratified."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.conftest import truth_columns
from uplift.data.campaign import campaign_data
from uplift.fit.crossfit import cross_fit
from uplift.fit.learners import E_CLIP
from uplift.fit.models import BinnedMatrix, ModelFactory
from uplift.fit.nuisance import fit_nuisances, fold_seed, make_folds, weak_overlap


def _data(df, outcome: str, design: str):
    return campaign_data(df, "treatment", outcome, id="customer_id",
                         exclude=[c for c in [*truth_columns(df), "revenue", "conversion"] if c != outcome],
                         design=design)


@pytest.fixture(scope="module")
def obs(obs_df):
    data = _data(obs_df.head(4000), "conversion", "observational")
    return data, cross_fit(data, learners=("t", "x", "dr"), n_folds=3, random_state=2)


@pytest.fixture(scope="module")
def multi(multi_df):
    data = _data(multi_df.head(4500), "conversion", "observational")
    return data, cross_fit(data, learners=("t",), n_folds=3, random_state=1)


def test_outcome_of_a_fold_never_reaches_its_own_out_of_fold_predictions(rct_df):
    """Change every outcome in fold 0: fold 0's nuisances and its T-, X- and S-uplift stay exactly the same,
    while the other folds' (whose models trained on fold 0) move. A continuous outcome keeps the folds fixed."""
    data = _data(rct_df.head(3000), "revenue", "rct")
    learners = ("t", "x", "s")
    before = cross_fit(data, learners=learners, n_folds=3, random_state=4)
    fold0 = before.folds == 0
    y = data.outcomes["revenue"].copy()
    y[fold0] = y[fold0] * 3.0 + 7.0
    after = cross_fit(dataclasses.replace(data, outcomes={"revenue": y}), learners=learners, n_folds=3,
                      random_state=4)
    np.testing.assert_array_equal(after.folds, before.folds)
    np.testing.assert_array_equal(after.mu[fold0], before.mu[fold0])
    assert not np.allclose(after.mu[~fold0], before.mu[~fold0])  # the check has power
    for name in learners:
        np.testing.assert_array_equal(after.uplift[name][fold0], before.uplift[name][fold0], err_msg=name)
        assert not np.allclose(after.uplift[name][~fold0], before.uplift[name][~fold0]), name


def test_propensity_of_a_fold_is_a_model_of_the_other_folds_refitted_by_hand(obs):
    data, cf = obs
    T, X = data.treatment, data.X
    factory = ModelFactory(categorical=data.schema.categorical_indices, random_state=2, n_rows=data.n,
                           outcome_kind="binary")  # cross_fit's own: sized to the study
    matrix = BinnedMatrix(X, data.schema.categorical_indices, max_rows=factory.max_rows)
    k = 1
    train, test = np.flatnonzero(cf.folds != k), np.flatnonzero(cf.folds == k)
    model = factory.propensity(seed=fold_seed(k, "propensity", 1)).fit(matrix.rows(train),
                                                                      (T[train] == 1).astype(np.float32))
    np.testing.assert_array_equal(cf.e[test, 1], model.predict(X[test]).astype(np.float32))
    # Observational: each arm's outcome model is boosted from a pooled model of both arms' training rows when
    # the out-of-fold propensities fail the overlap check, else fitted on its own arm's rows.
    y = data.outcomes["conversion"]
    rows = train[T[train] == 0]
    mu0 = factory.outcome("binary", seed=fold_seed(k, "outcome", 0))
    if weak_overlap(cf.e, T):
        pooled = factory.outcome("binary", seed=fold_seed(k, "outcome", len(data.arms))).fit(
            matrix.rows(train), y[train])
        mu0.fit(matrix.rows(rows), y[rows], base=pooled, base_score=pooled.raw_score(X[rows]))
    else:
        mu0.fit(matrix.rows(rows), y[rows])
    assert (cf.fold_models[k].mu[0].base_ is None) is not weak_overlap(cf.e, T)
    np.testing.assert_array_equal(cf.mu[test, 0], mu0.predict(X[test]).astype(np.float32))
    # ... and it is the fold model cross_fit keeps for new customers.
    np.testing.assert_array_equal(cf.e[test, 1], cf.fold_models[k].e[1].predict(X[test]).astype(np.float32))


def test_dr_scores_are_the_aipw_formula_on_the_out_of_fold_nuisances(obs):
    data, cf = obs
    y, t = data.outcomes["conversion"].astype(np.float64), data.treatment.astype(np.float64)
    mu0, mu1 = cf.mu[:, 0].astype(np.float64), cf.mu[:, 1].astype(np.float64)
    e = np.clip(cf.e[:, 1].astype(np.float64), *E_CLIP)
    aipw = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
    np.testing.assert_allclose(cf.dr[:, 0], aipw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cf.policy_dr[:, 0], aipw, rtol=1e-5, atol=1e-5)  # one treated arm: the same score
    assert (e != 0.5).mean() > 0.99  # an observational design: a real propensity model, not the share


def test_policy_scores_use_the_multinomial_propensity_from_the_pairwise_ones(multi):
    data, cf = multi
    y, T = data.outcomes["conversion"].astype(np.float64), data.treatment
    odds = np.column_stack([np.ones(len(y))] + [
        (lambda p: p / (1 - p))(np.clip(cf.e[:, a].astype(np.float64), *E_CLIP)) for a in (1, 2)])
    prob = np.clip(odds / odds.sum(axis=1, keepdims=True), E_CLIP[0], 1.0)
    mu = cf.mu.astype(np.float64)
    control = mu[:, 0] + (T == 0) * (y - mu[:, 0]) / prob[:, 0]
    for a in (1, 2):
        expected = mu[:, a] + (T == a) * (y - mu[:, a]) / prob[:, a] - control
        np.testing.assert_allclose(cf.policy_dr[:, a - 1], expected, rtol=1e-5, atol=1e-5)
        # The pairwise DR score is defined on the comparison's rows only.
        assert np.isnan(cf.dr[T == 3 - a, a - 1]).all() and np.isfinite(cf.dr[T != 3 - a, a - 1]).all()


def test_out_of_fold_arrays_are_float32(obs, multi):
    for _, cf in (obs, multi):
        assert cf.mu.dtype == cf.e.dtype == cf.dr.dtype == cf.policy_dr.dtype == np.float32
        assert all(u.dtype == np.float32 for u in cf.uplift.values())
        assert np.isnan(cf.e[:, 0]).all() and np.isfinite(cf.e[:, 1:]).all()


def test_folds_are_stratified_by_arm_and_binary_outcome(obs):
    data, cf = obs
    strata = data.treatment * 2 + data.outcomes["conversion"].astype(int)
    assert sorted(np.unique(cf.folds)) == [0, 1, 2]
    for s in np.unique(strata):
        per_fold = np.bincount(cf.folds[strata == s], minlength=3)
        assert per_fold.max() - per_fold.min() <= 1, (s, per_fold)


def test_randomised_design_propensity_is_the_training_share_of_each_fold(rct_df):
    data = _data(rct_df.head(3000), "conversion", "rct")
    cf = cross_fit(data, learners=("t",), n_folds=3, random_state=0)
    for k in range(3):
        train = cf.folds != k
        share = np.mean(data.treatment[train] == 1)
        np.testing.assert_array_equal(cf.e[cf.folds == k, 1], np.float32(share))
        assert cf.fold_models[k].e[1] == share


def test_cross_fit_nuisances_are_the_shared_loop_called_with_the_studys_inputs(obs):
    """The study's nuisances are exactly what the one nuisance loop gives for the same matrix, folds and models."""
    data, cf = obs
    y = data.outcomes["conversion"]
    factory = ModelFactory(categorical=data.schema.categorical_indices, random_state=2, n_rows=data.n,
                           outcome_kind="binary")  # cross_fit's own: sized to the study
    folds = make_folds(data.treatment, 3, 2, outcome=y)
    np.testing.assert_array_equal(folds, cf.folds)
    matrix = BinnedMatrix(data.X, data.schema.categorical_indices, max_rows=factory.max_rows)
    oof = fit_nuisances(data.X, data.treatment, folds, factory, y=y, kind="binary", matrix=matrix,
                        pooled_outcome="weak overlap")  # an observational study's rule
    np.testing.assert_array_equal(oof.mu, cf.mu)
    np.testing.assert_array_equal(oof.e, cf.e)


def test_nested_nuisances_keep_a_folds_outcomes_out_of_its_own_predictions(obs_df):
    """With nested nuisances the DR/R learners' predictions for fold k cannot depend on fold k's outcomes;
    with the shared out-of-fold nuisances they do (their training rows' μ came from models that saw fold k)."""
    data = _data(obs_df.head(3000), "revenue", "observational")
    kwargs = {"learners": ("dr", "r"), "n_folds": 3, "random_state": 4}
    folds = cross_fit(data, **kwargs).folds
    changed = dataclasses.replace(data, outcomes={"revenue": np.where(folds == 0, 500.0, data.outcomes["revenue"])})
    held = folds == 0
    for nested in (True, False):
        before = cross_fit(data, nested=nested, **kwargs)
        after = cross_fit(changed, nested=nested, **kwargs)
        assert (after.folds == folds).all()
        for name in ("dr", "r"):
            same = np.array_equal(before.uplift[name][held], after.uplift[name][held])
            assert same == nested, (name, nested)
        # The average effects' out-of-fold nuisances are the same either way.
        assert np.array_equal(before.mu, cross_fit(data, **kwargs).mu)


def test_the_ensemble_predicts_with_its_weighted_learners_only_and_gives_the_same_uplift(multi):
    from uplift.fit.crossfit import ensemble_members, predict_uplift

    data = multi[0]
    cf = cross_fit(data, learners=("t", "x", "dr", "s"), n_folds=2)
    X = data.X[:500]
    for a in cf.ensemble_weights:  # one learner weighs nothing in every arm, another in one arm only
        cf.ensemble_weights[a].update(t=0.2, x=0.3, dr=0.4, s=0.0)
    cf.ensemble_weights[1]["dr"] = 0.0
    assert ensemble_members(cf) == ["t", "x", "dr"]
    by_hand = np.zeros((len(X), len(cf.arms) - 1))
    for a, w in cf.ensemble_weights.items():
        by_hand[:, a - 1] = w["_intercept"] + sum(
            w[name] * predict_uplift(cf, X, name)[0][:, a - 1] for name in cf.learners)
    calls = []
    for fm in cf.fold_models:  # the S-learner's fold models are never asked
        for (name, _arm), lrn in fm.learners.items():
            if name == "s":
                lrn.predict = lambda *args, **kw: calls.append(1)
    np.testing.assert_array_equal(predict_uplift(cf, X, "ensemble")[0], np.clip(by_hand, -1, 1))
    assert calls == []


def test_learners_that_ignore_nuisances_score_without_the_outcome_models(rct_df):
    from uplift.fit.crossfit import predict_uplift

    cf = cross_fit(_data(rct_df, "conversion", "rct"), learners=("dr", "s"), n_folds=2)
    X = _data(rct_df, "conversion", "rct").X[:300]
    expected = predict_uplift(cf, X, "dr")[0]
    for fm in cf.fold_models:
        for a in fm.mu:
            fm.mu[a] = None  # any prediction of an outcome model would fail
    np.testing.assert_array_equal(predict_uplift(cf, X, "dr")[0], expected)
    assert np.isfinite(predict_uplift(cf, X, "ensemble")[0]).all()
