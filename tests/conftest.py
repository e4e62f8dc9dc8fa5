"""Shared fixtures: simulated campaigns with known per-row uplift."""

from __future__ import annotations

import os

# pytest runs in two worker processes (-n 2) on two cores: one OpenMP thread each, or LightGBM's
# spinning threads oversubscribe the CPU and everything slows down several-fold.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
import pytest

from uplift.datasets import simulate_campaign


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
