"""Per-customer overlap in predictions: the propensity and the ``overlap`` flag, and targeting that skips them."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import weak_overlap_frame
from uplift import Study
from uplift.targeting.lists import targeting_list


@pytest.fixture(scope="module")
def weak():
    df = weak_overlap_frame(6000, seed=3)
    study = Study(df, "treatment", "conversion", exclude=["true_uplift", "propensity"],
                  design="observational").fit(learners=["t"], n_folds=3, n_boot=20)
    return df, study.result


def test_predictions_carry_the_propensity_and_an_overlap_flag(weak):
    df, result = weak
    pred = result.predict_uplift(df)
    lo, hi = result.overlap_bounds()["1"]
    assert 0.02 < lo < 0.3 and hi == pytest.approx(1 - lo)
    e = pred["propensity"].to_numpy()
    assert np.corrcoef(e, df["propensity"])[0, 1] > 0.9
    assert pred["overlap"].tolist() == ((e >= lo) & (e <= hi)).tolist()
    # Customers the campaign almost always (or never) treated are the ones flagged as extrapolations.
    flagged = ~pred["overlap"].to_numpy()
    true_e = df["propensity"].to_numpy()
    assert 0.1 < flagged.mean() < 0.7
    assert np.minimum(true_e, 1 - true_e)[flagged].mean() < 0.1 < np.minimum(true_e, 1 - true_e)[~flagged].mean()
    # The fast scorer's table carries the same flag.
    assert result.predict_uplift(df, learner="fast")["overlap"].tolist() == pred["overlap"].tolist()
    # The training rows' flag comes from their out-of-fold propensities and the same bounds.
    inside = result.training_overlap()
    assert inside.tolist() == ((result.crossfit.e[:, 1] >= lo) & (result.crossfit.e[:, 1] <= hi)).tolist()


def test_randomised_predictions_have_no_overlap_columns(rct_df):
    from tests.conftest import truth_columns

    study = Study(rct_df, "treatment", "conversion", id="customer_id", exclude=[*truth_columns(rct_df), "revenue"],
                  design="rct").fit(learners=["t"], n_folds=3, n_boot=20)
    pred = study.result.predict_uplift(rct_df.head(50))
    assert "overlap" not in pred and "propensity" not in pred
    assert study.result.overlap_bounds() == {} and study.result.training_overlap() is None


def test_targeting_can_skip_extrapolated_customers(weak):
    df, result = weak
    everyone = targeting_list(result, df, cost=0.01, value=1.0)
    assert "overlap" in everyone.list and not everyone.list["overlap"].all()  # some picks are extrapolations
    skipped = targeting_list(result, df, cost=0.01, value=1.0, skip_extrapolated=True)
    assert skipped.list["overlap"].all() and len(skipped.list) > 0
    assert len(skipped.list) < len(everyone.list)
