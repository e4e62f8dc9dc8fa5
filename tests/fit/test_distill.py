"""The fast scorer: compiled trees equal LightGBM's own predictions; the distilled model reproduces the study."""

from __future__ import annotations

import dataclasses

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from uplift import Study, simulate_campaign
from uplift.cli import app
from uplift.errors import UpliftInputError
from uplift.fit.distill import CompiledTrees, DistilledScorer, Forest


def _mixed_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 4] = rng.integers(0, 12, n)
    X[:, 5] = rng.integers(0, 40, n)
    X[rng.random(n) < 0.1, 0] = np.nan
    X[rng.random(n) < 0.1, 4] = np.nan
    X[rng.random(n) < 0.1, 1] = 0.0
    y = np.nan_to_num(X[:, 0]) * 2 + np.nan_to_num(X[:, 4]) % 3 + X[:, 5] % 5 + (X[:, 1] == 0) + rng.normal(size=n)
    return X, y


def _hostile(X: np.ndarray) -> np.ndarray:
    """Rows LightGBM must route by its special rules: unseen, negative and fractional categories, NaN, zeros."""
    X = X.copy()
    X[:50, 4] = -1
    X[50:100, 5] = 77
    X[100:150, 4] = 3.7
    X[150:200, 2] = np.nan
    X[200:250, 3] = 0.0
    X[250:300, 5] = np.nan
    X[300:350, 1] = -0.0
    return X


@pytest.mark.parametrize("params", [
    {},
    {"zero_as_missing": True},
    {"use_missing": False},
    {"max_cat_to_onehot": 64},
    {"num_leaves": 7, "min_data_in_leaf": 1},
])
def test_compiled_trees_equal_lightgbm(params):
    X, y = _mixed_data(20_000, 1)
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_leaves": 31, **params},
                        lgb.Dataset(X, y, categorical_feature=[4, 5]), 60)
    Xt = _hostile(_mixed_data(5_000, 2)[0])
    compiled = CompiledTrees.from_booster(booster)
    np.testing.assert_allclose(compiled.predict(Xt), booster.predict(Xt), rtol=0, atol=1e-12)
    np.testing.assert_allclose(compiled.predict(Xt.astype(np.float64)), booster.predict(Xt), rtol=0, atol=1e-12)
    few = Xt[:400]  # the hostile rows, at most one block: the kernel compiled without threads
    np.testing.assert_allclose(compiled.predict(few), booster.predict(few), rtol=0, atol=1e-12)
    assert compiled.n_features == X.shape[1] and len(compiled.roots) == booster.num_trees()


def test_compiled_trees_single_leaf_and_empty():
    X = np.zeros((100, 2), np.float32)
    booster = lgb.train({"objective": "regression", "verbosity": -1}, lgb.Dataset(X, np.full(100, 3.0)), 5)
    compiled = CompiledTrees.from_booster(booster)
    np.testing.assert_allclose(compiled.predict(X[:10]), booster.predict(X[:10]), atol=1e-12)
    assert compiled.predict(np.empty((0, 2), np.float32)).shape == (0,)
    forest = Forest.from_trees([compiled, compiled])  # no split at all: every row ends in each tree's one leaf
    assert forest is not None and len(forest.used) == 0
    np.testing.assert_array_equal(forest.predict(X[:10]), np.column_stack([booster.predict(X[:10])] * 2))
    assert forest.predict(np.empty((0, 2), np.float32)).shape == (0, 2)
    with pytest.raises(ValueError, match="feature columns"):
        compiled.predict(np.zeros((3, 1), np.float32))


def test_binary_booster_is_refused():
    X, y = _mixed_data(2_000, 3)
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(X, (y > 2).astype(float)), 5)
    with pytest.raises(ValueError, match="regression"):
        CompiledTrees.from_booster(booster)


def test_distilled_scorer_learns_a_known_function_and_reports_fidelity():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 5)).astype(np.float32)
    teacher = np.column_stack([0.03 * np.tanh(X[:, 0]) + 0.01 * (X[:, 1] > 0), 0.02 * X[:, 2]])
    scorer = DistilledScorer(random_state=1).fit(X, teacher)
    assert len(scorer.fidelity_) == 2
    for fid in scorer.fidelity_:
        assert fid["r2"] > 0.97 and fid["top20_overlap"] > 0.85 and fid["on"] == "held-out sample"
        assert 0 < fid["trees"] <= scorer.max_trees
    # A constant teacher has nothing to learn: fidelity is still defined.
    flat = DistilledScorer().fit(X[:500], np.full((500, 1), 0.01))
    np.testing.assert_allclose(flat.predict(X[:5]), 0.01, atol=1e-9)
    # A bad student must show up as a bad fidelity, not be hidden: pure noise cannot be learnt.
    noise = DistilledScorer().fit(X, rng.normal(size=(len(X), 1)))
    assert noise.fidelity_[0]["r2"] < 0.2


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    df = simulate_campaign(12_000, seed=5)
    truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"]).fit(
        learners=["t", "x", "dr"], n_folds=3, n_boot=20)
    path = tmp_path_factory.mktemp("m") / "model"
    study.save(path)
    return df, study, path


