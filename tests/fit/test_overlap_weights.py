"""Overlap weights (e(1 − e)) in the DR final stages, the stacked ensemble and the DR-loss selection, and the
bounds on a binary outcome's predicted uplift."""

import numpy as np
import pandas as pd
import pytest

from uplift import Study
from uplift.data.campaign import campaign_data
from uplift.evaluate.selection import dr_loss, paired_dr_loss_difference
from uplift.fit.crossfit import _fold_grams, cross_fit, predict_uplift
from uplift.fit.learners import overlap_weights
from uplift.fit.models import LGBMModel, ModelFactory
from uplift.fit.nuisance import fit_nuisances, make_folds


def test_overlap_weights_are_e_times_one_minus_e_with_mean_one():
    e = np.array([0.5, 0.2, 0.9, 0.0001])
    w = overlap_weights(e)
    h = np.clip(e, 0.01, 0.99) * (1 - np.clip(e, 0.01, 0.99))
    np.testing.assert_allclose(w, h / h.mean())
    assert overlap_weights(np.full(10, 0.4)) is None  # a randomised design: every weight is 1


def test_weighted_dr_loss_is_the_weighted_mean_and_equal_weights_change_nothing():
    rng = np.random.default_rng(1)
    dr, u, ref = rng.normal(size=500), rng.normal(size=500), rng.normal(size=500)
    w = rng.uniform(0.1, 2.0, size=500)
    w /= w.mean()
    assert dr_loss(dr, u, w)[0] == pytest.approx(np.mean(w * (dr - u) ** 2))
    assert dr_loss(dr, u, np.ones(500)) == pytest.approx(dr_loss(dr, u))
    assert paired_dr_loss_difference(dr, u, ref, w)[0] == pytest.approx(np.mean(w * ((dr - u) ** 2 - (dr - ref) ** 2)))


def test_weighted_stacking_grams_are_a_weighted_cross_product():
    rng = np.random.default_rng(2)
    cols = [rng.normal(size=300).astype(np.float32) for _ in range(2)]
    target, folds = rng.normal(size=300), rng.integers(0, 3, 300)
    rows, w = np.arange(300), rng.uniform(0.5, 1.5, 300)
    grams = _fold_grams(cols, target, rows, folds, 3, w)
    A = np.column_stack([*[c.astype(np.float64) for c in cols], np.ones(300), target])
    for k in range(3):
        m = folds == k
        np.testing.assert_allclose(grams[k], A[m].T @ (A[m] * w[m, None]), rtol=1e-10)
    np.testing.assert_allclose(_fold_grams(cols, target, rows, folds, 3, np.ones(300)),
                               _fold_grams(cols, target, rows, folds, 3))


