"""Targeting lists from a fitted result: who gets which coupon, what that is expected to earn, and the holdout
that lets the campaign measure itself.

:func:`targeting_list` scores the customers it is given with the fitted model (:meth:`FitResult.predict_uplift
<uplift.fit.result.FitResult.predict_uplift>`), allocates coupons under the budget with
:func:`uplift.targeting.allocation.allocate`, and attaches honest uncertainty: the expected value of the list
comes from the doubly-robust policy value of the *same rule* applied to the study's held-out (out-of-fold)
training rows, scaled to the number of customers scored. "Target everyone" and "random targeting at the same
budget" are estimated the same way, so the analyst sees what the model adds. ``Study.target``, the report, the
demo and ``uplift target`` all call it: the same customers give the same list from every entry point.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.data.campaign import check_ids
from uplift.errors import UpliftInputError
from uplift.fit.result import FitResult
from uplift.targeting.allocation import allocate, allocation_arms, baseline_policies, policy_value, profit_curve
from uplift.targeting.economics import costs_and_value, exclusion_mask
from uplift.targeting.holdout import assign_holdout


@dataclass
class TargetingResult:
    """A targeting list, its summary with 95% intervals, the profit curve and, when one was drawn, the holdout.

    Attributes
    ----------
    list : DataFrame
        The list in rank order (with ``holdout``/``explore``: the columns of
        :func:`uplift.targeting.holdout.assign_holdout` too).
    summary : dict
        The model's expectation for the list and the honest estimate with 95% CIs, next to the baselines.
    curve : DataFrame
        :func:`honest_profit_curve`: the doubly-robust profit on held-out rows, taken in the order and with the
        coupon the list's allocation gives them, with its 95% band and the model's expectation beside it; at the
        list's own size (marked) it is the list's honest value. Computed when first read (a plot or the report
        reads it): it has a row per training row, and at 14M rows it took ~2 GB that a list alone never needs.
    holdout : dict or None
        The summary of :func:`uplift.targeting.holdout.assign_holdout` (None without holdout or exploration).
    scores : DataFrame or None
        The customers' predicted uplift as :meth:`FitResult.predict_uplift
        <uplift.fit.result.FitResult.predict_uplift>` returned it, one row per customer given, in their order:
        what a drift check of the same customers reads (``FitResult.drift(customers, uplift=scores)``) instead
        of scoring them a second time.
    """

    list: pd.DataFrame
    summary: dict
    #: The curve, or what computes it on first read (:attr:`curve`).
    curve_of: pd.DataFrame | Callable[[], pd.DataFrame]
    holdout: dict | None = None
    scores: pd.DataFrame | None = None

    @property
    def curve(self) -> pd.DataFrame:
        """The honest profit curve (:func:`honest_profit_curve`), computed on first read and then kept."""
        if callable(self.curve_of):
            self.curve_of = self.curve_of()
        return self.curve_of


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


def honest_rule(result: FitResult, learner: str, costs: np.ndarray, value: float, *, n_list: int, n_selected: int,
                spend: float, min_roi: float | None = None, skip_extrapolated: bool = False) -> np.ndarray:
    """The list's rule applied to the study's out-of-fold training rows: the coupon column each row gets (−1: none).

    The rule is the list's at its size and spend, scaled to the training rows (not a budget it did not use):
    out-of-fold predictions spread wider than the fitted model's, so "everyone with positive profit" would
    otherwise pick another, larger list on the training rows than on the customers. The fast scorer imitates
    the chosen model, whose out-of-fold predictions stand in for it here. Both the list's honest value
    (:func:`list_summary`) and the honest profit curve (:func:`honest_profit_curve`) are valued on it.
    """
    train_up = result.oof_uplift(learner)
    n_train = len(train_up)
    factor = n_list / n_train
    if n_selected <= 0:
        return np.full(n_train, -1)
    inside = result.training_overlap() if skip_extrapolated else None
    return allocation_arms(train_up, costs, value, budget=spend / factor if spend > 0 else None,
                           max_customers=max(1, int(round(n_selected / factor))), min_roi=min_roi,
                           allow_negative=True, exclude=None if inside is None else ~inside)


def list_summary(result: FitResult, learner: str, costs: np.ndarray, value: float, *, n_list: int,
                 n_selected: int, spend: float, incremental_outcome: float, profit: float, by_coupon: Iterable[int],
                 budget: float | None = None, max_customers: int | None = None, min_roi: float | None = None,
                 allow_negative: bool = False, random_state: int = 0, skip_extrapolated: bool = False,
                 rule: np.ndarray | None = None) -> dict:
    """Summary of a targeting list of ``n_list`` scored customers: the model's expectation for the list
    (from its totals) and the honest estimate with 95% CIs, next to the baselines.

    The honest value is the doubly-robust policy value of the *same rule* (budget and customer cap scaled
    to the training size) on the study's out-of-fold training rows, scaled back to ``n_list`` customers.
    Shared by :func:`targeting_list` and :func:`uplift.spark.target_spark`, which only differ in how the
    list itself is computed.

    Parameters
    ----------
    result : FitResult
        The fitted study.
    learner : str
        The learner that scored the list (``"fast"``: the distilled scorer, valued as the model it imitates).
    costs, value
        From :func:`uplift.targeting.economics.costs_and_value`.
    n_list, n_selected, spend, incremental_outcome, profit, by_coupon
        Customers scored, customers on the list, and the list's totals (model-expected) and count per coupon.
    budget, max_customers, min_roi, allow_negative, random_state, skip_extrapolated
        The rule, as given to :func:`targeting_list` (``skip_extrapolated``: training rows outside the overlap,
        :meth:`FitResult.training_overlap <uplift.fit.result.FitResult.training_overlap>`, are never chosen).
    rule : int array, optional
        :func:`honest_rule` of these arguments, when the caller has it already (it is computed otherwise).

    Returns
    -------
    dict
    """
    cf = result.crossfit
    arms = result.arms
    spend = float(spend)
    n_selected = int(n_selected)
    if rule is None:
        rule = honest_rule(result, learner, costs, value, n_list=n_list, n_selected=n_selected, spend=spend,
                           min_roi=min_roi, skip_extrapolated=skip_extrapolated)
    factor = n_list / len(rule)
    honest = _scale(policy_value(cf.policy_dr, rule, costs, value), factor)
    del rule
    honest = _at_list_spend(honest, n_selected, spend, value)
    baselines = baseline_policies(cf.policy_dr, costs, value, budget=spend / factor if spend > 0 else None,
                                  random_state=random_state, arm_names=arms[1:])
    baselines = {k: _scale(v, factor) for k, v in baselines.items()}
    return {
        "customers_scored": n_list, "customers_selected": n_selected, "spend": spend,
        "budget": budget, "value_per_unit": value, "cost_per_coupon": dict(zip(arms[1:], costs.tolist(), strict=True)),
        "learner": learner,
        "model_expected": {"incremental_outcome": float(incremental_outcome),
                           "incremental_revenue": float(incremental_outcome * value),
                           "profit": float(profit), "roi": float(profit / spend) if spend > 0 else float("nan")},
        "estimated": honest, "baselines": baselines,
        "by_coupon": {arms[a + 1]: int(c) for a, c in enumerate(by_coupon)},
        "warning": profit_warning(honest, float(profit)),
        "method": "doubly-robust policy value of the same rule on out-of-fold training rows, at the list's size "
                  "and spend, scaled to this list",
    }


def _at_list_spend(honest: dict, n_selected: int, spend: float, value: float) -> dict:
    """The honest estimate with the list's own customers and spend (known exactly), profit and ROI re-derived."""
    out = dict(honest, n_selected=n_selected, spend=spend)
    se = out["incremental_outcome_se"] * value
    revenue = out["incremental_outcome"] * value
    z = (out["profit_upper"] - out["profit"]) / se if se > 0 else 0.0
    out.update(profit=revenue - spend, profit_lower=revenue - spend - z * se, profit_upper=revenue - spend + z * se)
    if spend > 0:
        roi, roi_se = revenue / spend - 1, se / spend
        out.update(roi=roi, roi_se=roi_se, roi_lower=roi - z * roi_se, roi_upper=roi + z * roi_se)
    return out


def profit_warning(estimated: dict, model_profit: float | None = None) -> str | None:
    """The sentence an analyst must read when the honest profit of a list may be zero or a loss (else None).

    Examples
    --------
    >>> print(profit_warning({"profit": -943.0, "profit_lower": -2593.0, "profit_upper": 708.0}, 68.0))
    ... # doctest: +NORMALIZE_WHITESPACE
    honest 95% interval of the profit includes zero (-943 [-2,593, 708]): the list may lose money,
    although the model expects +68
    >>> profit_warning({"profit": 500.0, "profit_lower": 100.0, "profit_upper": 900.0}) is None
    True
    """
    est, lo, hi = (float(estimated.get(k, np.nan)) for k in ("profit", "profit_lower", "profit_upper"))
    if not np.isfinite(hi) or lo > 0:
        return None
    what = "is below zero" if hi < 0 else "includes zero"
    consequence = "the list is expected to lose money" if hi < 0 else "the list may lose money"
    text = f"honest 95% interval of the profit {what} ({est:,.0f} [{lo:,.0f}, {hi:,.0f}]): {consequence}"
    if model_profit is not None and np.isfinite(model_profit) and model_profit > 0:
        text += f", although the model expects {model_profit:+,.0f}"
    return text


def honest_profit_curve(result: FitResult, learner: str, costs: np.ndarray, value: float, *, n_list: int,
                        n_selected: int, spend: float, min_roi: float | None = None,
                        skip_extrapolated: bool = False, rule: np.ndarray | None = None) -> pd.DataFrame:
    """Cumulative doubly-robust profit as the list grows, on the study's out-of-fold rows, with a 95% band.

    The rows are taken in the order and with the coupon the list's own allocation gives them
    (:func:`honest_rule`, the rule the list's honest value is computed from): first the rows the rule selects,
    in its list order (expected profit descending), then, beyond the budget, the others at their most
    profitable coupon, best first. Every point is valued with the held-out doubly-robust scores of those rows
    and has :func:`uplift.targeting.allocation.policy_value`'s interval; the model's own expectation
    (``expected_profit``) is computed along the same rows and coupons. Money and counts are scaled to
    ``n_list`` customers, like the list's summary, and up to the cut they are the list's own (its customers
    and spend, known exactly; the rule on the training rows spends within about one coupon of it), so at the
    cut the curve's value and band *are* the list's honest value (``summary["estimated"]``).

    Parameters
    ----------
    result, learner, costs, value, n_list, n_selected, spend, min_roi, skip_extrapolated
        As for :func:`list_summary`.
    rule : int array, optional
        :func:`honest_rule` of these arguments, when the caller has it already.

    Returns
    -------
    DataFrame
        :func:`uplift.targeting.allocation.profit_curve` columns with ``estimated_profit`` and its
        ``_lower``/``_upper`` band, and ``coupon`` (the coupon column each row gets). ``attrs["cutoff"]``: the
        row of the list (the budget cut); ``attrs["model_peak"]``: where the model's expected profit peaks;
        ``attrs["honest_peak"]``: where the honest estimate peaks.
    """
    up = result.oof_uplift(learner)
    dr = result.crossfit.policy_dr
    if rule is None:
        rule = honest_rule(result, learner, costs, value, n_list=n_list, n_selected=n_selected, spend=spend,
                           min_roi=min_roi, skip_extrapolated=skip_extrapolated)
    n = len(up)
    rows = np.arange(n)
    chosen = rule >= 0
    coupon = np.where(chosen, rule, np.argmax(up * value - costs, axis=1))
    profit = up[rows, coupon] * value - costs[coupon]
    # The list first (its own order: expected profit descending, ties by row), then the rest, best first.
    order = np.lexsort((rows, -profit, ~chosen))
    coupon = coupon[order]
    curve = profit_curve(up[order, coupon], costs[coupon], value, dr=dr[order, coupon], arm=coupon, ranked=True)
    curve["coupon"] = np.concatenate([[-1], coupon])
    cut = int(chosen.sum())
    factor = n_list / n
    money = ["cumulative_cost", "expected_profit", "estimated_profit", "estimated_profit_lower",
             "estimated_profit_upper"]
    curve[money] = curve[money] * factor
    # Up to the cut, the list's own spend and customers: the spend gap moves every profit column with it.
    spent = curve["cumulative_cost"].to_numpy()
    cost = _through(spent, cut, float(spend))
    curve[money[1:]] = curve[money[1:]].to_numpy() - (cost - spent)[:, None]
    curve["cumulative_cost"] = cost
    curve["n_targeted"] = np.round(_through(curve["n_targeted"].to_numpy() * factor, cut, n_selected)).astype(
        np.int64)
    curve["share_targeted"] = curve["n_targeted"] / max(n_list, 1)
    model_peak = int(curve.attrs["cutoff"])
    curve["within_cutoff"] = np.arange(len(curve)) <= cut
    curve.attrs.update(cutoff=cut, model_peak=model_peak, honest_peak=int(np.argmax(curve["estimated_profit"])),
                       scaled_to=n_list)
    return curve


def _through(running: np.ndarray, cut: int, at_cut: float) -> np.ndarray:
    """A running total made to pass through ``at_cut`` at row ``cut``: scaled up to it, shifted after it."""
    out = np.asarray(running, dtype=float).copy()
    here = out[cut]
    if here > 0:
        out[: cut + 1] *= at_cut / here
    else:
        out[: cut + 1] += np.linspace(0.0, at_cut - here, cut + 1)
    out[cut + 1:] += at_cut - here
    return out


def _share(name: str, share) -> float:
    if isinstance(share, bool) or not isinstance(share, int | float | np.floating) or not 0 <= share < 1:
        raise UpliftInputError(f"{name} must be a share in [0, 1) (e.g. 0.1), got {share!r}")
    return float(share)


def _control_rate(result: FitResult) -> float | None:
    """Conversion rate without a coupon (binary outcome), for the holdout's minimum detectable uplift."""
    if result.kind != "binary":
        return None
    ate = result.ate
    rows = ate[(ate["estimand"] == "ATE") & (ate["outcome"] == result.outcome)]
    return float(rows["control_mean"].iloc[0]) if len(rows) else None


def uplift_columns(result: FitResult) -> tuple[list[str], list[str], list[str]]:
    """Names of the per-coupon uplift columns of ``result.predict_uplift`` and of their lower and upper bounds
    (present when the learner gives per-customer intervals)."""
    return (result.uplift_columns(), *result.interval_columns())


def _customer_column(frame: pd.DataFrame, id_col: str | None, rows: np.ndarray) -> tuple[str, np.ndarray]:
    """Who a list row is: the id column, or the customer's row number when the study has no id."""
    if id_col and id_col in frame:
        return id_col, frame[id_col].to_numpy()[rows]
    return "row", rows


#: Decimals of every number in a written list file: 1e-6 is a ten-thousandth of a percentage point of uplift and
#: far below a cent, and the file reads ``0.3`` instead of ``0.30000000000000004``.
LIST_DECIMALS = 6


def list_for_file(frame: pd.DataFrame, path: str | os.PathLike, decimals: int = LIST_DECIMALS) -> pd.DataFrame:
    """The targeting list as written to ``path``. A CSV/TSV file is text that people open: every float column is
    rounded to ``decimals`` places there (``0.3``, not ``0.30000000000000004``). A Parquet file is read by
    programs and keeps full precision, as ``--json``, the API and a database table do. Ids, arms, flags and ranks
    are as they are.

    Examples
    --------
    >>> import pandas as pd
    >>> lst = pd.DataFrame({"id": ["007"], "cumulative_cost": [0.1 + 0.2], "rank": [1]})
    >>> list_for_file(lst, "targets.csv").to_dict("list")
    {'id': ['007'], 'cumulative_cost': [0.3], 'rank': [1]}
    >>> list_for_file(lst, "targets.parquet")["cumulative_cost"].tolist()
    [0.30000000000000004]
    """
    if os.fspath(path).lower().endswith((".parquet", ".pq")):
        return frame
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    return frame.assign(**{c: frame[c].round(decimals) for c in floats}) if floats else frame


def targeting_list(result: FitResult, customers: pd.DataFrame, *, cost: float | dict | Iterable,
                   value: float | None = None, budget: float | None = None, max_customers: int | None = None,
                   min_roi: float | None = None, exclude: Iterable | None = None, allow_negative: bool = False,
                   learner: str | None = None, include_all: bool = False, random_state: int = 0,
                   holdout: float = 0.0, explore: float = 0.0, skip_extrapolated: bool = False) -> TargetingResult:
    """Choose who gets which coupon, under a budget, with the expected result and its 95% interval.

    Parameters
    ----------
    result : FitResult
        A fitted study (``Study.result``, or :func:`uplift.persist.load_result` of a model directory).
    customers : DataFrame
        Customers to target, with the model's features (and the id column, when the study has one). They are
        scored with the fitted model; pass the training frame to target the study's own customers.
    cost : float, dict or list of "ARM=COST"
        Money per coupon sent.
    value : float, optional
        Money per unit of outcome (one conversion). Defaults to 1 for a continuous (revenue) outcome;
        required for a binary outcome.
    budget, max_customers, min_roi, allow_negative
        See :func:`uplift.targeting.allocation.allocate`.
    exclude : iterable of ids, optional
        Customers never to contact (needs the study's id column); matched as in
        :func:`uplift.targeting.economics.exclusion_mask`.
    learner : str, optional
        The fitted learner that scores the customers (default: the chosen one; ``"fast"``: its distilled scorer).
    include_all : bool
        Return every customer with a ``selected`` flag instead of only the chosen ones.
    random_state : int
        Seed of the random baseline, the holdout and the exploration.
    holdout : float
        Share of the selected customers kept back (no coupon) at random, stratified by coupon and uplift decile,
        to measure the campaign afterwards (:func:`uplift.targeting.holdout.assign_holdout`). 0: none.
    explore : float
        Share of the customers *not* selected who get their best coupon anyway (needs ``holdout`` > 0). The
        list then holds the selected customers and the explored ones (with ``include_all``: everyone).
    skip_extrapolated : bool
        Never select customers outside the study's overlap (``overlap`` False in :meth:`FitResult.predict_uplift
        <uplift.fit.result.FitResult.predict_uplift>`: their propensity says the study had almost only one arm
        among customers like them, so their uplift is an extrapolation). Observational studies only; the list
        carries the ``overlap`` column either way.

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
    >>> res = targeting_list(s.result, df, cost=0.5, value=40.0, budget=200.0, holdout=0.1)
    >>> res.summary["spend"] <= 200.0, res.holdout["n_holdout"] == int(res.list["holdout"].sum())
    (True, True)
    """
    holdout, explore = _share("holdout", holdout), _share("explore", explore)
    if explore > 0 and holdout == 0:
        raise UpliftInputError("explore needs a holdout as well (holdout > 0, e.g. 0.1): the readout measures the "
                               "list against its held-out customers")
    learner = learner or result.best_learner
    arms = result.arms
    costs, value = costs_and_value(result, cost, value)
    id_col = result.id_column
    if not isinstance(customers, pd.DataFrame):
        raise UpliftInputError(f"customers must be a pandas DataFrame, got {type(customers).__name__}")
    if id_col and id_col in customers.columns:
        check_ids(customers[id_col], id_col, customers, what="the customer file")  # blank or twice on a list
    mask = None
    if exclude is not None:
        if not id_col or id_col not in customers:
            raise UpliftInputError("an exclusion list needs the study's id column in the customer data")
        mask = exclusion_mask(customers[id_col], exclude)

    pred = result.predict_uplift(customers, learner=learner)
    if skip_extrapolated and "overlap" in pred:
        outside = ~pred["overlap"].to_numpy(dtype=bool)
        mask = outside if mask is None else mask | outside
    frame = customers.reset_index(drop=True)
    up_cols, lo_cols, hi_cols = uplift_columns(result)
    up = pred[up_cols].to_numpy()
    lo = hi = None
    if all(c in pred for c in lo_cols + hi_cols):  # per-customer intervals (e.g. causal_forest)
        lo, hi = pred[lo_cols].to_numpy(), pred[hi_cols].to_numpy()
    alloc = allocate(up, costs, value, budget=budget, max_customers=max_customers, min_roi=min_roi,
                     exclude=mask, allow_negative=allow_negative, lower=lo, upper=hi)

    n_list = len(up)
    # One rule on the training rows values both the list and its curve, so they agree at the cut.
    rule = honest_rule(result, learner, costs, value, n_list=n_list, n_selected=alloc.n_selected,
                       spend=alloc.total_cost, min_roi=min_roi, skip_extrapolated=skip_extrapolated)
    summary = list_summary(result, learner, costs, value, n_list=n_list, n_selected=alloc.n_selected,
                           spend=alloc.total_cost, incremental_outcome=alloc.total_incremental_outcome,
                           profit=alloc.total_profit,
                           by_coupon=[int((alloc.arm == a).sum()) for a in range(len(arms) - 1)],
                           budget=budget, max_customers=max_customers, min_roi=min_roi,
                           allow_negative=allow_negative, random_state=random_state,
                           skip_extrapolated=skip_extrapolated, rule=rule)

    frame_list = alloc.to_frame(list(arms[1:]))
    rows = frame_list["customer"].to_numpy()
    out = pd.DataFrame({"rank": frame_list["rank"].to_numpy() + 1})  # rank 1 = the first customer of the list
    out.insert(0, *_customer_column(frame, id_col, rows))
    out["coupon"] = frame_list["coupon"].to_numpy()
    out["uplift"] = frame_list["incremental_outcome"].to_numpy()
    if lo is not None:
        out["uplift_lower"] = frame_list["incremental_outcome_lower"].to_numpy()
        out["uplift_upper"] = frame_list["incremental_outcome_upper"].to_numpy()
    out["expected_incremental_conversions" if result.kind == "binary" else "expected_incremental_outcome"] = \
        out["uplift"]
    out["expected_incremental_revenue"] = out["uplift"] * value
    out["cost"] = frame_list["cost"].to_numpy()
    out["expected_profit"] = frame_list["profit"].to_numpy()
    out["cumulative_cost"] = frame_list["cumulative_cost"].to_numpy()
    if "overlap" in pred:
        out["overlap"] = pred["overlap"].to_numpy()[rows]
    if include_all or explore > 0:  # exploration draws from the customers not selected
        out["selected"] = True
        rest = np.setdiff1d(np.arange(n_list), rows)
        best = up[rest].argmax(axis=1) if len(rest) else np.array([], dtype=int)
        extra = pd.DataFrame({"rank": np.full(len(rest), -1)})
        extra.insert(0, *_customer_column(frame, id_col, rest))
        extra["coupon"] = np.asarray(arms[1:], dtype=object)[best]
        extra["uplift"] = up[rest, best] if len(rest) else []
        extra["expected_profit"] = extra["uplift"] * value - costs[best]
        extra["selected"] = False
        if "overlap" in pred:
            extra["overlap"] = pred["overlap"].to_numpy()[rest]
        out = pd.concat([out, extra], ignore_index=True)

    design = None
    if holdout > 0:
        out, design = assign_holdout(out, holdout=holdout, explore=explore, random_state=random_state,
                                     id_col=out.columns[0], base_rate=_control_rate(result))
        if not include_all:
            out = out[out["selected"] | out["send"]].reset_index(drop=True)

    # The curve when read; the rule it follows is kept in the list's smallest integer type meanwhile.
    curve = functools.partial(honest_profit_curve, result, learner, costs, value, n_list=n_list,
                              n_selected=alloc.n_selected, spend=alloc.total_cost,
                              rule=rule.astype(np.min_scalar_type(-max(len(arms), 2)), copy=False))
    del rule
    return TargetingResult(out, summary, curve, design, scores=pred)
