"""Early stopping of every LightGBM model: deterministic on a fixed seed, and the trees it kept are recorded."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import truth_columns
from uplift import Study
from uplift.data.campaign import campaign_data
from uplift.fit.crossfit import cross_fit, tree_counts
from uplift.fit.models import EARLY_STOPPING_ROUNDS, LGBMModel


def test_an_early_stopped_model_is_the_same_on_the_same_seed_and_keeps_its_best_round():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6000, 4)).astype(np.float32)
    y = (rng.random(6000) < 1 / (1 + np.exp(-X[:, 0]))).astype(np.float32)
    a, b = (LGBMModel("binary", random_state=5).fit(X, y) for _ in range(2))
    assert a.booster_.model_to_string() == b.booster_.model_to_string()
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    # It stopped early: fewer trees than the cap, and no tree after the best validation round.
    assert 0 < a.n_trees < a.max_rounds and a.early_stopping == EARLY_STOPPING_ROUNDS
    other = LGBMModel("binary", random_state=6).fit(X, y)  # another seed: another inner split, other trees
    assert other.booster_.model_to_string() != a.booster_.model_to_string()


@pytest.fixture(scope="module")
def rct_data(rct_df):
    return campaign_data(rct_df, "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(rct_df), "revenue"])


def test_cross_fitting_twice_on_a_seed_gives_the_same_trees_and_uplift(rct_data):
    runs = [cross_fit(rct_data, learners=("t", "x", "dr", "s"), n_folds=3, random_state=7) for _ in range(2)]
    trees = [tree_counts(cf) for cf in runs]
    assert trees[0] == trees[1]
    assert set(trees[0]) == {"mu0", "mu1", "x tau0", "x tau1", "dr tau", "s s"}
    assert all(len(v) == 3 for v in trees[0].values())
    for name in ("x", "dr", "s", "ensemble"):
        np.testing.assert_array_equal(runs[0].uplift[name], runs[1].uplift[name])


def test_the_study_records_the_trees_and_saves_them(rct_df, tmp_path):
    from uplift.persist import load_result

    study = Study(rct_df, "treatment", "conversion", id="customer_id", exclude=[*truth_columns(rct_df), "revenue"])
    study.fit(learners=["t", "dr"], n_folds=2, n_boot=20)
    trees = study.result.fit_params["trees"]
    assert trees == tree_counts(study.result.crossfit) and len(trees["dr tau"]) == 2
    study.save(tmp_path / "model")
    assert load_result(tmp_path / "model").fit_params["trees"] == trees
