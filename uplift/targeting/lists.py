"""Targeting lists from a fitted study: who gets which coupon, and what that is expected to earn.

:func:`targeting_list` scores customers with the study's chosen model, allocates coupons under the
budget with :func:`uplift.targeting.allocation.allocate`, and attaches honest uncertainty: the expected value of
the list comes from the doubly-robust policy value of the *same rule* applied to the study's held-out
(out-of-fold) training rows, scaled to the number of customers scored. "Target everyone" and "random
targeting at the same budget" are estimated the same way, so the analyst sees what the model adds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.errors import UpliftInputError
from uplift.fit.distill import FAST
from uplift.targeting import allocation as targeting


@dataclass
class TargetingResult:
    """A targeting list, its summary with 95% intervals, and the profit curve."""

    list: pd.DataFrame
    summary: dict
    curve: pd.DataFrame


def parse_costs(cost: float | dict[str, float] | Iterable, arms: tuple[str, ...]) -> np.ndarray:
    """Cost per treated arm from one number, a dict ``{arm: cost}`` or ``["arm=cost", ...]`` strings."""
    treated = arms[1:]
    if isinstance(cost, int | float | np.floating):
        return np.full(len(treated), float(cost))
    if not isinstance(cost, dict):
        items = list(cost)
        if len(items) == 1 and "=" not in str(items[0]):
            try:
                return parse_costs(float(items[0]), arms)
            except ValueError:
                raise UpliftInputError(
                    f"cost {items[0]!r} is not a number; give one number or ARM=COST pairs") from None
        cost = {}
        for item in items:
            if "=" not in str(item):
                raise UpliftInputError(f"cost {item!r}: give one number for every coupon or ARM=COST pairs")
            name, value = str(item).split("=", 1)
            try:
                cost[name.strip()] = float(value)
            except ValueError:
                raise UpliftInputError(f"cost {item!r}: {value!r} is not a number") from None
    missing = [a for a in treated if a not in cost]
    unknown = [a for a in cost if a not in treated]
    if unknown:
        raise UpliftInputError(f"cost given for unknown coupon {unknown[0]!r}; coupons: {', '.join(treated)}")
    if missing:
        raise UpliftInputError(f"no cost given for coupon {missing[0]!r}; give ARM=COST for every coupon")
    return np.array([float(cost[a]) for a in treated])


def _scale(d: dict, factor: float) -> dict:
    keys = ("incremental_outcome", "incremental_revenue", "profit", "spend")
    out = dict(d)
    for k in keys:
        for suffix in ("", "_se", "_lower", "_upper"):
            if k + suffix in out and out[k + suffix] is not None:
                out[k + suffix] = out[k + suffix] * factor
    # Counts too, so every figure of a policy is on the scale of the scored customers.
    for k in ("n_selected", "n_rows"):
        if out.get(k) is not None:
            out[k] = int(round(out[k] * factor))
    return out


def money(study, cost: float | dict | Iterable, value: float | None) -> tuple[np.ndarray, float]:
    """Cost per coupon (one per treated arm) and money per unit of outcome, checked against the study.

    ``value`` defaults to 1 for a continuous (revenue) outcome and is required for a binary one.
    """
    costs = parse_costs(cost, study.arms)
    if value is None:
        if study.crossfit_.kind == "binary":
            raise UpliftInputError("give the value of one conversion (value=..., CLI --value) "
                                   "to turn uplift into money")
        value = 1.0
    if value <= 0:
        raise UpliftInputError(f"value must be positive, got {value}")
    return costs, value


def list_summary(study, learner: str, costs: np.ndarray, value: float, *, n_list: int, n_selected: int,
                 spend: float, incremental_outcome: float, profit: float, by_coupon: Iterable[int],
                 budget: float | None = None, max_customers: int | None = None, min_roi: float | None = None,
                 allow_negative: bool = False, random_state: int = 0) -> dict:
    """Summary of a targeting list of ``n_list`` scored customers: the model's expectation for the list
    (from its totals) and the honest estimate with 95% CIs, next to the baselines.

    The honest value is the doubly-robust policy value of the *same rule* (budget and customer cap scaled
    to the training size) on the study's out-of-fold training rows, scaled back to ``n_list`` customers.
    Shared by :func:`targeting_list` and :func:`uplift.spark.target_spark`, which only differ in how the
    list itself is computed.
    """
    cf = study.crossfit_
    arms = study.arms
    # Honest value: the same rule on held-out training rows (their out-of-fold uplift and DR scores). The fast
    # scorer imitates the chosen model, whose out-of-fold predictions stand in for it here.
    train_up = cf.uplift[study.best_learner_ if learner == FAST else learner]
    n_train = len(train_up)
    factor = n_list / n_train
    train_budget = None if budget is None else budget / factor
    train_cap = None if max_customers is None else max(1, int(round(max_customers / factor)))
    rule = targeting.allocation_arms(train_up, costs, value, budget=train_budget, max_customers=train_cap,
                                     min_roi=min_roi, allow_negative=allow_negative)
    honest = _scale(targeting.policy_value(cf.policy_dr, rule, costs, value), factor)
    del rule
    spend = float(spend)
    baselines = targeting.baseline_policies(cf.policy_dr, costs, value, budget=train_budget if budget else None,
                                            random_state=random_state, arm_names=arms[1:])
    baselines = {k: _scale(v, factor) for k, v in baselines.items()}
    return {
        "customers_scored": n_list, "customers_selected": int(n_selected), "spend": spend,
        "budget": budget, "value_per_unit": value, "cost_per_coupon": dict(zip(arms[1:], costs.tolist(), strict=True)),
        "learner": learner,
        "model_expected": {"incremental_outcome": float(incremental_outcome),
                           "incremental_revenue": float(incremental_outcome * value),
                           "profit": float(profit), "roi": float(profit / spend) if spend > 0 else float("nan")},
        "estimated": honest, "baselines": baselines,
        "by_coupon": {arms[a + 1]: int(c) for a, c in enumerate(by_coupon)},
        "method": "doubly-robust policy value of the same rule on out-of-fold training rows, scaled to this list",
    }


def targeting_list(study, data: pd.DataFrame | None = None, *, cost: float | dict | Iterable = 0.0,
                   value: float | None = None, budget: float | None = None, max_customers: int | None = None,
                   min_roi: float | None = None, exclude: Iterable | None = None, allow_negative: bool = False,
                   learner: str | None = None, include_all: bool = False, random_state: int = 0) -> TargetingResult:
    """Choose who gets which coupon, under a budget, with the expected result and its 95% interval.

    Parameters
    ----------
    study : Study
        A fitted study.
    data : DataFrame, optional
        Customers to target. Default: the study's own customers, scored out of fold.
    cost : float, dict or list of "ARM=COST"
        Money per coupon sent.
    value : float, optional
        Money per unit of outcome (one conversion). Defaults to 1 for a continuous (revenue) outcome;
        required for a binary outcome.
    budget, max_customers, min_roi, allow_negative
        See :func:`uplift.targeting.allocation.allocate`.
    exclude : iterable of ids, optional
        Customers never to contact (needs the study's id column).
    include_all : bool
        Return every customer with a ``selected`` flag instead of only the chosen ones.

    Returns
    -------
    TargetingResult

    Examples
    --------
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(4000, seed=2)
    >>> truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    >>> s = Study(df, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"]).fit(
    ...     learners=["t"], n_folds=3, n_boot=20)
    >>> res = s.target(cost=0.5, value=40.0, budget=200.0)
    >>> res.summary["spend"] <= 200.0
    True
    """
    cf = study.crossfit_
    learner = learner or study.best_learner_
    arms = study.arms
    costs, value = money(study, cost, value)
    id_col = study.roles.get("id")

    if data is None:
        frame = study._training_data().frame
        up = cf.uplift[study.best_learner_ if learner == FAST else learner]
        lo = hi = None
    else:
        if id_col and id_col in data.columns and data[id_col].duplicated().any():
            dup = data[id_col][data[id_col].duplicated()].iloc[0]
            raise UpliftInputError(f"id column {id_col!r} has a duplicate customer {dup!r} in the customer file; "
                                   "a customer can be on a targeting list only once")
        pred = study.predict_uplift(data, learner=learner)
        frame = data.reset_index(drop=True)
        treated = arms[1:]
        if len(treated) == 1:
            up = pred[["uplift"]].to_numpy()
            bounds = ["uplift_lower", "uplift_upper"]
        else:
            up = pred[[f"uplift_{a}" for a in treated]].to_numpy()
            bounds = [f"uplift_{a}_lower" for a in treated] + [f"uplift_{a}_upper" for a in treated]
        lo = hi = None
        if all(b in pred for b in bounds):
            k = len(treated)
            both = pred[bounds].to_numpy()
            lo, hi = both[:, :k], both[:, k:]

    mask = None
    if exclude is not None:
        if not id_col or id_col not in frame:
            raise UpliftInputError("an exclusion list needs the study's id column in the customer data")
        excluded = pd.Index(pd.Series(list(exclude)).astype(str))
        mask = frame[id_col].astype(str).isin(excluded).to_numpy()
    alloc = targeting.allocate(up, costs, value, budget=budget, max_customers=max_customers, min_roi=min_roi,
                               exclude=mask, allow_negative=allow_negative, lower=lo, upper=hi)

    n_list = len(up)
    summary = list_summary(study, learner, costs, value, n_list=n_list, n_selected=alloc.n_selected,
                           spend=alloc.total_cost, incremental_outcome=alloc.total_incremental_outcome,
                           profit=alloc.total_profit,
                           by_coupon=[int((alloc.arm == a).sum()) for a in range(len(arms) - 1)],
                           budget=budget, max_customers=max_customers, min_roi=min_roi,
                           allow_negative=allow_negative, random_state=random_state)

    frame_list = alloc.to_frame(list(arms[1:]))
    rows = frame_list["customer"].to_numpy()
    out = pd.DataFrame({"rank": frame_list["rank"].to_numpy()})
    if id_col and id_col in frame:
        out.insert(0, id_col, frame[id_col].to_numpy()[rows])
    else:
        out.insert(0, "row", rows)
    out["coupon"] = frame_list["coupon"].to_numpy()
    out["uplift"] = frame_list["incremental_outcome"].to_numpy()
    if lo is not None:
        out["uplift_lower"] = frame_list["incremental_outcome_lower"].to_numpy()
        out["uplift_upper"] = frame_list["incremental_outcome_upper"].to_numpy()
    out["expected_incremental_conversions" if cf.kind == "binary" else "expected_incremental_outcome"] = out["uplift"]
    out["expected_incremental_revenue"] = out["uplift"] * value
    out["cost"] = frame_list["cost"].to_numpy()
    out["expected_profit"] = frame_list["profit"].to_numpy()
    out["cumulative_cost"] = frame_list["cumulative_cost"].to_numpy()
    if include_all:
        out["selected"] = True
        rest = np.setdiff1d(np.arange(n_list), rows)
        best = up[rest].argmax(axis=1) if len(rest) else np.array([], dtype=int)
        extra = pd.DataFrame({"rank": np.full(len(rest), -1)})
        if id_col and id_col in frame:
            extra.insert(0, id_col, frame[id_col].to_numpy()[rest])
        else:
            extra.insert(0, "row", rest)
        extra["coupon"] = np.asarray(arms[1:], dtype=object)[best]
        extra["uplift"] = up[rest, best] if len(rest) else []
        extra["expected_profit"] = extra["uplift"] * value - costs[best]
        extra["selected"] = False
        out = pd.concat([out, extra], ignore_index=True)

    best_arm = np.where(alloc.arm >= 0, alloc.arm, up.argmax(axis=1))
    curve = targeting.profit_curve(up[np.arange(n_list), best_arm], costs[best_arm], value)
    return TargetingResult(out, summary, curve)
