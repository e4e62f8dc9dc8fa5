"""Shared fixtures of the service tests: one small fitted two-coupon study saved as a model directory."""

from __future__ import annotations

import pytest

from uplift import Study
from uplift.datasets import simulate_campaign

TRUTH_PREFIXES = ("true_", "propensity")


def customer_columns(df):
    """The columns a caller sends for a customer: the id and the features (no treatment, outcomes or truth)."""
    drop = [c for c in df.columns if c.startswith(TRUTH_PREFIXES)] + ["treatment", "conversion", "revenue"]
    return df.drop(columns=drop)


def fit_saved_study(tmp_path_factory, name: str, seed: int, **design):
    """(model directory, training frame, customers to score) of a small t-learner study (2 folds) on
    ``simulate_campaign(3000, seed=seed, **design)``; the customers are 400 others of the same design."""
    df = simulate_campaign(3000, seed=seed, **design)
    truth = [c for c in df.columns if c.startswith(TRUTH_PREFIXES)]
    study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"])
    study.fit(learners=["t"], n_folds=2, n_boot=20)
    model_dir = tmp_path_factory.mktemp(name) / "model"
    study.save(model_dir)
    customers = customer_columns(simulate_campaign(400, seed=seed + 1, **design))
    customers["customer_id"] += 100_000  # not the training customers
    return model_dir, df, customers


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """(model directory, training frame, customers to score): two coupons, a t-learner, 2 folds."""
    return fit_saved_study(tmp_path_factory, "serving", 21, design="rct", n_arms=2)


@pytest.fixture(scope="module")
def new_customers():
    """1,000 customers from the training campaign's distribution (id and features only)."""
    return customer_columns(simulate_campaign(1000, design="rct", n_arms=2, seed=31))