def weak_overlap(n: int, seed: int) -> pd.DataFrame:
    """Propensities from 0.001 to 0.999, uplift rising with the feature that drives the targeting."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    e = np.clip(1 / (1 + np.exp(-3.0 * x[:, 0])), 0.001, 0.999)
    p0 = 1 / (1 + np.exp(-(-2.5 + 0.8 * x[:, 0] + 0.5 * x[:, 1])))
    tau = 0.03 + 0.02 * np.tanh(x[:, 0]) + 0.02 * (x[:, 2] > 0)
    t = (rng.random(n) < e).astype(int)
    y = (rng.random(n) < np.where(t == 1, p0 + tau, p0)).astype(int)
    df = pd.DataFrame(x.astype(np.float32), columns=["x1", "x2", "x3", "x4"])
    df["treatment"], df["conversion"], df["true_uplift"] = t, y, tau
    return df


@pytest.fixture(scope="module")
def weak_study():
    df = weak_overlap(12_000, seed=3)
    study = Study(df, treatment="treatment", outcome="conversion", exclude=["true_uplift"], design="observational")
    return study.fit(learners=["t", "x", "dr", "dr_linear", "s"], n_folds=3, n_boot=20)


def test_weak_overlap_held_out_mean_in_the_overlap_region_is_close_to_the_truth(weak_study):
    test = weak_overlap(20_000, seed=4)
    pred = weak_study.predict_uplift(test)
    u, ov, tau = pred["uplift"].to_numpy(), pred["overlap"].to_numpy(), test["true_uplift"].to_numpy()
    assert 0.4 < ov.mean() < 0.95  # the check has a region to leave out
    # At 12,000 training rows the overlap population's effect itself has a standard error of ~0.9 pp (its AIPW
    # estimate), so 2 pp is what this size allows; benchmarks/weak_overlap.py checks 1 pp at 50k.
    # Before the outcome models were pooled, the T-learner was +4.2 pp off here and the X-learner +2.4 pp.
    assert abs(u[ov].mean() - tau[ov].mean()) < 0.02
    for name in ("t", "x"):
        u = weak_study.predict_uplift(test, learner=name)["uplift"].to_numpy()
        assert abs(u[ov].mean() - tau[ov].mean()) < 0.03, name
    assert (np.abs(u) <= 1).all()


def test_pooled_outcome_models_shrink_the_arm_gap_where_an_arm_is_rare():
    df = weak_overlap(12_000, seed=3)
    data = campaign_data(df, "treatment", "conversion", exclude=["true_uplift"], design="observational")
    factory = ModelFactory(categorical=data.schema.categorical_indices)
    folds = make_folds(data.treatment, 3, 0)
    y, tau = data.outcomes["conversion"], df["true_uplift"].to_numpy()
    pehe = {}
    for pooled in (False, True):
        oof = fit_nuisances(data.X, data.treatment, folds, factory, y=y, kind="binary", pooled_outcome=pooled)
        pehe[pooled] = np.sqrt(np.mean((oof.mu[:, 1] - oof.mu[:, 0] - tau) ** 2))
        assert isinstance(oof.fold_models[0].mu[1].base_, LGBMModel) is pooled
    assert pehe[True] < 0.75 * pehe[False]  # measured: 0.037 vs 0.074 (T-learner PEHE)


def test_a_model_boosted_on_a_base_saves_as_text_and_predicts_the_same():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(3000, 3)).astype(np.float32)
    y = (rng.random(3000) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    base = LGBMModel("binary").fit(X, y)
    arm = X[:, 1] > 0.5
    model = LGBMModel("binary").fit(X[arm], y[arm], base=base, base_score=base.raw_score(X[arm]))
    p = model.predict(X)
    assert ((p > 0) & (p < 1)).all() and not np.allclose(p, base.predict(X))
    text = model.to_bytes()
    assert text.startswith(b"offset:") and b"\x80" not in text[:2]  # plain text, no pickle
    again = LGBMModel.from_bytes(text, "binary")
    np.testing.assert_allclose(again.predict(X), p, rtol=1e-12)
    with pytest.raises(ValueError):
        LGBMModel.from_bytes(b"offset:99999\ntree", "binary")


def test_observational_study_directory_holds_no_pickle(weak_study, tmp_path):
    path = weak_study.save(tmp_path / "model")
    files = [f for f in path.rglob("*") if f.is_file()]
    assert files and not any(f.suffix == ".pkl" for f in files)
    assert any(f.read_bytes().startswith(b"offset:") for f in files if f.suffix == ".txt")
    loaded = Study.load(path)
    test = weak_overlap(500, seed=7)
    np.testing.assert_allclose(loaded.predict_uplift(test)["uplift"], weak_study.predict_uplift(test)["uplift"])


def test_weak_overlap_selection_does_not_reward_the_outcome_models_agreeing_with_themselves(weak_study):
    """Where the propensity is extreme the DR score is mostly the outcome models' own μ₁ − μ₀: unweighted,
    the T-learner (exactly μ₁ − μ₀) looks good there. With overlap weights it gets no ensemble weight and is not
    chosen (it is the worst learner here, its PEHE far above the others')."""
    cf = weak_study.result.crossfit
    assert weak_study.result.best_learner != "t"
    assert cf.ensemble_weights[1]["t"] < 0.1


def test_binary_uplift_is_bounded_even_when_a_final_stage_overshoots():
    df = weak_overlap(3000, seed=5)
    data = campaign_data(df, "treatment", "conversion", exclude=["true_uplift"], design="observational")
    cf = cross_fit(data, learners=("t", "dr"), n_folds=2)
    lrn = cf.fold_models[0].learners[("dr", 1)]
    lrn.predict = lambda X, nuis: np.full(len(X), 7.0)  # a tree final stage on huge pseudo-outcomes
    up, _, _ = predict_uplift(cf, data.X[:50], "dr")
    assert up.max() == 1.0 and np.isfinite(up).all()
