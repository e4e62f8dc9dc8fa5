"""Campaign readout: what did the targeting list actually cause, and was the model right?

After a campaign sent with :func:`uplift.targeting.holdout.assign_holdout`, :func:`readout` joins the observed outcomes
to the sent list and compares the customers who got their coupon with the randomly held-out ones. Because the
holdout is random, the difference in means is an unbiased estimate of the average effect among the selected
customers; scaled to the number sent it is the realised incremental outcome, with a 95% interval from the
Neyman variance (each group's variance smoothed by one pseudo-conversion, so a small holdout with few
conversions does not get a falsely narrow interval). The same comparison per coupon and per predicted-uplift
decile sits next to the model's prediction (calibration). Exploration rows (not selected, sent at random with
a known probability) give an inverse-probability-weighted estimate of what the coupon would have done for the
customers left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift._stats import z_for_alpha
from uplift.errors import UpliftInputError
from uplift.targeting.holdout import N_DECILES, uplift_deciles


def _figures(est: float, se: float, z: float, name: str) -> dict:
    return {name: est, f"{name}_se": se, f"{name}_lower": est - z * se, f"{name}_upper": est + z * se}


def _bounds(est: np.ndarray, se: np.ndarray, z: float, name: str) -> dict:
    return {name: est, f"{name}_lower": est - z * se, f"{name}_upper": est + z * se}


def _keys(col: pd.Series) -> np.ndarray:
    """Ids as comparable values: 17, 17.0 and "17" are the same customer (CSV round trips change types)."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        if np.all(np.isfinite(values) & (np.mod(values, 1) == 0)):
            return values.astype(np.int64)
    return np.asarray([str(v).strip() for v in col.to_numpy(dtype=object)], dtype=object)


