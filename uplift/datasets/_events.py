"""A simulated e-commerce event log with a randomised coupon campaign whose per-customer effect is known.

Behaviour drives everything, as in a shop: each customer has latent traits (how often they visit, how likely a
visit ends in a purchase, their basket size, how much they hunt for deals, whether their activity is rising or
lapsing, their favourite category and channel). The traits generate the event log before the campaign (views,
add-to-carts, purchases, favourites, reviews, coupon redemptions, returns), the purchase hazard after it, and
the coupon's effect on that hazard, which is larger for deal seekers and lapsing customers. The true uplift of
each customer is the exact difference of two purchase probabilities over the follow-up, so features built from
the log (``uplift features``) can be checked against the truth and against the traits themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.errors import UpliftInputError

__all__ = ["EVENT_TYPES", "EventLog", "simulate_events"]

EVENT_TYPES = ("view", "add_to_cart", "purchase", "favourite", "review", "coupon_redeem", "return")
CATEGORIES = ("fashion", "home", "beauty", "electronics", "sports", "toys")
CHANNELS = ("app", "web", "email")
#: The recent period over which momentum changes a customer's activity (days before exposure).
_RECENT = 60
#: Longest history simulated before exposure (days).
_HISTORY = 540
#: The coupon's extra visits after exposure (treated customers browse more), as a rate multiplier.
_EXTRA_VISITS = 0.6


@dataclass
class EventLog:
    """A simulated shop: ``events`` (one row per event), ``campaign`` (one row per customer: id, arm,
    exposure time) and ``truth`` (per customer: the true uplift and baseline of converting within the
    follow-up, and the latent traits that drive both).

    The truth's ``true_*`` trait columns are what a perfect feature builder would recover.
    """

    events: pd.DataFrame
    campaign: pd.DataFrame
    truth: pd.DataFrame
    follow_up_days: int
    #: When the log ends: the last exposure's follow-up.
    observed_until: pd.Timestamp


def _traits(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    from scipy.special import expit  # imported where used: scipy costs start-up every command would pay

    return {
        "activity": np.exp(rng.normal(np.log(0.016), 0.7, n)),          # visits per day
        "buy_rate": expit(rng.normal(-1.5, 0.7, n)),                    # P(purchase | visit)
        "basket": np.exp(rng.normal(np.log(45.0), 0.4, n)),             # expected order value
        "deal_seeker": rng.beta(1.2, 3.0, n),                           # share of purchases with a coupon
        "momentum": np.exp(rng.normal(0.0, 0.55, n)),                   # recent activity / usual activity
        "return_rate": rng.beta(1.0, 10.0, n),
        "tenure_days": np.minimum(30 + rng.exponential(300.0, n), _HISTORY),
        "category": rng.integers(0, len(CATEGORIES), n),
        "channel": rng.choice(len(CHANNELS), size=n, p=[0.5, 0.35, 0.15]),
    }


def _coupon_lift(t: dict[str, np.ndarray]) -> np.ndarray:
    """Relative increase of the purchase hazard a coupon causes: deal seekers and lapsing customers respond."""
    lapsing = np.clip(1.0 - t["momentum"], 0.0, None)
    return 0.05 + 1.6 * t["deal_seeker"] + 1.0 * lapsing * (0.5 + t["deal_seeker"])


def _sessions(rng, customer, rate, start, end):
    """Poisson visit counts per customer over [start, end) days relative to exposure, and their times."""
    count = rng.poisson(rate * np.clip(end - start, 0.0, None))
    who = np.repeat(customer, count)
    when = np.repeat(start, count) + rng.random(who.size) * np.repeat(end - start, count)
    return who, when


def simulate_events(n_customers: int = 20_000, seed: int = 0, *, follow_up_days: int = 14,
                    start: str = "2024-06-01", treated_share: float = 0.5) -> EventLog:
    """Simulate an event log and a randomised coupon campaign with a known uplift per customer.

    Parameters
    ----------
    n_customers : int
        Customers in the campaign (about 10 events each on average).
    seed : int
        Random seed: the same seed gives the same log.
    follow_up_days : int
        Days after exposure over which conversion (any purchase) is the outcome.
    start : str
        The campaign start; customers are exposed (coupon or control) at random times over its first 3 days.
    treated_share : float
        Share of customers sent the coupon.

    Returns
    -------
    EventLog

    Examples
    --------
    >>> log = simulate_events(2000, seed=1)
    >>> list(log.campaign.columns), sorted(log.campaign.arm.unique())
    (['customer_id', 'arm', 'exposure_time'], ['control', 'coupon'])
    >>> bool(0.0 < log.truth.true_uplift.mean() < 0.1)
    True
    """
    if n_customers < 10:
        raise UpliftInputError(f"n_customers must be at least 10, got {n_customers}")
    if not 0 < treated_share < 1:
        raise UpliftInputError(f"treated_share must be between 0 and 1, got {treated_share}")
    rng = np.random.default_rng(seed)
    n = int(n_customers)
    t = _traits(rng, n)
    ids = np.array([f"C{i:07d}" for i in range(n)], dtype=object)
    exposure = pd.Timestamp(start) + pd.to_timedelta(rng.random(n) * 3 * 86400, unit="s").round("s")
    treated = rng.random(n) < treated_share
    customer = np.arange(n)

    # Before exposure: usual activity until _RECENT days before, then activity scaled by momentum.
    usual = _sessions(rng, customer, t["activity"], -t["tenure_days"], np.full(n, -float(_RECENT)))
    recent_start = np.maximum(-t["tenure_days"], -_RECENT)
    recent = _sessions(rng, customer, t["activity"] * t["momentum"], recent_start, np.zeros(n))
    # After exposure: the follow-up visits, more of them for treated customers (the coupon brings them back).
    visit_rate = t["activity"] * t["momentum"] * (1 + _EXTRA_VISITS * treated)
    after = _sessions(rng, customer, visit_rate, np.zeros(n), np.full(n, float(follow_up_days)))
    who = np.concatenate([usual[0], recent[0], after[0]])
    when = np.concatenate([usual[1], recent[1], after[1]])
    before = when < 0

    # What each visit does: every visit is a view; some add to cart, buy, favourite; purchases bring reviews,
    # redemptions and returns. Purchases after exposure come from the hazard below instead (the outcome).
    u = rng.random((who.size, 4))
    buys = before & (u[:, 0] < t["buy_rate"][who])
    cart = u[:, 1] < np.where(buys, 0.9, 0.25)
    fav = u[:, 2] < 0.06
    # Baseline purchase hazard per day after exposure and the coupon's effect on it: the truth.
    lift = _coupon_lift(t)
    hazard0 = t["activity"] * t["momentum"] * t["buy_rate"]
    p0 = 1 - np.exp(-follow_up_days * hazard0)
    p1 = 1 - np.exp(-follow_up_days * hazard0 * (1 + lift))
    n_after = rng.poisson(follow_up_days * hazard0 * (1 + lift * treated))
    buyer_after = np.repeat(customer, n_after)
    time_after = rng.random(buyer_after.size) * follow_up_days

    bought_who = np.concatenate([who[buys], buyer_after])
    bought_when = np.concatenate([when[buys], time_after])
    treated_after = treated[bought_who] & (bought_when >= 0)
    v = rng.random((bought_who.size, 3))
    redeem_p = np.where(treated_after, 0.7, t["deal_seeker"][bought_who] * 0.5)
    parts = [
        (who, when, 0),
        (who[cart], when[cart] + 0.002, 1),
        (bought_who, bought_when + 0.004, 2),
        (who[fav], when[fav] + 0.001, 3),
        (bought_who[v[:, 0] < 0.12], bought_when[v[:, 0] < 0.12] + 3.0, 4),
        (bought_who[v[:, 1] < redeem_p], bought_when[v[:, 1] < redeem_p] + 0.004, 5),
        (bought_who[v[:, 2] < t["return_rate"][bought_who]], bought_when[v[:, 2] < t["return_rate"][bought_who]]
         + 7.0, 6),
    ]
    e_who = np.concatenate([p[0] for p in parts])
    e_when = np.concatenate([p[1] for p in parts])
    e_type = np.concatenate([np.full(p[0].size, p[2], dtype=np.int8) for p in parts])
    keep = e_when < follow_up_days  # reviews and returns after the follow-up are not in the log yet
    e_who, e_when, e_type = e_who[keep], e_when[keep], e_type[keep]
    order = np.lexsort((e_when, e_who))
    e_who, e_when, e_type = e_who[order], e_when[order], e_type[order]
    m = e_who.size
    is_purchase = e_type == 2
    amount = np.full(m, np.nan)
    amount[is_purchase] = np.round(t["basket"][e_who[is_purchase]] * np.exp(rng.normal(-0.08, 0.4,
                                                                                        is_purchase.sum())), 2)
    amount[e_type == 6] = np.round(t["basket"][e_who[e_type == 6]], 2)
    w = rng.random((m, 2))
    category = np.where(w[:, 0] < 0.6, t["category"][e_who], rng.integers(0, len(CATEGORIES), m))
    channel = np.where(w[:, 1] < 0.75, t["channel"][e_who], rng.integers(0, len(CHANNELS), m))
    stamps = exposure.to_numpy()[e_who] + (e_when * 86400).astype("timedelta64[s]")
    events = pd.DataFrame({
        "customer_id": pd.Categorical.from_codes(e_who, categories=pd.Index(ids)),
        "timestamp": stamps.astype("datetime64[us]"),
        "event_type": pd.Categorical.from_codes(e_type, categories=list(EVENT_TYPES)),
        "amount": amount,
        "category": pd.Categorical.from_codes(category, categories=list(CATEGORIES)),
        "channel": pd.Categorical.from_codes(channel, categories=list(CHANNELS)),
    })
    campaign = pd.DataFrame({"customer_id": ids, "arm": np.where(treated, "coupon", "control"),
                             "exposure_time": exposure.to_numpy().astype("datetime64[us]")})
    truth = pd.DataFrame({
        "customer_id": ids, "true_uplift": p1 - p0, "true_p0": p0,
        **{f"true_{k}": v for k, v in t.items() if k not in ("category", "channel")},
        "true_category": np.asarray(CATEGORIES)[t["category"]], "true_channel": np.asarray(CHANNELS)[t["channel"]],
    })
    until = pd.Timestamp(start) + pd.Timedelta(days=3 + follow_up_days)
    return EventLog(events, campaign, truth, int(follow_up_days), until)
