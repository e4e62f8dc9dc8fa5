"""A FitResult survives a save and a load whole, the saved bytes are deterministic, and a changed file is refused."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import truth_columns
from uplift import Study, simulate_campaign
from uplift.errors import UpliftInputError
from uplift.fit.result import FitResult
from uplift.persist import MODEL_FORMAT_VERSION, load_result, read_model_dir, save_result


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, FitResult]:
    df = simulate_campaign(3000, n_arms=2, seed=21)
    study = Study(df, "treatment", ["conversion", "revenue"], id="customer_id", exclude=truth_columns(df))
    return df, study.fit(learners=["t", "dr"], n_folds=3, n_boot=20).result


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    _, result = fitted
    return save_result(result, tmp_path_factory.mktemp("m") / "model")


def test_loaded_result_equals_the_fitted_one(fitted, saved):
    df, result = fitted
    loaded = load_result(saved)
    for f in ("arms", "design", "notes", "best_learner", "fit_params", "training"):
        assert getattr(loaded, f) == getattr(result, f), f
    assert dict(loaded.roles) == json.loads(json.dumps(dict(result.roles)))
    for f in ("leaderboard", "ate", "calibration"):
        pd.testing.assert_frame_equal(getattr(loaded, f), getattr(result, f), check_dtype=False, rtol=1e-12)
    a, b = result.crossfit, loaded.crossfit
    for name in ("mu", "e", "dr", "policy_dr", "folds"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name, arr in a.uplift.items():
        np.testing.assert_array_equal(arr, b.uplift[name])
    assert a.ensemble_weights == b.ensemble_weights
    # The fold models and the fast scorer score new customers exactly as before the save.
    for learner in (None, "t", "ensemble", "fast"):
        pd.testing.assert_frame_equal(loaded.predict_uplift(df.head(300), learner=learner),
                                      result.predict_uplift(df.head(300), learner=learner))
    assert loaded.manifest["format_version"] == MODEL_FORMAT_VERSION
    assert loaded.manifest["training_data_sha256"] == result.training.data_sha256


def test_a_second_save_writes_the_same_bytes(fitted, saved, tmp_path):
    _, result = fitted
    again = save_result(load_result(saved), tmp_path / "again")
    _, first = read_model_dir(saved)
    _, second = read_model_dir(again)
    assert first.keys() == second.keys()
    assert all(bytes(first[k]) == bytes(second[k]) for k in first)


def test_a_changed_file_is_refused(saved, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    model = next(p for p in sorted(copy.rglob("*.txt")) if "fold0" in str(p))
    model.write_bytes(model.read_bytes().replace(b"tree", b"TREE", 1))
    with pytest.raises(UpliftInputError, match="sha256"):
        load_result(copy)


def test_a_result_is_frozen(fitted):
    _, result = fitted
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.best_learner = "t"


def test_treatment_and_outcome_vectors_travel_with_the_model_and_older_dirs_still_load(fitted, saved, tmp_path):
    df, result = fitted
    loaded = load_result(saved)
    np.testing.assert_array_equal(loaded.crossfit.treatment, result.crossfit.treatment)
    np.testing.assert_array_equal(loaded.crossfit.y, df["conversion"].to_numpy())
    _, files = read_model_dir(saved)
    assert {"oof/treatment.npy", "oof/y.npy"} <= set(files)
    assert not any(name.startswith("oof/") and "customer_id" in name for name in files)  # no ids, no features
    # A model directory written before the vectors were kept: no such files, and it loads with None.
    old = dataclasses.replace(result, crossfit=dataclasses.replace(result.crossfit, treatment=None, y=None))
    before = load_result(save_result(old, tmp_path / "old"))
    assert before.crossfit.treatment is None and before.crossfit.y is None


@pytest.mark.parametrize("learner", ["fast", None, "dr", "ensemble"])
def test_a_scoring_load_scores_as_the_full_one_without_out_of_fold_arrays(fitted, saved, learner):
    df, _ = fitted
    full = load_result(saved)
    scoring = load_result(saved, for_scoring=True, learner=learner)
    pd.testing.assert_frame_equal(scoring.predict_uplift(df.head(300), learner=learner),
                                  full.predict_uplift(df.head(300), learner=learner))
    assert all(v is None for v in scoring.crossfit.uplift.values()) and scoring.crossfit.dr is None
    models = {key for fm in scoring.crossfit.fold_models for key in fm.learners}
    if learner == "fast":
        assert not models and not scoring.crossfit.fold_models[0].mu  # the scorer needs no fold model
    elif learner == "dr":
        assert {name for name, _ in models} <= {"t", "dr"}
    assert scoring.manifest["digest"] == full.manifest["digest"]
    pd.testing.assert_frame_equal(scoring.leaderboard, full.leaderboard)


def test_a_scoring_load_still_refuses_a_changed_file_it_does_not_parse(saved, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    oof = copy / "oof" / "uplift_t.npy"
    oof.write_bytes(oof.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(UpliftInputError, match="sha256"):  # every hash is checked, as docs/security.md says
        load_result(copy, for_scoring=True, learner="fast")