def test_study_fast_scorer_reproduces_the_chosen_model(fitted):
    df, study, path = fitted
    full = study.predict_uplift(df)
    fast = study.predict_uplift(df, learner="fast")
    assert list(fast.columns) == list(full.columns)
    assert (fast["customer_id"] == full["customer_id"]).all()
    assert np.corrcoef(full["uplift"], fast["uplift"])[0, 1] > 0.95
    fid = study.fast_fidelity
    assert fid.loc[0, "r2"] > 0.85 and fid.loc[0, "n"] > 1000
    loaded = Study.load(path)
    pd.testing.assert_frame_equal(loaded.predict_uplift(df, learner="fast"), fast)
    pd.testing.assert_frame_equal(loaded.fast_fidelity, fid)
    other = "t" if study.best_learner_ != "t" else "x"
    res = CliRunner().invoke(app, ["predict", str(path), "x.parquet", "--out", "y.csv", "--fast", "--learner", other])
    assert res.exit_code == 2 and "drop --fast" in res.output
    without = dataclasses.replace(study.result, scorer=None)  # a model saved without a fast scorer
    with pytest.raises(UpliftInputError, match="no fast scorer"):
        without.predict_uplift(df, learner="fast")


def test_cli_predict_fast(fitted, tmp_path):
    df, study, path = fitted
    src = tmp_path / "customers.parquet"
    df.to_parquet(src)
    out = tmp_path / "scores.parquet"
    res = CliRunner().invoke(app, ["predict", str(path), str(src), "--out", str(out), "--fast"])
    assert res.exit_code == 0, res.output
    assert "fast scorer vs full model" in res.output and "R²" in res.output
    got = pd.read_parquet(out)
    pd.testing.assert_frame_equal(got, study.predict_uplift(df, learner="fast"), check_dtype=False)


def test_multi_arm_fast_scorer():
    df = simulate_campaign(9_000, seed=2, n_arms=3)
    truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"]).fit(
        learners=["t"], n_folds=3, n_boot=10)
    fast = study.predict_uplift(df.head(2000), learner="fast")
    full = study.predict_uplift(df.head(2000))
    assert list(fast.columns) == list(full.columns)
    arms = [c for c in fast.columns if c.startswith("uplift_")]
    assert len(arms) == len(study.arms) - 1 == len(study.fast_fidelity) >= 2
    for c in arms:
        assert np.corrcoef(fast[c], full[c])[0, 1] > 0.9


def test_target_with_the_fast_scorer(fitted, tmp_path):
    df, study, path = fitted
    fast = study.target(df, cost=0.5, value=40.0, budget=300.0, learner="fast")
    full = study.target(df, cost=0.5, value=40.0, budget=300.0)
    ranked = study.predict_uplift(df, learner="fast").sort_values("uplift", ascending=False, kind="stable")
    # The list follows the fast scorer's ranking; its honest value is the full model's rule's (same numbers).
    assert fast.list["customer_id"].head(20).tolist() == ranked["customer_id"].head(20).tolist()
    assert fast.summary["estimated"] == full.summary["estimated"]
    overlap = len(set(fast.list["customer_id"]) & set(full.list["customer_id"])) / len(full.list)
    assert overlap > 0.8
    src, out = tmp_path / "c.parquet", tmp_path / "list.csv"
    df.to_parquet(src)
    res = CliRunner().invoke(app, ["target", str(path), str(src), "--out", str(out), "--cost", "0.5",
                                   "--value", "40", "--budget", "300", "--fast"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out)["customer_id"].tolist() == fast.list["customer_id"].tolist()


@pytest.mark.parametrize("n_rows", [1, 3, 4, 4097, 20_003])
def test_numeric_kernel_equals_lightgbm(n_rows):
    # Numerical splits only (the four-rows-at-a-time kernel): features with NaN in training (missing type NaN,
    # both default directions occur) and without (missing type None: NaN is treated as 0.0).
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30_000, 5)).astype(np.float32)
    X[rng.random(30_000) < 0.2, 0] = np.nan
    X[rng.random(30_000) < 0.2, 1] = np.nan
    y = np.where(np.isnan(X[:, 0]), 2.0, X[:, 0]) - np.where(np.isnan(X[:, 1]), -1.0, X[:, 1]) + X[:, 2] ** 2
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_leaves": 31},
                        lgb.Dataset(X, y + rng.normal(size=30_000)), 40)
    compiled = CompiledTrees.from_booster(booster)
    assert not (compiled.flags & 1).any()
    assert {(f >> 2) & 3 for f in compiled.flags.tolist()} == {0, 2}
    assert {(f >> 1) & 1 for f in compiled.flags.tolist() if (f >> 2) & 3 == 2} == {0, 1}
    Xt = rng.normal(size=(n_rows, 5)).astype(np.float32)
    Xt[rng.random(n_rows) < 0.3, :] = np.nan  # NaN in every feature, incl. those that had none in training
    Xt[rng.random(n_rows) < 0.2, 3] = 0.0
    np.testing.assert_allclose(compiled.predict(Xt), booster.predict(Xt), rtol=0, atol=1e-12)


