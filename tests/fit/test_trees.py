"""The compiled tree evaluators (uplift.fit.trees) against LightGBM's own predictions."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from uplift.fit.distill import DistilledScorer
from uplift.fit.trees import CompiledTrees, Forest


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


def test_binary_booster_raw_score_is_read_on_request():
    X, y = _mixed_data(5_000, 3)
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(X, (y > 2).astype(float),
                                                                               categorical_feature=[4, 5]), 30)
    Xt = _hostile(_mixed_data(3_000, 4)[0])
    compiled = CompiledTrees.from_booster(booster, raw_score=True)
    assert np.array_equal(compiled.predict(Xt), booster.predict(Xt, raw_score=True))
    forest = Forest.from_trees([compiled])
    assert np.array_equal(forest.predict(Xt)[:, 0], booster.predict(Xt, raw_score=True))
    text = booster.model_to_string()
    with pytest.raises(ValueError, match="sigmoid 1"):  # another sigmoid: the raw score has another scale
        CompiledTrees.from_model_text(text.replace("sigmoid:1", "sigmoid:2"), raw_score=True)


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_a_share_of_threads_gives_the_same_sums(threads, monkeypatch):
    import threading

    from uplift.fit import trees

    X, y = _mixed_data(30_000, 5)
    booster = lgb.train({"objective": "regression", "verbosity": -1}, lgb.Dataset(X, y), 20)
    forest = Forest.from_trees([CompiledTrees.from_booster(booster)])
    seen: set[int] = set()
    kernel = trees._kernel("forest")

    def spy(*args):
        seen.add(threading.get_ident())
        return kernel(*args)

    monkeypatch.setitem(trees._KERNELS, "forest", spy)
    monkeypatch.setattr(trees, "available_cpus", lambda: 2)
    assert np.array_equal(forest.predict(X, threads)[:, 0], booster.predict(X))
    if threads == 1:  # a fit's share of one thread: scored on the calling thread, no pool woken
        assert seen == {threading.get_ident()}
    else:
        assert threading.get_ident() not in seen and 1 <= len(seen) <= 2


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_study_boosters_predict_with_lightgbms_numbers(kind):
    # LGBMModel sums its trees with the compiled forest from COMPILED_PREDICT_ROWS rows: the same predictions,
    # bit for bit, as LightGBM's Booster.predict, below and above that size, on one thread (a fold pool's
    # share) or all, for a model boosted on a base, and for a model the forest does not take (zero-as-missing).
    from uplift.fit.models import COMPILED_PREDICT_ROWS, NUISANCE_PARAMS, LGBMModel
    from uplift.fit.workers import run_concurrently

    X, y = _mixed_data(40_000, 6)
    label = (y > 2).astype(float) if kind == "binary" else y
    base = LGBMModel(kind, categorical=[4, 5], random_state=1).fit(X, label)
    model = LGBMModel(kind, categorical=[4, 5], random_state=2).fit(X, label, base=base,
                                                                    base_score=base.raw_score(X))
    zero = LGBMModel(kind, {**NUISANCE_PARAMS, "zero_as_missing": True}, categorical=[4]).fit(X, label)
    Xt = _hostile(_mixed_data(COMPILED_PREDICT_ROWS + 1_000, 7)[0])
    for m in (base, model, zero):
        raw = m.booster_.predict(Xt, raw_score=True) + (0 if m.base_ is None else
                                                        m.base_.booster_.predict(Xt, raw_score=True))
        want = 1 / (1 + np.exp(-raw)) if kind == "binary" else raw
        if m.base_ is None:  # LightGBM's link is this formula, up to the last bits of exp: its C library's
            # exp and numpy's vectorised one may round differently (seen: 267 of 21,000 rows, at most 2 ulp)
            np.testing.assert_allclose(m.booster_.predict(Xt), want, rtol=8 * np.finfo(float).eps, atol=0)
        got_all = m.predict(Xt)
        got_one = run_concurrently([lambda m=m: m.predict(Xt), lambda m=m: m.predict(Xt[:500])], workers=2)
        assert np.array_equal(got_all, want) and np.array_equal(got_one[0], want)
        assert np.array_equal(got_one[1], want[:500])  # below the size: LightGBM itself
        assert (m._compiled[1] is None) == (m is zero)


def test_a_large_forest_is_built_per_prediction_not_kept(monkeypatch):
    from uplift.fit import models
    from uplift.fit.models import COMPILED_PREDICT_ROWS, LGBMModel

    X, y = _mixed_data(COMPILED_PREDICT_ROWS + 5_000, 8)
    m = LGBMModel("regression", categorical=[4, 5]).fit(X, y)
    want = m.booster_.predict(X, raw_score=True)
    monkeypatch.setattr(models, "CACHED_FOREST_BYTES", 0)
    assert np.array_equal(m.predict(X), want) and m._compiled is None  # scored by a forest, then let go
    monkeypatch.setattr(models, "CACHED_FOREST_BYTES", 2**30)
    assert np.array_equal(m.predict(X), want) and m._compiled[1] is not None
