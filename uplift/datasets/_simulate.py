"""A simulated coupon campaign whose per-customer effect is known.

Real campaigns never reveal each customer's true uplift, so learners, metrics and CIs are checked here against
a simulator that does. The functional forms are fixed (they do not change with ``seed`` or ``n``): intercepts
are calibrated once on a fixed reference population, so ``p0(x)``, ``tau(x)`` and ``e(x)`` are the same
functions in every call and only the customers drawn differ.
"""

from __future__ import annotations

import string
from functools import lru_cache

import numpy as np
import pandas as pd

from uplift.errors import UpliftInputError

CHANNELS = ("web", "app", "store")
REGIONS = ("north", "south", "east", "west")
N_NOISE = 4
#: Features that drive the uplift of at least one coupon (the rest only move the baseline, or nothing).
UPLIFT_DRIVERS = ("recency_days", "frequency", "channel", "newsletter", "monetary")
#: Drivers of the single-coupon (``coupon_a``) uplift.
UPLIFT_DRIVERS_SINGLE = ("recency_days", "frequency", "channel", "newsletter")

_F32 = np.float32
_REF_SEED = 20_080_301  # reference population for calibrating intercepts: fixed, unrelated to the user's seed
_REF_N = 200_000
_BASKET_SIGMA = 0.6  # log-sd of the basket value around its expected value
_MAX_ARMS = len(string.ascii_lowercase)


# --------------------------------------------------------------------------------------------- customers
def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row from per-row category probabilities (rows sum to 1), as int8 codes."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs), dtype=_F32)[:, None]
    return np.minimum((u >= cum[:, :-1]).sum(axis=1), probs.shape[1] - 1).astype(np.int8)


