"""A realistic shop campaign export with a known effect: the file a new user's first study is run on.

Unlike :func:`uplift.simulate_campaign` (clean numeric features), it has what real CRM exports have: string
customer ids with leading zeros, two date columns (ISO text), categoricals with missing values, 12% missing age,
an income column with the missing-value code ``-999``, revenue with ~86% zeros, three coupons and a control
group larger than each coupon arm. The true per-customer conversion uplift of each coupon is known; the revenue
uplift is that times the mean basket (``BASKET``), so a targeting list's true profit can be computed.

Used by the data-boundary tests (tests/data/test_boundary.py) and benchmarks/data_boundary.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The campaign started on this day: every date in the export is before it.
CAMPAIGN_START = pd.Timestamp("2024-07-01")
COUPONS = ("pct10", "pct20", "free_shipping")
#: Arm shares: the control group is the largest.
ARM_SHARES = (0.4, 0.2, 0.2, 0.2)
#: Mean revenue of a converting customer.
BASKET = 60.0
#: Cost of each coupon, in revenue units.
COSTS = {"pct10": 1.0, "pct20": 2.5, "free_shipping": 1.5}


def shop_campaign(n: int = 60_000, seed: int = 0, *, first_id: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The export and its truth: ``(export, truth)`` with ``truth`` holding ``customer_id`` and
    ``true_uplift_<coupon>`` (conversion probability uplift of each coupon for that customer).

    Examples
    --------
    >>> export, truth = shop_campaign(2000, seed=1)
    >>> bool(export["customer_id"].str.len().eq(6).all()), round(float((export["revenue"] == 0).mean()), 2) > 0.8
    (True, True)
    """
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:06d}" for i in rng.permutation(np.arange(first_id, first_id + n))])
    signup_days = rng.integers(1, 5 * 365, n)  # five years of sign-ups: ~1,825 distinct days
    last_order_days = np.minimum(rng.gamma(1.2, 120.0, n).astype(int) + 1, signup_days)
    last_order_days = np.minimum(last_order_days, 624)
    age = np.clip(rng.normal(42, 13, n), 18, 90).round()
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.3, 0.3, 0.2, 0.2])
    channel = rng.choice(["web", "app", "store"], n, p=[0.5, 0.35, 0.15])
    device = rng.choice(["ios", "android", "desktop"], n)
    orders = rng.poisson(1 + 4 * np.exp(-last_order_days / 200.0))
    income = np.round(rng.lognormal(10.6, 0.4, n), -2)

    recent = last_order_days <= 90
    new = signup_days <= 365
    true = {
        "pct10": np.where(recent, 0.05, 0.004),
        "pct20": np.where(new, 0.07, 0.008) + 0.01 * recent,
        "free_shipping": np.where((region == "north") | (age < 30), 0.06, -0.002),
    }
    arm = rng.choice(4, n, p=ARM_SHARES)
    score = -2.75 + 0.25 * np.minimum(orders, 6) - 0.0015 * last_order_days + 0.2 * (channel == "app")
    base = 1 / (1 + np.exp(-score))
    lift = np.zeros(n)
    for k, coupon in enumerate(COUPONS, start=1):
        lift[arm == k] = true[coupon][arm == k]
    converted = (rng.random(n) < np.clip(base + lift, 0, 1)).astype(int)
    revenue = np.where(converted == 1, np.round(rng.gamma(4.0, BASKET / 4.0, n), 2), 0.0)

    # What the export looks like: text dates, missing values, a sentinel, coupon names.
    age_out = age.copy()
    age_out[rng.random(n) < 0.12] = np.nan
    income[rng.random(n) < 0.02] = -999
    region_out = region.astype(object)
    region_out[rng.random(n) < 0.03] = None
    channel_out = channel.astype(object)
    channel_out[rng.random(n) < 0.05] = None
    export = pd.DataFrame({
        "customer_id": ids,
        "signup_date": (CAMPAIGN_START - pd.to_timedelta(signup_days, unit="D")).strftime("%Y-%m-%d"),
        "last_order_date": (CAMPAIGN_START - pd.to_timedelta(last_order_days, unit="D")).strftime("%Y-%m-%d"),
        "age": age_out, "region": region_out, "channel": channel_out, "device": device, "orders": orders,
        "income": income, "coupon": np.array(["control", *COUPONS], dtype=object)[arm],
        "converted": converted, "revenue": revenue,
    })
    truth = pd.DataFrame({"customer_id": ids, **{f"true_uplift_{c}": true[c] for c in COUPONS}})
    return export, truth


def true_profit(selected: pd.DataFrame, truth: pd.DataFrame, *, id_col: str = "customer_id",
                arm_col: str = "arm") -> float:
    """True expected incremental profit of a targeting list: the known conversion uplift of each listed
    customer's coupon times the basket, minus the coupon's cost."""
    ids = selected[id_col].astype(str).str.zfill(6)  # main's lists lost the leading zeros; same customers
    t = truth.set_index("customer_id").loc[ids]
    arms = selected[arm_col].astype(str).to_numpy()
    gain = np.zeros(len(selected))
    for coupon in COUPONS:
        hit = arms == coupon
        gain[hit] = t[f"true_uplift_{coupon}"].to_numpy()[hit] * BASKET - COSTS[coupon]
    return float(gain.sum())


def oracle_profit(truth: pd.DataFrame) -> float:
    """True expected profit of the best list: each customer with the coupon of largest positive true profit."""
    gains = np.column_stack([truth[f"true_uplift_{c}"].to_numpy() * BASKET - COSTS[c] for c in COUPONS])
    return float(np.maximum(gains.max(axis=1), 0.0).sum())
