"""Time per phase of a fit, the fold rule by study size, and the determinism of early-stopped boosters."""

from __future__ import annotations

import numpy as np
import pytest

import uplift.fit.crossfit as crossfit
from tests.conftest import truth_columns
from uplift import Study
from uplift.data.campaign import campaign_data
from uplift.fit.models import LGBMModel, ModelFactory
from uplift.fit.progress import PhaseTimes, phase_records


def test_phase_times_add_up_in_the_order_phases_first_ran():
    times = PhaseTimes()
    times.add("learner x", 1.0)
    with times.phase("ensemble"):
        pass
    times.add("learner x", 2.0)
    assert list(times.seconds) == ["learner x", "ensemble"]
    assert times.seconds["learner x"] == 3.0 and times.seconds["ensemble"] >= 0.0
    with pytest.raises(RuntimeError), times.phase("design checks"):
        raise RuntimeError("a failed phase still took its time")
    assert "design checks" in times.seconds
    shares = [r["share"] for r in phase_records(times)]
    assert abs(sum(shares) - 1.0) < 1e-3


def test_cross_fit_times_each_nuisance_learner_and_the_ensemble(multi_df):
    d = campaign_data(multi_df.head(3000), "treatment", "conversion", id="customer_id",
                      exclude=truth_columns(multi_df) + ["revenue"])
    times = PhaseTimes()
    crossfit.cross_fit(d, learners=("t", "x", "dr"), n_folds=2, times=times)
    n_arms = len(d.arms)
    expected = [f"nuisance mu{a}" for a in range(n_arms)] + ["learner t", "learner x", "learner dr",
                                                             "ensemble (stacking)"]
    assert set(expected) <= set(times.seconds)
    # Nuisances come first, then the learners in the order given: the table tells the story of the fit.
    order = list(times.seconds)
    assert order.index("nuisance mu0") < order.index("learner t") < order.index("learner x") < order.index(
        "learner dr") < order.index("ensemble (stacking)")
    assert "nuisance e1" not in times.seconds  # a randomised design's propensity is the arm share: no model


def test_study_records_validation_fit_and_save_and_loads_them_back(rct_df, tmp_path):
    study = Study(rct_df.head(3000), treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=truth_columns(rct_df) + ["revenue"])
    study.fit(["t", "dr"], n_folds=2, n_boot=20)
    timings = study.result.timings
    for phase in ("validate", "design checks", "nuisance mu0", "learner dr", "leaderboard (bootstrap CIs)",
                  "calibration", "drift profile", "distillation (fast scorer)"):
        assert phase in timings, phase
    study.save(tmp_path / "m")
    assert "save" in study.result.timings
    loaded = Study.load(tmp_path / "m").result.timings
    assert list(loaded) == list(study.result.timings)  # the saved order, not JSON's sorted keys
    assert loaded["learner dr"] == pytest.approx(timings["learner dr"], abs=1e-3)


def test_fold_rule_by_size_is_what_the_study_uses_and_records(rct_df, monkeypatch):
    def fit(frame):
        s = Study(frame, treatment="treatment", outcome="conversion", exclude=truth_columns(rct_df) + ["revenue",
                                                                                                      "customer_id"])
        return s.fit(["t"], n_boot=20).result

    small = fit(rct_df.head(2000))
    assert small.fit_params["n_folds"] == 5 and len(small.crossfit.fold_models) == 5
    monkeypatch.setattr(crossfit, "LARGE_STUDY_ROWS", 2000)  # the 500,000-row rule, on small data
    large = fit(rct_df.head(2000))
    assert large.fit_params["n_folds"] == crossfit.LARGE_STUDY_FOLDS == len(large.crossfit.fold_models)
    explicit = Study(rct_df.head(2000), treatment="treatment", outcome="conversion",
                     exclude=truth_columns(rct_df) + ["revenue", "customer_id"]).fit(["t"], n_folds=4, n_boot=20)
    assert explicit.result.fit_params["n_folds"] == 4  # an explicit choice always wins


def test_early_stopping_on_a_fixed_seed_is_deterministic_and_stops_early():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 4)).astype(np.float32)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-X[:, 0]))).astype(np.float32)
    factory = ModelFactory(random_state=7)
    a, b = factory.outcome("binary", seed=3).fit(X, y), factory.outcome("binary", seed=3).fit(X, y)
    trees = a.booster_.num_trees()
    assert trees == b.booster_.num_trees() and trees < factory.nuisance_rounds  # stopped on its inner split
    assert np.array_equal(a.predict(X), b.predict(X))
    other = LGBMModel("binary", random_state=8).fit(X, y)  # another seed: another inner split
    assert not np.array_equal(other.predict(X), a.predict(X))
