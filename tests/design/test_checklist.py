"""DesignReview: the balance check computes on the propensity function it is handed, and acts on its verdict."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import truth_columns
from uplift.data.campaign import campaign_data
from uplift.datasets import simulate_campaign
from uplift.design.checklist import BALANCE_FOLDS, DesignReview


def _data(n_arms: int = 1):
    df = simulate_campaign(1500, design="rct", n_arms=n_arms, seed=21)
    return campaign_data(df, "treatment", "conversion", id="customer_id", exclude=[*truth_columns(df), "revenue"],
                         design="rct")


class Spy:
    """A propensity that records its calls and returns noise (``reveal``: the arm itself, plus noise)."""

    def __init__(self, reveal: bool) -> None:
        self.reveal, self.calls = reveal, []

    def __call__(self, features, t, n_folds, seed):
        self.calls.append((features, t.copy(), n_folds, seed))
        noise = np.random.default_rng(seed).uniform(0.3, 0.7, len(t))
        return np.clip(noise + 0.25 * t if self.reveal else noise, 0, 1)


def test_balance_check_uses_the_injected_propensity_on_each_comparisons_rows():
    data = _data(n_arms=2)
    spy = Spy(reveal=False)
    review = DesignReview(data, declared="rct", pre_treatment=[], random_state=5, propensity=spy)
    review.randomisation(None, allow_srm=True)
    assert len(spy.calls) == 2  # one comparison per treated arm
    for a, (features, t, n_folds, seed) in enumerate(spy.calls, start=1):
        pair = (data.treatment == 0) | (data.treatment == a)
        assert list(features.columns) == list(data.schema.names) and len(features) == pair.sum()
        np.testing.assert_array_equal(t, (data.treatment[pair] == a).astype(int))
        assert (n_folds, seed) == (BALANCE_FOLDS, 5)
        check = review.report["balance_auc"][data.arms[a]]
        assert check["passed"] and check["rows_checked"] == pair.sum()
    assert data.design == "rct"


def test_a_propensity_that_predicts_the_arm_switches_the_study_to_observational():
    data = _data()
    review = DesignReview(data, declared="rct", pre_treatment=[], random_state=0, propensity=Spy(reveal=True))
    review.randomisation(None, allow_srm=True)
    check = review.report["balance_auc"][data.arms[1]]
    assert not check["passed"] and check["lower"] > 0.55
    assert data.design == "observational"
    assert any("predictable from the features" in note for note in review.notes)


def test_observational_declaration_skips_the_balance_check():
    data = _data()
    data.design = "observational"
    spy = Spy(reveal=False)
    DesignReview(data, declared="observational", pre_treatment=[], random_state=0, propensity=spy).randomisation(
        None, allow_srm=True)
    assert spy.calls == []


def test_the_propensity_is_a_required_argument():
    with pytest.raises(TypeError, match="propensity"):
        DesignReview(_data(), declared="rct", pre_treatment=[], random_state=0)
