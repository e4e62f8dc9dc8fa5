"""The fast scorer: compiled trees equal LightGBM's own predictions; the distilled model reproduces the study."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from uplift import Study, simulate_campaign
from uplift.cli import app
from uplift.errors import UpliftInputError
from uplift.fit.distill import DistilledScorer


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