def _customers(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Customer attributes as a CRM holds them: RFM, tenure, age, channel, region, newsletter, and noise."""
    from scipy.special import expit
    age = np.clip(np.rint(44 + 14 * rng.standard_normal(n, dtype=_F32)), 18, 90).astype(np.int32)
    # Many customers are new; a long tail has been around for years.
    tenure = np.minimum(1 + np.floor(30 * rng.standard_exponential(n, dtype=_F32)), 240).astype(np.int32)
    # Younger customers shop on the app, older ones in store.
    a = (age.astype(_F32) - 44) / 14
    scores = np.stack([np.zeros_like(a), -0.8 * a, -0.3 + 0.6 * a], axis=1)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    channel = _categorical(rng, probs)
    region = rng.choice(len(REGIONS), size=n, p=[0.3, 0.25, 0.25, 0.2]).astype(np.int8)
    newsletter = (rng.random(n, dtype=_F32) < expit(-1.2 + 0.025 * tenure)).astype(np.int32)
    # Orders in the last 12 months: a latent loyalty level plus tenure, Poisson around it.
    loyalty = rng.standard_normal(n, dtype=_F32)
    frequency = rng.poisson(np.exp(0.45 + 0.6 * loyalty + 0.004 * tenure)).astype(np.int32)
    # Days since the last order, consistent with frequency: the most recent of `frequency` orders spread
    # uniformly over the year (a Beta(1, f) fraction of 365 days); customers without an order this year
    # last bought 1-3 years ago.
    v = rng.random(n, dtype=_F32)
    f = np.maximum(frequency, 1).astype(_F32)
    active = np.ceil(365 * (1 - v ** (1 / f)))
    lapsed = 366 + np.floor(250 * rng.standard_exponential(n, dtype=_F32))
    recency = np.clip(np.where(frequency > 0, active, lapsed), 1, 1095).astype(np.int32)
    # Average order value in dollars, a little higher for older and more frequent customers.
    log_m = (np.log(40) + 0.45 * rng.standard_normal(n, dtype=_F32) + 0.006 * (age - 44)
             + 0.08 * np.log1p(frequency))
    monetary = np.round(np.exp(log_m), 2).astype(_F32)
    out = {
        "recency_days": recency, "frequency": frequency, "monetary": monetary, "tenure_months": tenure,
        "age": age, "channel": channel, "region": region, "newsletter": newsletter,
    }
    for j in range(1, N_NOISE + 1):
        # Pure noise: nothing in the simulation reads these.
        noise = rng.standard_normal(n, dtype=_F32) if j % 2 else rng.random(n, dtype=_F32)
        out[f"noise_{j}"] = noise
    return out


@lru_cache(maxsize=1)
def _reference() -> dict[str, np.ndarray]:
    return _customers(np.random.default_rng(_REF_SEED), _REF_N)


def _solve_intercept(score: np.ndarray, target: float, link=None) -> float:
    """Intercept b with mean(link(b + score)) == target (``link`` increasing, so the root is unique)."""
    from scipy.optimize import brentq
    from scipy.special import expit
    link = expit if link is None else link
    return float(brentq(lambda b: link(b + score).mean() - target, -40.0, 40.0, xtol=1e-10))


# --------------------------------------------------------------------------------------------- outcome model
def _baseline_score(x: dict[str, np.ndarray]) -> np.ndarray:
    """Logit of the no-coupon conversion probability, without intercept."""
    region_effect = np.array([0.0, 0.1, -0.05, 0.15])
    return (
        0.8 * np.log1p(x["frequency"])
        - 1.5 * np.minimum(x["recency_days"], 730) / 365
        + 0.4 * x["newsletter"]
        + 0.25 * (x["channel"] == 1) - 0.2 * (x["channel"] == 2)
        + 0.4 * np.log(x["monetary"].astype(np.float64) / 40)
        + 0.008 * (x["age"] - 44)
        + 0.1 * np.log1p(x["tenure_months"] / 12)
        + region_effect[x["region"]]
    )


@lru_cache(maxsize=16)
def _baseline_intercept(base_rate: float) -> float:
    return _solve_intercept(_baseline_score(_reference()), base_rate)


def _uplift_profile(k: int, x: dict[str, np.ndarray]) -> np.ndarray:
    """Effect of coupon k (0-based) on the conversion probability, before clipping to [0, 1].

    Three profiles, cycled (and damped) when there are more coupons:
    a (discount): wins back lapsed customers, app and newsletter users; heavy buyers buy anyway and react
      badly (sleeping dogs).
    b (free shipping): appeals to web shoppers with large baskets; lapsed customers less so.
    c (loyalty points): appeals to store customers and newsletter readers.
    """
    from scipy.special import expit
    lapsed = expit((x["recency_days"] - 150) / 40.0)
    heavy = expit((x["frequency"] - 6) / 1.0)
    ch = x["channel"]
    web, app, store = (ch == 0), (ch == 1), (ch == 2)
    news = x["newsletter"]
    profile = k % 3
    if profile == 0:
        tau = -0.014 + 0.038 * lapsed + 0.014 * news + 0.018 * app - 0.050 * heavy
    elif profile == 1:
        big_basket = expit((x["monetary"] - 60) / 12.0)
        tau = -0.016 + 0.034 * web + 0.026 * big_basket + 0.014 * lapsed + 0.008 * news - 0.035 * heavy
    else:
        tau = -0.012 + 0.030 * store + 0.024 * news + 0.014 * lapsed - 0.030 * heavy
    return tau * 0.8 ** (k // 3)


def _expected_basket(x: dict[str, np.ndarray]) -> np.ndarray:
    """Expected order value (dollars) if the customer converts: anchored on their usual order value."""
    return 15.0 + 0.9 * x["monetary"].astype(np.float64)


# --------------------------------------------------------------------------------------------- assignment
def _targeting_score(x: dict[str, np.ndarray]) -> np.ndarray:
    """How strongly marketing favours a customer in an observational campaign.

    Marketing favours frequent, high-spending, recent newsletter subscribers: the same signals that raise the
    baseline conversion, which is exactly what makes a naive treated-vs-untreated comparison flatter the
    coupon.
    """
    return (
        1.2 * np.log1p(x["frequency"])
        + 1.5 * np.log(x["monetary"].astype(np.float64) / 40)
        + 1.2 * x["newsletter"]
        - 1.0 * np.minimum(x["recency_days"], 730) / 365
    )


@lru_cache(maxsize=64)
def _targeting_intercept(confounding: float, n_arms: int) -> float:
    """Intercept so that, on the reference population, each arm gets 1/(n_arms+1) of customers on average."""
    score = confounding * _targeting_score(_reference())
    return _solve_intercept(score, n_arms / (n_arms + 1), link=lambda z: 1 - _control_probability(z, n_arms))


def _arm_probabilities(x: dict[str, np.ndarray], design: str, n_arms: int, confounding: float) -> np.ndarray:
    """(n, n_arms + 1) treatment probabilities, column 0 = control."""
    n = len(x["age"])
    if design == "rct" or confounding == 0:
        return np.full((n, n_arms + 1), 1.0 / (n_arms + 1))
    b = _targeting_intercept(float(confounding), n_arms)
    z = b + confounding * _targeting_score(x)
    # Multinomial logit, control score 0 and every coupon score z (the campaign first decides whom to
    # contact, then splits coupons at random); mixed with 10% uniform so every probability stays >= 0.1/(K+1)
    # (0.05 with one coupon): overlap holds by construction.
    p_control = _control_probability(z, n_arms)
    e = np.empty((n, n_arms + 1))
    e[:, 0] = p_control
    e[:, 1:] = ((1 - p_control) / n_arms)[:, None]
    return 0.1 / (n_arms + 1) + 0.9 * e


def _control_probability(z: np.ndarray, n_arms: int = 1) -> np.ndarray:
    return 1.0 / (1.0 + n_arms * np.exp(z))


# --------------------------------------------------------------------------------------------- public
def arm_names(n_arms: int) -> list[str]:
    """Labels of the treated arms of a multi-coupon simulation: ``coupon_a``, ``coupon_b``, ..."""
    return [f"coupon_{string.ascii_lowercase[k]}" for k in range(n_arms)]


def _check_args(n, design, n_arms, confounding, base_rate, outcome) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise UpliftInputError(f"n must be a positive whole number of customers, got {n!r}")
    if design not in ("rct", "observational"):
        raise UpliftInputError(f"design must be 'rct' or 'observational', got {design!r}")
    if isinstance(n_arms, bool) or not isinstance(n_arms, int | np.integer) or not 1 <= n_arms <= _MAX_ARMS:
        raise UpliftInputError(f"n_arms (coupons besides control) must be 1..{_MAX_ARMS}, got {n_arms!r}")
    if not np.isfinite(confounding) or confounding < 0:
        raise UpliftInputError(f"confounding must be >= 0 (0 = none, 1 = default); got {confounding!r}")
    if not 0.001 <= base_rate <= 0.5:
        raise UpliftInputError(f"base_rate must lie in [0.001, 0.5] (a conversion rate), got {base_rate!r}")
    if outcome not in ("conversion", "revenue"):
        raise UpliftInputError(f"outcome must be 'conversion' or 'revenue', got {outcome!r}")


def simulate_campaign(
    n: int = 10_000,
    *,
    design: str = "rct",
    n_arms: int = 1,
    seed: int = 0,
    confounding: float = 1.0,
    base_rate: float = 0.03,
    outcome: str = "conversion",
) -> pd.DataFrame:
    """Simulate a coupon campaign in which every customer's true uplift is known.

    Customers get realistic CRM attributes; a coupon (or one of several) is assigned at random
    (``design="rct"``) or by a targeting rule that favours already-engaged customers
    (``design="observational"``); conversions and revenue are drawn from a known outcome model.

    Outcome model. Without a coupon a customer converts with probability ``p0(x) = logistic(b + s(x))``,
    ``s`` increasing in frequency, newsletter, app use, order value, age, tenure and decreasing in recency;
    ``b`` is set so the population average of ``p0`` is ``base_rate``. With coupon ``k`` the probability is
    ``p_k(x) = clip(p0(x) + tau_k(x), 0, 1)``. The single coupon (and ``coupon_a``) has

        tau(x) = -0.014 + 0.038 * lapsed + 0.014 * newsletter + 0.018 * [channel == app] - 0.050 * heavy

    with ``lapsed = logistic((recency_days - 150) / 40)`` and ``heavy = logistic(frequency - 6)``: lapsed
    customers are won back; heavy buyers buy anyway and are put off, and so are engaged web/store customers
    without a newsletter ("sleeping dogs": about a quarter of customers have a negative uplift). The average
    is about +1.3 pp with a spread (sd) of about 2.3 pp. So this uplift is driven by ``recency_days``,
    ``frequency``, ``channel`` and ``newsletter`` only (``UPLIFT_DRIVERS_SINGLE``). ``coupon_b`` (free
    shipping) favours web shoppers with large baskets (adds ``monetary``); ``coupon_c`` (loyalty points)
    favours store customers and newsletter readers; further coupons repeat these profiles, damped by 0.8
    per round. Noise features, ``age``, ``tenure_months`` and ``region`` never change the uplift.
    A converting customer spends a log-normal basket with mean ``15 + 0.9 * monetary`` dollars, unaffected by
    the coupon, so revenue uplift = conversion uplift x expected basket.

    Parameters
    ----------
    n : int
        Number of customers (rows). Up to about 15 million fits in a few GB of memory.
    design : {"rct", "observational"}
        ``"rct"``: every arm has the same probability (0.5 with one coupon). ``"observational"``: the
        probability of getting a coupon rises with frequency, newsletter subscription and recent purchases,
        the same signals that raise the baseline conversion (confounding); it stays within [0.05, 0.95]
        (with ``K`` coupons, each arm's probability is at least ``0.1 / (K + 1)``) so overlap holds.
    n_arms : int
        Number of coupons besides control. 1 gives a 0/1 ``treatment``; more give labels.
    seed : int
        Random seed; the same arguments give an identical frame.
    confounding : float
        Strength of the targeting rule in the observational design (0 = none, i.e. an RCT; 1 = default;
        2 = twice as steep). Ignored for ``design="rct"``.
    base_rate : float
        Average conversion probability without a coupon.
    outcome : {"conversion", "revenue"}
        The outcome whose effect ``true_uplift`` reports, so generic code can always compare with
        ``true_uplift``. With ``"revenue"`` it equals ``true_revenue_uplift`` and the conversion truth moves
        to ``true_conversion_uplift``.

    Returns
    -------
    DataFrame
        One row per customer:

        ``customer_id`` (int64)
            Unique id, 1..n.
        ``recency_days`` (int32)
            Days since the last order (1-365 for customers with orders this year, 366-1095 otherwise).
        ``frequency`` (int32)
            Orders in the last 12 months.
        ``monetary`` (float32)
            Average order value, dollars.
        ``tenure_months`` (int32)
            Months since the first order (1-240).
        ``age`` (int32)
            Years (18-90).
        ``channel`` (category)
            Preferred channel: ``"web"``, ``"app"`` or ``"store"`` (younger customers favour the app).
        ``region`` (category)
            ``"north"``, ``"south"``, ``"east"``, ``"west"`` (small effect on the baseline only).
        ``newsletter`` (int32 0/1)
            Subscribed to the newsletter.
        ``noise_1`` .. ``noise_4`` (float32)
            Pure noise (normal, uniform, normal, uniform): no effect on anything.
        ``treatment``
            int64 0/1 with one coupon; otherwise a category ``"control"``, ``"coupon_a"``, ``"coupon_b"``, ...
            (control first).
        ``conversion`` (int64 0/1)
            Bought during the campaign.
        ``revenue`` (float64)
            Dollars spent during the campaign: 0 without a conversion, the basket value with one.
        ``true_uplift`` (float64)
            Effect on the conversion probability (on revenue if ``outcome="revenue"``) of the customer's own
            arm versus control; with one coupon, of the coupon for every row (control rows included); with
            several coupons, 0 on control rows.
        ``true_uplift_<arm>`` (float64, several coupons only)
            Same, of coupon ``<arm>`` versus control, for every row.
        ``true_revenue_uplift``, ``true_revenue_uplift_<arm>`` (float64)
            Effect on expected revenue (dollars), defined like ``true_uplift``.
        ``true_conversion_uplift[_<arm>]`` (float64, only with ``outcome="revenue"``)
            Effect on the conversion probability.
        ``propensity`` (float64, one coupon) / ``propensity_<arm>`` (several coupons, control included)
            The true probability of receiving the coupon / each arm, as used to assign it.

    See Also
    --------
    true_ate : average of the true effect.

    Examples
    --------
    >>> from uplift.datasets import simulate_campaign, true_ate
    >>> df = simulate_campaign(20_000, seed=1)
    >>> df.shape
    (20000, 19)
    >>> 0.02 < float(df["conversion"].mean()) < 0.05
    True
    >>> bool((df["true_uplift"] < 0).any()), round(true_ate(df), 2)
    (True, 0.01)
    >>> multi = simulate_campaign(5_000, n_arms=2, seed=1)
    >>> list(multi["treatment"].cat.categories)
    ['control', 'coupon_a', 'coupon_b']
    """
    from scipy.special import expit
    _check_args(n, design, n_arms, confounding, base_rate, outcome)
    n, n_arms = int(n), int(n_arms)
    rng = np.random.default_rng(seed)
    x = _customers(rng, n)

    p0 = expit(_baseline_intercept(float(base_rate)) + _baseline_score(x))
    arms = arm_names(n_arms)
    basket_mean = _expected_basket(x)
    conv_uplift = [np.clip(p0 + _uplift_profile(k, x), 0.0, 1.0) - p0 for k in range(n_arms)]

    e = _arm_probabilities(x, design, n_arms, float(confounding))
    u = rng.random(n)
    if n_arms == 1:
        codes = (u < e[:, 1]).astype(np.int64)
    else:
        codes = (u[:, None] >= np.cumsum(e, axis=1)[:, :-1]).sum(axis=1)
    # Probability of converting in the arm actually received: p0 for control, p0 + uplift of the coupon.
    p_obs = p0.copy()
    for k in range(n_arms):
        got = codes == k + 1
        p_obs[got] += conv_uplift[k][got]
    conversion = (rng.random(n) < p_obs).astype(np.int64)
    basket = basket_mean * np.exp(_BASKET_SIGMA * rng.standard_normal(n) - _BASKET_SIGMA**2 / 2)
    revenue = np.where(conversion == 1, np.round(basket, 2), 0.0)

    frame: dict[str, object] = {"customer_id": np.arange(1, n + 1, dtype=np.int64)}
    for name, col in x.items():
        if name == "channel":
            col = pd.Categorical.from_codes(col, categories=list(CHANNELS))
        elif name == "region":
            col = pd.Categorical.from_codes(col, categories=list(REGIONS))
        frame[name] = col
    if n_arms == 1:
        frame["treatment"] = codes
    else:
        frame["treatment"] = pd.Categorical.from_codes(codes.astype(np.int8), categories=["control", *arms])
    frame["conversion"] = conversion
    frame["revenue"] = revenue

    rev_uplift = [c * basket_mean for c in conv_uplift]
    headline = rev_uplift if outcome == "revenue" else conv_uplift
    groups = [("true_uplift", headline), ("true_revenue_uplift", rev_uplift)]
    if outcome == "revenue":
        groups.append(("true_conversion_uplift", conv_uplift))
    for prefix, per_arm in groups:
        if n_arms == 1:
            frame[prefix] = per_arm[0]
        else:
            own = np.zeros(n)
            for k in range(n_arms):
                got = codes == k + 1
                own[got] = per_arm[k][got]
            frame[prefix] = own
            for k, arm in enumerate(arms):
                frame[f"{prefix}_{arm}"] = per_arm[k]
    if n_arms == 1:
        frame["propensity"] = e[:, 1]
    else:
        for j, arm in enumerate(["control", *arms]):
            frame[f"propensity_{arm}"] = e[:, j]
    df = pd.DataFrame(frame, copy=False)
    df.attrs["simulation"] = {"design": design, "n_arms": n_arms, "seed": seed, "confounding": confounding,
                              "base_rate": base_rate, "outcome": outcome, "arms": arms}
    return df


def true_ate(df: pd.DataFrame, arm: str | None = None, *, outcome: str | None = None) -> float:
    """Average true effect in a simulated campaign: the mean over all customers of the per-row truth.

    Parameters
    ----------
    df : DataFrame
        A frame from :func:`simulate_campaign` (or any subset of its rows, e.g. a segment).
    arm : str, optional
        Coupon to evaluate (``"coupon_a"``...). Required when the simulation had several coupons.
    outcome : {"conversion", "revenue"}, optional
        Effect on which outcome; default: the one ``true_uplift`` reports.

    Returns
    -------
    float
        The average treatment effect (probability points for conversion, dollars for revenue).

    Examples
    --------
    >>> from uplift.datasets import simulate_campaign, true_ate
    >>> df = simulate_campaign(10_000, n_arms=2, seed=0)
    >>> true_ate(df, "coupon_a") > 0
    True
    """
    if outcome not in (None, "conversion", "revenue"):
        raise UpliftInputError(f"outcome must be 'conversion' or 'revenue', got {outcome!r}")
    if outcome == "revenue":
        prefix = "true_revenue_uplift"
    elif outcome == "conversion" and "true_conversion_uplift" in df.columns:
        prefix = "true_conversion_uplift"
    else:
        prefix = "true_uplift"
    per_arm = sorted(c[len(prefix) + 1:] for c in df.columns if c.startswith(f"{prefix}_coupon_"))
    if per_arm:
        if arm is None:
            raise UpliftInputError(f"several coupons were simulated; pass arm= one of {', '.join(per_arm)}")
        column = f"{prefix}_{arm}"
    else:
        if arm not in (None, "coupon_a", 1, "1"):
            raise UpliftInputError(f"the simulation has one coupon; arm {arm!r} does not exist (omit arm=)")
        column = prefix
    if column not in df.columns:
        raise UpliftInputError(
            f"column {column!r} is missing: true_ate needs a frame from simulate_campaign"
            + (f" (arms: {', '.join(per_arm)})" if per_arm else "")
        )
    return float(df[column].mean())
