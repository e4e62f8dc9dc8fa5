"""Holdout and exploration for a targeting list: the design that lets the campaign measure itself.

A targeting list says who should get which coupon. Sending it to everyone on the list leaves nothing to
compare with, so :func:`assign_holdout` keeps a random share of the selected customers back (``holdout``),
stratified by coupon and predicted-uplift decile so every coupon and every part of the ranking is measured.
Optionally a small random share of the customers the model did *not* select gets the coupon anyway
(``explore``): the only way to learn whether the model's "no" was right. Every row carries the probability
with which it was sent the coupon (``propensity``), which :func:`uplift.targeting.readouts.readout` uses afterwards.

Sampling is systematic within the stratified order (one random start, then every ``1/share``-th customer):
each customer is held out with probability exactly ``holdout``, and every stratum gets its proportional
share up to one customer.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from uplift._display import decimals, effect_unit, fmt_ci
from uplift._stats import z_for_alpha
from uplift.errors import UpliftInputError

#: Columns written by :func:`assign_holdout`; an input already holding them would be silently overwritten.
DESIGN_COLUMNS = ("selected", "holdout", "explore", "send", "propensity", "uplift_decile")
N_DECILES = 10


def _systematic(strata: list[np.ndarray], share: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean draw with P(True) == ``share`` for every row, balanced across the strata.

    Rows are ordered by the strata (then at random within them) and every ``1/share``-th is taken from a
    random start: the count in each stratum is its proportional share rounded up or down.
    """
    n = len(strata[0]) if strata else 0
    if n == 0 or share <= 0:
        return np.zeros(n, dtype=bool)
    order = np.lexsort((rng.random(n), *strata[::-1]))
    u = rng.random()
    k = np.arange(n)
    take = np.floor(u + share * (k + 1)) - np.floor(u + share * k) > 0
    out = np.zeros(n, dtype=bool)
    out[order] = take
    return out


