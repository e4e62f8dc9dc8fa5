"""Shared fixtures: simulated campaigns with known per-row uplift."""

from __future__ import annotations

import os

# pytest runs in two worker processes (-n 2) on two cores: one OpenMP thread each, or LightGBM's
# spinning threads oversubscribe the CPU and everything slows down several-fold.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest

from uplift.datasets import simulate_campaign
from uplift.fit.nuisance import cross_fit_propensity


def truth_columns(df: pd.DataFrame) -> list[str]:
    """Ground-truth columns of the simulator, never to be used as features."""
    return [c for c in df.columns if c.startswith("true_") or c.startswith("propensity")]


@pytest.fixture(scope="session")
def rct_df() -> pd.DataFrame:
    return simulate_campaign(8000, design="rct", seed=11)


@pytest.fixture(scope="session")
def obs_df() -> pd.DataFrame:
    return simulate_campaign(8000, design="observational", seed=12)


@pytest.fixture(scope="session")
def multi_df() -> pd.DataFrame:
    return simulate_campaign(9000, design="rct", n_arms=2, seed=13)


#: What drives each coupon's true uplift in tests/shop.py (and nothing else does): recent buyers respond to 10% off,
#: new sign-ups to 20% off, the north and the young to free shipping.
SHOP_DRIVERS = {"pct10": ("days_since_last_order_date",), "pct20": ("days_since_signup_date",),
                "free_shipping": ("region", "age")}


@pytest.fixture(scope="session")
def three_coupons():
    """The realistic three-coupon shop export (control 40%, each coupon 20%) fitted with the DR-learner:
    ``(study, truth)``. 40k rows: enough that each coupon's own drivers stand out in the fitted model."""
    from tests.shop import shop_campaign
    from uplift import Study
    export, truth = shop_campaign(40_000, seed=3)
    study = Study(export, "coupon", "converted", id="customer_id", exclude=["revenue"])
    return study.fit(learners=["dr"], n_folds=3, n_boot=20), truth


def confounded(n: int, seed: int, effect: float = 1.0):
    """Customers whose treatment depends on x1, x2 and region; returns features, t, true propensity, y."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], n)
    e = 1.0 / (1.0 + np.exp(-(-0.3 + 1.0 * x1 - 0.7 * x2 + 0.4 * (region == "north"))))
    t = (rng.random(n) < e).astype(int)
    y = effect * t + x1 + 0.5 * x2 + rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "region": region}), t, e, y


@pytest.fixture(scope="module")
def obs():
    """A confounded table with its true propensity, outcome and the cross-fitted propensity."""
    X, t, e, y = confounded(4000, seed=1)
    return X, t, e, y, cross_fit_propensity(X, t, random_state=0)


def weak_overlap_frame(n: int, seed: int) -> pd.DataFrame:
    """A binary-outcome campaign whose propensities run from 0.001 to 0.999; uplift rises with the confounder."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    e = np.clip(1 / (1 + np.exp(-(3.0 * x[:, 0] - x[:, 1]))), 0.001, 0.999)
    p0 = 1 / (1 + np.exp(-(-2.5 + 0.8 * x[:, 0] + 0.6 * x[:, 2])))
    p1 = np.clip(p0 + 0.03 + 0.03 * np.tanh(x[:, 0]), 0, 1)
    t = (rng.random(n) < e).astype(int)
    y = (rng.random(n) < np.where(t == 1, p1, p0)).astype(int)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "treatment": t, "conversion": y,
                         "true_uplift": p1 - p0, "propensity": e})