def _match(list_keys: np.ndarray, res_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each list id in the results (-1 if absent), and which result ids the list lacks."""
    if list_keys.dtype != res_keys.dtype:  # e.g. numeric ids in one file, text in the other
        list_keys = np.asarray([str(v) for v in list_keys], dtype=object)
        res_keys = np.asarray([str(v) for v in res_keys], dtype=object)
    rows = pd.Index(res_keys).get_indexer(list_keys)
    unknown = pd.Index(list_keys).get_indexer(res_keys) < 0
    return rows, unknown


def hajek(y: np.ndarray, sent: np.ndarray, propensity: np.ndarray) -> tuple[float, float]:
    """Inverse-probability-weighted (Hájek) effect of being sent, and its influence-function standard error.

    With a constant propensity this is the difference in means with (almost exactly) the Neyman standard
    error; with known per-row propensities it stays unbiased where the plain difference would not.

    Examples
    --------
    >>> import numpy as np
    >>> est, se = hajek(np.array([1., 0., 1., 1.]), np.array([True, False, False, True]), np.full(4, 0.5))
    >>> round(est, 3)
    0.5
    """
    w1 = np.where(sent, 1.0 / propensity, 0.0)
    w0 = np.where(sent, 0.0, 1.0 / (1.0 - propensity))
    mu1 = (w1 * y).sum() / w1.sum()
    mu0 = (w0 * y).sum() / w0.sum()
    phi = w1 * (y - mu1) / w1.mean() - w0 * (y - mu0) / w0.mean()
    return float(mu1 - mu0), float(phi.std(ddof=1) / np.sqrt(len(y)))


def _group_effects(y: np.ndarray, sent: np.ndarray, groups: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Per group: sizes, sent-minus-holdout difference in means and its Neyman standard error.

    Each arm's outcome variance is estimated as that of "converts with probability p, then spends an
    amount": p from the arm's share of nonzero outcomes plus one pseudo-conversion and one pseudo-non-
    conversion (Agresti-Caffo), the amount's first two moments pooled over both arms of the group. For a 0/1
    outcome this is exactly the Agresti-Caffo variance. A holdout with a handful of conversions would
    otherwise get a falsely narrow interval (or none at all a zero-width one), and a handful of heavy-tailed
    order values a variance that is usually too small.
    """
    hit = y != 0
    glob = (y[hit].mean(), (y[hit] ** 2).mean()) if hit.any() else (0.0, 0.0)
    k = np.bincount(groups[hit], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = np.where(k > 0, np.bincount(groups[hit], y[hit], minlength=n_groups) / k, glob[0])
        m2 = np.where(k > 0, np.bincount(groups[hit], y[hit] ** 2, minlength=n_groups) / k, glob[1])
    out = {}
    for name, mask in (("s", sent), ("h", ~sent)):
        g, v = groups[mask], y[mask]
        n = np.bincount(g, minlength=n_groups).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(g, v, minlength=n_groups) / n
        share = (np.bincount(g, v != 0, minlength=n_groups) + 1) / (n + 2)
        out[f"n_{name}"], out[f"mean_{name}"] = n, mean
        out[f"var_{name}"] = np.maximum(share * m2 - (share * m1) ** 2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["diff"] = out["mean_s"] - out["mean_h"]
        out["se"] = np.sqrt(out["var_s"] / out["n_s"] + out["var_h"] / out["n_h"])
    return out


def _total(eff: dict[str, np.ndarray], weight: np.ndarray) -> tuple[float, float]:
    """Weighted sum of the groups' effects and its standard error (groups are independent strata)."""
    ok = (eff["n_s"] > 0) & (eff["n_h"] > 0)
    return float((weight * eff["diff"])[ok].sum()), float(np.sqrt(((weight * eff["se"]) ** 2)[ok].sum()))


def _table(labels, key: str, up: np.ndarray, y: np.ndarray, rev: np.ndarray | None, cost: np.ndarray | None,
           sent: np.ndarray, groups: np.ndarray, z: float, kind: str) -> pd.DataFrame:
    """Predicted vs realised uplift per group, with realised totals scaled to each group's number sent."""
    k = len(labels)
    eff = _group_effects(y, sent, groups, k)
    n_s = eff["n_s"]
    cols = {key: list(labels), "n_sent": n_s.astype(int), "n_holdout": eff["n_h"].astype(int),
            "predicted_uplift": np.bincount(groups, up, minlength=k) / np.bincount(groups, minlength=k)}
    cols |= _bounds(eff["diff"], eff["se"], z, "realised_uplift")
    cols["holdout_mean"] = eff["mean_h"]
    name = "incremental_conversions" if kind == "binary" else "incremental_outcome"
    cols[f"predicted_{name}"] = np.bincount(groups[sent], up[sent], minlength=k)
    cols |= _bounds(eff["diff"] * n_s, eff["se"] * n_s, z, name)
    if rev is not None:
        r = _group_effects(rev, sent, groups, k)
        cols |= _bounds(r["diff"] * n_s, r["se"] * n_s, z, "incremental_revenue")
        if cost is not None:
            spend = np.bincount(groups[sent], cost[sent], minlength=k)
            cols["spend"] = spend
            with np.errstate(invalid="ignore", divide="ignore"):
                for sfx in ("", "_lower", "_upper"):
                    cols[f"profit{sfx}"] = cols[f"incremental_revenue{sfx}"] - spend
                for sfx in ("", "_lower", "_upper"):
                    cols[f"roi{sfx}"] = np.where(spend > 0, cols[f"profit{sfx}"] / spend, np.nan)
    return pd.DataFrame(cols)


_TRUE, _FALSE = ("true", "1", "1.0", "yes", "y", "t"), ("false", "0", "0.0", "no", "n", "f")


def _flag(col: pd.Series, name: str) -> np.ndarray:
    """A yes/no column as booleans; text from a CSV ("True", "0", "yes") is read, anything else refused."""
    if pd.api.types.is_bool_dtype(col) and not col.isna().any():
        return col.to_numpy(dtype=bool)
    text = col.astype(str).str.strip().str.lower()
    ok = text.isin(_TRUE + _FALSE)
    if not ok.all():
        raise UpliftInputError(f"column {name!r} of the sent list must be true/false; row {int(np.argmin(ok))} "
                               f"holds {col[~ok].iloc[0]!r}")
    return text.isin(_TRUE).to_numpy()


def _fill_cost(cost: np.ndarray, arms: np.ndarray, selected: np.ndarray, notes: list[str]) -> np.ndarray:
    """Not-selected rows of a targeting list carry no cost; take their coupon's price from the selected rows."""
    gaps = np.isnan(cost) & ~selected
    if not gaps.any():
        return cost
    prices = pd.Series(cost[selected]).groupby(arms[selected]).agg(["min", "max"])
    fixed = prices[prices["min"] == prices["max"]]["min"]
    filled = cost.copy()
    filled[gaps] = pd.Series(arms[gaps]).map(fixed).to_numpy(dtype=float, na_value=np.nan)
    notes.append(f"cost of {int((gaps & ~np.isnan(filled)).sum())} not-selected customer(s) taken from the price of "
                 "their coupon on the selected list")
    return filled


def _validate(sent_list: pd.DataFrame, results: pd.DataFrame, id_col: str, outcome: str,
              revenue: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    for frame, name, cols in ((sent_list, "sent list", [id_col, "send", "holdout"]),
                              (results, "results", [id_col, outcome] + ([revenue] if revenue else []))):
        if not isinstance(frame, pd.DataFrame):
            raise UpliftInputError(f"the {name} must be a pandas DataFrame, got {type(frame).__name__}")
        for col in cols:
            if col not in frame.columns:
                hint = (" (make the list with uplift.targeting.holdout.assign_holdout / `uplift holdout`)"
                        if name == "sent list" and col in ("send", "holdout") else "")
                raise UpliftInputError(f"the {name} has no column {col!r}{hint}; "
                                       f"columns: {', '.join(map(str, frame.columns[:20]))}")
        ids = frame[id_col]
        if ids.isna().any():
            raise UpliftInputError(f"the {name} has {int(ids.isna().sum())} missing id(s) in column {id_col!r}")
        dup = pd.Series(_keys(ids)).duplicated()
        if dup.any():
            raise UpliftInputError(f"the {name} has {int(dup.sum())} duplicated id(s) in column {id_col!r} "
                                   f"(e.g. {ids[dup.to_numpy()].iloc[0]!r}); keep one row per customer")
    return sent_list.reset_index(drop=True), results.reset_index(drop=True)


def _outcome_values(results: pd.DataFrame, col: str, rows: np.ndarray, list_ids: pd.Series) -> np.ndarray:
    values = pd.to_numeric(results[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = (rows >= 0) & ~np.isfinite(values[np.maximum(rows, 0)])
    if bad.any():
        first = list_ids[bad].iloc[0]
        raise UpliftInputError(f"results column {col!r} is missing or not a number for {int(bad.sum())} customer(s) "
                               f"of the list (e.g. id {first!r}); fill them (0 if nothing was bought) and rerun")
    return values[np.maximum(rows, 0)]


def older_list_convention(deciles: np.ndarray, uplift: np.ndarray, groups: np.ndarray,
                          rank: np.ndarray | None = None) -> bool:
    """Whether a list's ``uplift_decile`` values (of its selected customers) follow the convention of lists
    written before uplift 0.1's one convention: ``0``-``9`` with 9 = highest predicted uplift (and ``rank`` from 0),
    instead of ``1``-``10`` with 1 = highest (``rank`` from 1).

    A ``0`` decile or a ``rank`` starting at 0 can only be the older convention, a ``10`` decile only today's;
    a short list that holds neither is read by direction: the older deciles rise with the predicted uplift of
    their coupon, today's fall.

    Examples
    --------
    >>> import numpy as np
    >>> up, groups = np.arange(20.0), np.zeros(20)
    >>> older_list_convention(np.repeat(np.arange(10), 2), up, groups)      # 0-9, 9 = highest
    True
    >>> older_list_convention(np.repeat(np.arange(10, 0, -1), 2), up, groups)  # 1-10, 1 = highest
    False
    >>> older_list_convention(np.repeat(np.arange(1, 9), 2), up[:16], groups[:16])  # 1-8: read by direction
    True
    """
    deciles = np.asarray(deciles, dtype=float)
    if (deciles == 0).any():
        return True
    if (deciles == 10).any():
        return False
    if rank is not None and len(rank) and np.isfinite(rank).any():
        return bool(np.nanmin(rank) == 0)
    ok = np.isfinite(deciles) & np.isfinite(uplift)
    if ok.sum() < 2:
        return False
    # within each coupon, the direction of decile against predicted uplift
    frame = pd.DataFrame({"g": np.asarray(groups)[ok], "d": deciles[ok], "u": np.asarray(uplift, float)[ok]})
    frame["d"] -= frame.groupby("g")["d"].transform("mean")
    frame["u"] -= frame.groupby("g")["u"].transform("mean")
    return bool((frame["d"] * frame["u"]).sum() > 0)


def _list_deciles(sent_list: pd.DataFrame, t: np.ndarray, uplift: np.ndarray, groups: np.ndarray,
                  notes: list[str]) -> np.ndarray:
    """The predicted-uplift decile (1 = highest) of each targeted customer, as the list recorded it: a list of an
    older version (0-9, 9 = highest) is translated, not read backwards; without the column they are recomputed."""
    if "uplift_decile" not in sent_list.columns:
        return uplift_deciles(uplift, groups)
    dec = pd.to_numeric(sent_list["uplift_decile"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[t]
    if np.isnan(dec).any() or not np.isin(dec, np.arange(0, N_DECILES + 1)).all():
        return uplift_deciles(uplift, groups)
    rank = (pd.to_numeric(sent_list["rank"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[t]
            if "rank" in sent_list.columns else None)
    if older_list_convention(dec, uplift, groups, rank):
        notes.append("the sent list was written by an older version (uplift_decile 9 = highest, rank from 0); its "
                     "deciles are read as 1 = highest, as in every table now")
        dec = N_DECILES - dec
    return dec.astype(int)


def readout(sent_list: pd.DataFrame, results: pd.DataFrame, *, id_col: str, outcome: str,
            revenue: str | None = None, value: float | None = None, cost_col: str = "cost",
            uplift_col: str = "uplift", arm_col: str = "coupon", alpha: float = 0.05) -> dict:
    """Realised incremental outcome, revenue, profit and ROI of a sent targeting list, with 95% intervals.

    Parameters
    ----------
    sent_list : DataFrame
        The list from :func:`uplift.targeting.holdout.assign_holdout` (columns ``send``, ``holdout``, ``selected``,
        ``propensity``, the coupon, the predicted uplift and, optionally, the cost per coupon).
    results : DataFrame
        Observed outcomes: one row per customer of the list, joined by ``id_col``.
    id_col : str
        Customer id column, present in both frames.
    outcome : str
        Outcome column in ``results`` (0/1 conversion, or a continuous outcome such as spend).
    revenue : str, optional
        Revenue column in ``results``; its incremental amount is estimated directly.
    value : float, optional
        Money per unit of outcome, used for revenue when no ``revenue`` column is given (default 1 for a
        continuous outcome; none for a binary one, which then gets no revenue, profit or ROI).
    cost_col : str
        Cost of each coupon in ``sent_list``; without it spend, profit and ROI are not reported.
    uplift_col, arm_col : str
        Predicted uplift and coupon columns of ``sent_list``.
    alpha : float
        1 − confidence level of the intervals.

    Returns
    -------
    dict
        ``summary`` (dict: the targeted group's realised vs predicted incremental outcome, revenue, spend,
        profit, ROI, each with ``_se``/``_lower``/``_upper``), ``by_coupon`` and ``by_decile`` (DataFrames:
        predicted vs realised uplift per coupon / predicted-uplift decile), ``calibration`` (the decile
        comparison alone), ``exploration`` (dict: IPW effect among the not-selected customers, or None) and
        ``notes`` (list of str).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from uplift.targeting.holdout import assign_holdout
    >>> rng = np.random.default_rng(1)
    >>> tl = pd.DataFrame({"id": range(4000), "coupon": "c", "uplift": rng.uniform(0, .1, 4000), "cost": 1.0})
    >>> sent, _ = assign_holdout(tl, holdout=0.2)
    >>> p = 0.05 + np.where(sent["send"], sent["uplift"], 0.0)
    >>> res = pd.DataFrame({"id": sent["id"], "bought": (rng.random(4000) < p).astype(int)})
    >>> out = readout(sent, res, id_col="id", outcome="bought", value=30.0)
    >>> lo, hi = out["summary"]["incremental_conversions_lower"], out["summary"]["incremental_conversions_upper"]
    >>> bool(lo < float(sent.loc[sent["send"], "uplift"].sum()) < hi)
    True
    """
    if not 0 < alpha < 1:
        raise UpliftInputError(f"alpha must be between 0 and 1, got {alpha!r}")
    if value is not None and not value > 0:
        raise UpliftInputError(f"value must be positive, got {value!r}")
    sent_list, results = _validate(sent_list, results, id_col, outcome, revenue)
    z = z_for_alpha(alpha)
    notes: list[str] = []

    rows, unknown = _match(_keys(sent_list[id_col]), _keys(results[id_col]))
    if unknown.any():
        raise UpliftInputError(f"results hold {int(unknown.sum())} id(s) that were never in the sent list (e.g. "
                               f"{results[id_col][unknown].iloc[0]!r}); read out each campaign against "
                               "its own list")
    absent = rows < 0
    if absent.any():
        raise UpliftInputError(f"{int(absent.sum())} of {len(sent_list)} customers of the list have no row in the "
                               f"results (e.g. id {sent_list[id_col][absent].iloc[0]!r}); add them (0 for no "
                               "conversion) so that none is silently dropped")
    y = _outcome_values(results, outcome, rows, sent_list[id_col])
    kind = "binary" if np.isin(y, (0.0, 1.0)).all() else "continuous"
    rev = _outcome_values(results, revenue, rows, sent_list[id_col]) if revenue else None
    if rev is None and (value is not None or kind == "continuous"):
        rev = y * (1.0 if value is None else value)
        if value is None:
            notes.append(f"revenue taken as the outcome {outcome!r} itself (value 1 per unit)")
    elif rev is None:
        notes.append("no revenue column or value per conversion given: revenue, profit and ROI are not reported")

    send, held = _flag(sent_list["send"], "send"), _flag(sent_list["holdout"], "holdout")
    selected = (_flag(sent_list["selected"], "selected") if "selected" in sent_list.columns
                else np.ones(len(sent_list), dtype=bool))
    if (held & send).any() or (held & ~selected).any():
        raise UpliftInputError("the sent list marks customers as both held out and sent (or held out but not "
                               "selected); use the list exactly as assign_holdout returned it")
    targeted = selected & (send | held)
    n_sent, n_held = int((targeted & send).sum()), int(held.sum())
    if n_held == 0:
        raise UpliftInputError("the sent list has no holdout customers, so the campaign's effect cannot be "
                               "measured; keep a random holdout next time (assign_holdout(holdout=0.1))")
    if n_sent == 0:
        raise UpliftInputError("nobody on the selected list was sent the coupon; there is nothing to read out")
    if uplift_col not in sent_list.columns:
        raise UpliftInputError(f"the sent list has no predicted uplift column {uplift_col!r}")
    up = pd.to_numeric(sent_list[uplift_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    # A list says which outcome its model predicted (targeting_list names the column); a revenue model's uplift
    # (money) read out on conversions would show as "+250 pp" next to the realised +5 pp.
    fitted_kind = ("binary" if "expected_incremental_conversions" in sent_list.columns else
                   "continuous" if "expected_incremental_outcome" in sent_list.columns else None)
    if fitted_kind is not None and fitted_kind != kind:
        fitted = "a conversion (0/1)" if fitted_kind == "binary" else "a continuous outcome such as revenue"
        notes.append(f"the list's predicted uplift is of the outcome its model was fitted on ({fitted}), not of "
                     f"{outcome!r}: the predicted figures are left out; read out that outcome to compare them")
        up = np.full(len(sent_list), np.nan)
    arm_labels = (sent_list[arm_col].astype(str).to_numpy() if arm_col in sent_list.columns
                  else np.full(len(sent_list), "coupon", dtype=object))
    cost = None
    if cost_col in sent_list.columns:
        cost = pd.to_numeric(sent_list[cost_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        missing_cost = int(np.isnan(cost[selected & send]).sum())
        if missing_cost:
            raise UpliftInputError(f"cost column {cost_col!r} is missing for {missing_cost} sent customer(s) of the "
                                   "selected list; fill in what their coupon cost")
        cost = _fill_cost(cost, arm_labels, selected, notes)
    else:
        notes.append(f"no cost column {cost_col!r} in the sent list: spend, profit and ROI are not reported")
    prop = (pd.to_numeric(sent_list["propensity"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if "propensity" in sent_list.columns else None)

    t = np.flatnonzero(targeted)
    coupons, arm_codes = np.unique(arm_labels[t], return_inverse=True)
    # Strata of coupon x design propensity: within each, the holdout is a simple random share, so the
    # difference in means is unbiased even when coupons were held out at different rates.
    e_t = prop[t] if prop is not None else np.zeros(len(t))
    strata = pd.factorize(pd.MultiIndex.from_arrays([arm_codes, np.round(e_t, 9)]))[0]
    n_strata = int(strata.max()) + 1
    eff = _group_effects(y[t], send[t], strata, n_strata)
    measured = (eff["n_s"] > 0) & (eff["n_h"] > 0)
    if not measured.any():
        raise UpliftInputError("no coupon has both sent and held-out customers; the effect cannot be measured")
    for g in np.flatnonzero(~measured):
        label = coupons[arm_codes[strata == g][0]]
        notes.append(f"coupon {label!r}: {int(eff['n_s'][g])} sent and {int(eff['n_h'][g])} held out; not "
                     "measurable, so left out of the realised totals (its customers are counted in n_unmeasured)")
    in_measured = measured[strata]
    n_meas = int(eff["n_s"][measured].sum())
    name = "incremental_conversions" if kind == "binary" else "incremental_outcome"
    est, se = _total(eff, eff["n_s"])
    summary = {"outcome": outcome, "kind": kind, "n_selected": len(t), "n_sent": n_sent, "n_holdout": n_held,
               "n_unmeasured": int((~in_measured).sum()), "holdout_mean": float(y[held].mean())}
    summary |= _figures(est / n_meas, se / n_meas, z, "realised_uplift")
    predicted = np.isfinite(up[t][in_measured]).any()
    summary["predicted_uplift"] = float(np.nanmean(up[t][in_measured])) if predicted else float("nan")
    summary |= _figures(est, se, z, name)
    summary[f"predicted_{name}"] = float(np.nansum(up[t][send[t] & in_measured])) if predicted else float("nan")
    if rev is not None:
        r_est, r_se = _total(_group_effects(rev[t], send[t], strata, n_strata), eff["n_s"])
        summary |= _figures(r_est, r_se, z, "incremental_revenue")
        if cost is not None:
            spend = float(cost[t][send[t] & in_measured].sum())
            summary["spend"] = spend
            summary |= _figures(r_est - spend, r_se, z, "profit")
            ok = spend > 0
            summary |= _figures((r_est - spend) / spend if ok else np.nan, r_se / spend if ok else np.nan, z, "roi")
    summary["method"] = ("sent vs random holdout among the selected customers: difference in means per coupon, "
                         "scaled to the number sent and summed; Neyman standard errors (variances smoothed by one "
                         "pseudo-conversion per group)")

    by_coupon = _table(coupons, "coupon", up[t], y[t], None if rev is None else rev[t],
                       None if cost is None else cost[t], send[t], arm_codes, z, kind)
    dec = _list_deciles(sent_list, t, up[t], arm_codes, notes)
    deciles, dec_codes = np.unique(dec.astype(int), return_inverse=True)
    by_decile = _table(deciles, "uplift_decile", up[t], y[t], None if rev is None else rev[t],
                       None if cost is None else cost[t], send[t], dec_codes, z, kind)
    thin = by_decile[(by_decile["n_holdout"] < 2) | (by_decile["n_sent"] < 2)]
    if len(thin):
        notes.append(f"{len(thin)} decile(s) have fewer than 2 customers sent or held out: no interval there")
    calibration = by_decile[["uplift_decile", "n_sent", "n_holdout", "predicted_uplift", "realised_uplift",
                             "realised_uplift_lower", "realised_uplift_upper"]].copy()

    exploration = _exploration(y, rev, up, send, selected, prop, cost, z, kind, notes)
    return {"summary": summary, "by_coupon": by_coupon, "by_decile": by_decile, "calibration": calibration,
            "exploration": exploration, "notes": notes}


def _ipw_effect(y: np.ndarray, sent: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """Average effect of sending among rows sent at random with known propensities ``e``.

    Within strata of equal propensity, IPW (Hájek) is the difference in means, combined by stratum size, with
    the smoothed Neyman variance of :func:`_group_effects`; propensities that vary row by row fall back to
    Hájek weighting over all rows with its influence-function standard error.
    """
    strata = pd.factorize(np.round(e, 9))[0]
    k = int(strata.max()) + 1
    eff = _group_effects(y, sent, strata, k)
    if ((eff["n_s"] > 0) & (eff["n_h"] > 0)).all():
        return _total(eff, np.bincount(strata, minlength=k) / len(y))
    return hajek(y, sent, e)


def _exploration(y, rev, up, send, selected, prop, cost, z, kind, notes) -> dict | None:
    """IPW effect among the not-selected customers from the randomly explored ones."""
    rest = np.flatnonzero(~selected)
    if len(rest) == 0:
        return None
    n_exp = int(send[rest].sum())
    if n_exp < 2 or len(rest) - n_exp < 2:
        notes.append(f"{n_exp} not-selected customer(s) were explored: too few to estimate their effect")
        return None
    if prop is None:
        raise UpliftInputError("exploration rows need the design propensity column 'propensity' in the sent list")
    e = prop[rest]
    if not np.all((e > 0) & (e < 1)):
        raise UpliftInputError("propensity of the not-selected customers must lie strictly between 0 and 1; it is "
                               "the share chosen at random for exploration")
    est, se = _ipw_effect(y[rest], send[rest], e)
    n = len(rest)
    out = {"n_not_selected": n, "n_explored": n_exp}
    out |= _figures(est, se, z, "realised_uplift")
    out["predicted_uplift"] = float(np.nanmean(up[rest])) if np.isfinite(up[rest]).any() else float("nan")
    name = "incremental_conversions" if kind == "binary" else "incremental_outcome"
    # What sending the coupon to every not-selected customer would have added: the model's "no" is vindicated
    # when this interval lies at or below the value of the coupons it would cost.
    out |= _figures(est * n, se * n, z, f"{name}_if_all_sent")
    if rev is not None:
        r_est, r_se = _ipw_effect(rev[rest], send[rest], e)
        out |= _figures(r_est * n, r_se * n, z, "incremental_revenue_if_all_sent")
        if cost is not None and np.isfinite(cost[rest]).all():
            out["spend_if_all_sent"] = float(cost[rest].sum())
            out["exploration_spend"] = float(cost[rest][send[rest]].sum())
    out["method"] = "inverse-probability weighting (Hájek) with the exploration propensities, Neyman variance"
    return out