def uplift_deciles(uplift: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Decile (1 = highest predicted uplift, 10 = lowest, as in the calibration tables) of each row within its
    group (coupon).

    Examples
    --------
    >>> import numpy as np
    >>> uplift_deciles(np.arange(20.0), np.zeros(20)).tolist()[:4]
    [10, 10, 9, 9]
    """
    uplift = np.asarray(uplift, dtype=float)
    groups = pd.factorize(np.asarray(groups))[0]
    order = np.lexsort((np.arange(len(uplift)), uplift, groups))  # ties broken by position: deterministic
    size = np.bincount(groups)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    g = groups[order]
    pct = np.empty(len(uplift))
    pct[order] = (np.arange(len(uplift)) - start[g] + 1) / size[g]
    return (N_DECILES - np.minimum(np.ceil(pct * N_DECILES) - 1, N_DECILES - 1)).astype(int)


def _z_sum(alpha: float, power: float) -> float:
    """``z_{1-α/2} + z_{power}`` of the sample-size formulas: the two-sided test's ``z`` (from :mod:`uplift._stats`,
    as every interval's) plus the one-sided normal quantile of the power (any power in (0, 1), 50% included)."""
    return z_for_alpha(alpha) + NormalDist().inv_cdf(power)


def minimum_detectable_uplift(n_sent: int, n_holdout: int, *, base_rate: float | None = None,
                              outcome_sd: float | None = None, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest average uplift per customer that a sent-vs-holdout comparison detects with the given power.

    Binary outcome (``base_rate``): the two-proportion formula, with the treated group's variance taken at
    ``base_rate + uplift`` (solved by fixed-point iteration). Continuous outcome: ``outcome_sd`` in both groups.

    Examples
    --------
    >>> round(minimum_detectable_uplift(9000, 1000, base_rate=0.05), 4)
    0.0207
    """
    if n_sent < 1 or n_holdout < 1:
        return float("inf")
    z = _z_sum(alpha, power)
    if outcome_sd is not None:
        return float(z * outcome_sd * np.sqrt(1 / n_sent + 1 / n_holdout))
    p0 = float(base_rate)
    mde = z * np.sqrt(p0 * (1 - p0) * (1 / n_sent + 1 / n_holdout))
    for _ in range(50):  # converges in a handful of steps: the variance moves little with the uplift
        p1 = min(p0 + mde, 1.0)
        mde = z * np.sqrt(p0 * (1 - p0) / n_holdout + p1 * (1 - p1) / n_sent)
    return float(mde)


def required_holdout_share(n_selected: int, uplift: float, sd: float, *, alpha: float = 0.05,
                           power: float = 0.8) -> float | None:
    """Holdout share at which ``uplift`` becomes detectable, or None when even a 50/50 split is too small."""
    if uplift <= 0 or n_selected < 2:
        return None
    z = _z_sum(alpha, power)
    # z * sd * sqrt(1/(h N) + 1/((1-h) N)) = uplift  <=>  h (1 - h) = z^2 sd^2 / (N uplift^2)
    c = (z * sd / uplift) ** 2 / n_selected
    if c > 0.25:
        return None
    return float((1 - np.sqrt(1 - 4 * c)) / 2)


def _check_frame(frame: pd.DataFrame, name: str, cols: list[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise UpliftInputError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    for col in cols:
        if col not in frame.columns:
            raise UpliftInputError(f"{name} has no column {col!r} (columns: {', '.join(map(str, frame.columns))})")
    ids = frame[cols[0]]
    if ids.isna().any():
        raise UpliftInputError(f"{name}: id column {cols[0]!r} has {int(ids.isna().sum())} missing value(s)")
    dup = ids.duplicated()
    if dup.any():
        raise UpliftInputError(f"{name}: id column {cols[0]!r} has {int(dup.sum())} duplicated value(s) "
                               f"(e.g. {ids[dup].iloc[0]!r}); each customer may appear once")
    up = pd.to_numeric(frame[cols[1]], errors="coerce")
    if not np.isfinite(up.to_numpy(dtype=float, na_value=np.nan)).all():
        raise UpliftInputError(f"{name}: predicted uplift column {cols[1]!r} has missing or non-numeric values; "
                               "re-score the customers")
    if frame[cols[2]].isna().any():
        raise UpliftInputError(f"{name}: coupon column {cols[2]!r} has missing values; every row needs its coupon")


def assign_holdout(targeting_list: pd.DataFrame, *, holdout: float = 0.1, explore: float = 0.0,
                   not_selected: pd.DataFrame | None = None, random_state: int = 0, uplift_col: str = "uplift",
                   arm_col: str = "coupon", base_rate: float | None = None, outcome_sd: float | None = None,
                   id_col: str | None = None, alpha: float = 0.05, power: float = 0.8) -> tuple[pd.DataFrame, dict]:
    """Mark a random holdout among the selected customers and, optionally, a random exploration group.

    Parameters
    ----------
    targeting_list : DataFrame
        The selected customers: an id column, their coupon and predicted uplift (the ``list`` of
        :func:`uplift.targeting.lists.targeting_list`). A list made with ``include_all=True`` carries its
        not-selected customers in the same frame (``selected == False``); they are used as ``not_selected``.
    holdout : float
        Share of the selected customers who do *not* get their coupon (strictly between 0 and 1).
    explore : float
        Share of the not-selected customers who get their best coupon anyway (0 = none).
    not_selected : DataFrame, optional
        Customers the model did not select, with the same id, coupon (their best coupon) and uplift columns.
    random_state : int
        Seed: the same list and seed give the same assignment.
    uplift_col, arm_col, id_col : str
        Column names of the predicted uplift, the coupon, and the customer id (default: the first column).
    base_rate : float, optional
        Conversion rate without a coupon among the selected customers (binary outcome), for the minimum
        detectable uplift.
    outcome_sd : float, optional
        Standard deviation of a continuous outcome (e.g. revenue per customer) instead of ``base_rate``.
    alpha, power : float
        Significance level and power of the planned sent-vs-holdout comparison.

    Returns
    -------
    list : DataFrame
        Every input row (selected first) with ``selected``, ``holdout`` (selected but kept back),
        ``explore`` (not selected but sent), ``send`` (gets the coupon), ``propensity`` (probability of
        being sent, by design) and ``uplift_decile`` (1-10 within its coupon among the selected, 1 = highest
        predicted uplift; -1 otherwise).
    summary : dict
        Group sizes, the predicted average uplift of the selected customers, the minimum detectable uplift
        (``mde``, per customer, and ``mde_total`` over the customers sent) and ``warning`` (a sentence when
        the holdout is too small to detect the predicted uplift, else None).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> tl = pd.DataFrame({"customer_id": range(5000), "coupon": "10off", "uplift": rng.uniform(0, 0.06, 5000)})
    >>> out, summary = assign_holdout(tl, holdout=0.1, base_rate=0.05)
    >>> int(out["holdout"].sum()), summary["n_sent"], round(float(out["propensity"].iloc[0]), 2)
    (500, 4500, 0.9)
    >>> summary["warning"] is None
    True
    """
    if not isinstance(holdout, int | float) or not 0 < holdout < 1:
        raise UpliftInputError(f"holdout must be a share strictly between 0 and 1 (e.g. 0.1), got {holdout!r}")
    if not isinstance(explore, int | float) or not 0 <= explore < 1:
        raise UpliftInputError(f"explore must be a share in [0, 1) (e.g. 0.02), got {explore!r}")
    if base_rate is not None and not 0 < base_rate < 1:
        raise UpliftInputError(f"base_rate must be a conversion rate strictly between 0 and 1, got {base_rate!r}")
    if outcome_sd is not None and not outcome_sd > 0:
        raise UpliftInputError(f"outcome_sd must be positive, got {outcome_sd!r}")
    if not isinstance(targeting_list, pd.DataFrame):
        raise UpliftInputError(f"targeting_list must be a pandas DataFrame, got {type(targeting_list).__name__}")
    id_col = id_col or str(targeting_list.columns[0])
    cols = [id_col, uplift_col, arm_col]

    selected = targeting_list
    if not_selected is None and "selected" in targeting_list.columns:
        flag = targeting_list["selected"].astype(bool).to_numpy()
        selected, not_selected = targeting_list[flag], (targeting_list[~flag] if (~flag).any() else None)
    _check_frame(selected, "targeting list", cols)
    if len(selected) == 0:
        raise UpliftInputError("the targeting list is empty: nobody was selected, so there is nothing to hold out")
    if not_selected is not None:
        _check_frame(not_selected, "not-selected customers", cols)
        both = pd.Index(selected[id_col]).intersection(pd.Index(not_selected[id_col]))
        if len(both):
            raise UpliftInputError(f"{len(both)} customer(s) are both selected and not selected (e.g. {both[0]!r}); "
                                   "pass each customer in one frame only")
    elif explore > 0:
        raise UpliftInputError("explore > 0 needs the customers the model did not select: pass not_selected=... "
                               "(or a targeting list made with include_all=True)")

    rng = np.random.default_rng(random_state)
    sel = selected.drop(columns=[c for c in DESIGN_COLUMNS if c in selected.columns])
    up = sel[uplift_col].to_numpy(dtype=float)
    arm_codes = pd.factorize(sel[arm_col], sort=True)[0]
    decile = uplift_deciles(up, arm_codes)
    held = _systematic([arm_codes, decile], holdout, rng)
    n_sel = len(sel)
    design = {"selected": np.ones(n_sel, dtype=bool), "holdout": held, "explore": np.zeros(n_sel, dtype=bool),
              "send": ~held, "propensity": np.full(n_sel, 1.0 - holdout), "uplift_decile": decile}
    rest = None
    if not_selected is not None:
        rest = not_selected.drop(columns=[c for c in DESIGN_COLUMNS if c in not_selected.columns])
        rest_codes = pd.factorize(rest[arm_col], sort=True)[0]
        rest_dec = uplift_deciles(rest[uplift_col].to_numpy(dtype=float), rest_codes)
        explored = _systematic([rest_codes, rest_dec], explore, rng)
        m = len(rest)
        rest_design = {"selected": np.zeros(m, dtype=bool), "holdout": np.zeros(m, dtype=bool),
                       "explore": explored, "send": explored, "propensity": np.full(m, float(explore)),
                       "uplift_decile": np.full(m, -1)}
        design = {k: np.concatenate([v, rest_design[k]]) for k, v in design.items()}
    frame = sel if rest is None else pd.concat([sel, rest], ignore_index=True)
    out = pd.concat([frame.reset_index(drop=True), pd.DataFrame(design)], axis=1)
    n_explore = int(out["explore"].sum())

    n_held = int(held.sum())
    n_sent = n_sel - n_held
    mean_up = float(up.mean())
    summary = {
        "n_selected": n_sel, "n_holdout": n_held, "n_sent": n_sent, "holdout_share": float(holdout),
        "n_not_selected": 0 if not_selected is None else len(not_selected), "n_explore": n_explore,
        "explore_share": float(explore), "n_coupons_sent": n_sent + n_explore,
        "holdout_by_coupon": {str(k): int(v) for k, v in zip(pd.factorize(sel[arm_col], sort=True)[1],
                                                             np.bincount(arm_codes, held), strict=True)},
        "predicted_uplift": mean_up, "predicted_incremental_outcome": float(up[~held].sum()),
        "alpha": alpha, "power": power, "base_rate": base_rate, "outcome_sd": outcome_sd,
        "mde": None, "mde_total": None, "warning": None, "random_state": random_state,
    }
    if base_rate is None and outcome_sd is None:
        summary["note"] = ("give base_rate (binary outcome) or outcome_sd (continuous) to compute the minimum "
                           "detectable uplift")
        return out, summary
    mde = minimum_detectable_uplift(n_sent, n_held, base_rate=base_rate, outcome_sd=outcome_sd,
                                    alpha=alpha, power=power)
    summary["mde"], summary["mde_total"] = mde, mde * n_sent
    if mean_up < mde:
        sd = outcome_sd if outcome_sd is not None else np.sqrt(base_rate * (1 - base_rate))
        need = required_holdout_share(n_sel, mean_up, sd, alpha=alpha, power=power)
        advice = (f"a holdout of about {need:.0%} would" if need is not None
                  else "no holdout share of this list would; target more customers or pool campaigns to")
        # in the outcome's display unit (pp for a conversion), as every table shows uplift
        unit = effect_unit("binary" if outcome_sd is None else "continuous")

        def shown(x: float) -> str:
            return fmt_ci(x, scale=unit.scale, unit=unit.short, digits=decimals(0, mde, unit.scale))

        summary["warning"] = (
            f"the holdout of {n_held:,} customers can only detect an average uplift of {shown(mde)} per customer "
            f"({power:.0%} power, {alpha:.0%} level) but the model predicts {shown(mean_up)}: {advice} detect it")
    return out, summary