@pytest.mark.parametrize("params", [{}, {"use_missing": False}, {"max_cat_to_onehot": 64},
                                    {"num_leaves": 7, "min_data_in_leaf": 1}, {"num_leaves": 64}])
@pytest.mark.parametrize("n_rows", [1, 300, 5_000])
@pytest.mark.parametrize("levels", [20, 40])
def test_forest_equals_lightgbm(params, n_rows, levels):
    # The bit-vector forest of several boosters (the arms) scores each exactly as LightGBM: NaN, zeros, -0.0,
    # unseen (77), negative (-1) and fractional (3.7) categories, numeric values on a threshold; categorical
    # features of 20 and of 40 levels; trees of up to 64 leaves (one bit each).
    X, y = _mixed_data(20_000, 1)
    X[:, 5] = np.floor(X[:, 5] * levels / 40)
    boosters = [lgb.train({"objective": "regression", "verbosity": -1, "num_leaves": 31, "seed": s, **params},
                          lgb.Dataset(X, y * (s + 1), categorical_feature=[4, 5]), 40) for s in range(2)]
    trees = [CompiledTrees.from_booster(b) for b in boosters]
    forest = Forest.from_trees(trees)
    assert forest is not None
    Xt = _hostile(_mixed_data(max(n_rows, 400), 2)[0])[:n_rows]
    Xt[-1:, 0] = trees[0].threshold[0] if not trees[0].flags[0] & 1 else Xt[-1:, 0]
    want = np.column_stack([b.predict(Xt) for b in boosters])
    assert np.array_equal(forest.predict(Xt), want)
    assert np.array_equal(forest.predict(Xt.astype(np.float64)), want)


def test_forest_declines_what_it_cannot_bin():
    X, y = _mixed_data(5_000, 1)
    wide = lgb.train({"objective": "regression", "verbosity": -1, "num_leaves": 80, "min_data_in_leaf": 2},
                     lgb.Dataset(X, y, categorical_feature=[4, 5]), 5)
    zero = lgb.train({"objective": "regression", "verbosity": -1, "zero_as_missing": True},
                     lgb.Dataset(X, y, categorical_feature=[4]), 20)
    assert max(np.diff(np.r_[CompiledTrees.from_booster(wide).roots, 0])[:-1]) >= 64  # trees past 64 leaves
    for booster in (wide, zero):  # more leaves than bits; zero-as-missing
        assert Forest.from_trees([CompiledTrees.from_booster(booster)]) is None
    # and the scorer still scores them, tree by tree
    scorer = DistilledScorer(max_trees=5).fit(X, y.reshape(-1, 1))
    scorer._compiled, scorer._forest = [CompiledTrees.from_booster(wide)], None
    assert np.array_equal(scorer.predict(X)[:, 0], CompiledTrees.from_booster(wide).predict(X))


def test_model_text_reader_refuses_what_it_cannot_score():
    X, y = _mixed_data(2_000, 3)
    text = lgb.train({"objective": "regression", "verbosity": -1}, lgb.Dataset(X, y), 3).model_to_string()
    with pytest.raises(ValueError, match="regression"):
        CompiledTrees.from_model_text(text.replace("objective=regression", "objective=binary sigmoid:1"))
    with pytest.raises(ValueError, match="num_leaves"):
        CompiledTrees.from_model_text(text.replace("num_leaves=31", "num_leaves=30", 1))
    with pytest.raises(KeyError):
        CompiledTrees.from_model_text(text.replace("left_child=", "left=", 1))


def test_scoring_a_randomised_study_fast_imports_no_lightgbm(fitted, tmp_path):
    # The fast scorer's trees are read from the model text: a scoring-only load needs neither LightGBM nor
    # scikit-learn (~1.9 s of every `uplift predict --fast`)
    import subprocess
    import sys

    df, _, path = fitted
    df.head(50).to_parquet(tmp_path / "c.parquet")
    code = ("import sys; from uplift.persist import load_result; from uplift.scoring import score_file; "
            f"r = load_result({str(path)!r}, for_scoring=True, learner='fast'); "
            f"score_file(r, {str(tmp_path / 'c.parquet')!r}, {str(tmp_path / 's.parquet')!r}, learner='fast'); "
            "print(sorted(m for m in ('lightgbm', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == 50
