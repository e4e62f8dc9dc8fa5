"""Segment uplift: how much did the campaign cause in each group of customers, with 95% CIs.

Two questions an analyst asks after the average effect:

* :func:`segment_uplift` — "what was the uplift by channel / by recency band?" for segments the analyst
  names. Categorical columns are used as they are, numeric ones are cut into quantile bands (or the
  analyst's own edges).
* :func:`discover_segments` — "which groups respond differently?" An interpretable tree is grown on one
  random half of the customers and its leaves are measured on the other half, so the reported uplifts are
  not inflated by the search that found them (honest estimation, Athey & Imbens 2016).

Both measure a segment's uplift as the mean of the cross-fitted doubly-robust (AIPW) scores of its
customers. That mean is unbiased for the segment's average uplift in randomised and (with overlap)
observational designs alike, and its standard error needs no model assumptions. The model's own mean
predicted uplift is shown beside it as a calibration check, never as the estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift._display import fmt_effect, fmt_level
from uplift._stats import Z95
from uplift.errors import UpliftInputError
from uplift.fit.learners import E_CLIP

#: Segments with fewer customers than this are flagged rather than silently reported.
MIN_SEGMENT_SIZE = 200
MISSING_LABEL = "(missing)"
#: Categorical features with more levels than this are not default segments (too many tiny groups).
MAX_DEFAULT_SEGMENT_LEVELS = 12


# ---------------------------------------------------------------------------------------------- helpers
def _treated_codes(result, arm: str | None, *, all_if_none: bool) -> list[int]:
    """Arm codes (1..) to compare with control; ``None`` means every treated arm (or only the first)."""
    if arm is None and all_if_none:
        return list(range(1, len(result.arms)))
    return [result.arm_code(arm)]


def _learner(result, learner: str | None) -> str:
    """The learner whose out-of-fold uplift is shown beside the estimate (default: the chosen one)."""
    learner = learner or result.best_learner
    if learner not in result.crossfit.uplift:
        raise UpliftInputError(f"learner {learner!r} was not fitted; fitted: {', '.join(result.crossfit.uplift)}")
    return learner


def _check_rows(result, data) -> None:
    """The data must be the rows the result was fitted on: the scores are per training row."""
    if data.n != len(result.crossfit.dr):
        raise UpliftInputError(f"the data has {data.n:,} rows but the result was fitted on "
                               f"{len(result.crossfit.dr):,}; pass the data the model was trained on")


def _labels(uplift: np.ndarray, lower: np.ndarray, upper: np.ndarray, kind: str) -> list[str]:
    return [fmt_effect(u, lo, hi, kind) for u, lo, hi in zip(uplift, lower, upper, strict=True)]


def default_segment_columns(result, data, max_levels: int = MAX_DEFAULT_SEGMENT_LEVELS) -> list[list[str]]:
    """The segmentations worth showing when the analyst names none: up to two categorical features.

    A categorical feature qualifies with 2 to ``max_levels`` levels (more would make many tiny segments);
    without one, the first numeric feature is used (cut into quantile bands by :func:`segment_uplift`).

    Parameters
    ----------
    result : FitResult
        The fitted result, whose feature schema says which features are categorical.
    data : CampaignData
        The training data (only features present in its frame are proposed).
    max_levels : int
        Most levels of a categorical feature used as a default segment.

    Returns
    -------
    list of list of str
        Each item is the ``by`` of one :func:`segment_uplift` call.

    Examples
    --------
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(2000, seed=1)
    >>> truth = [c for c in df if c.startswith(("true_", "propensity"))] + ["revenue"]
    >>> study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth)
    >>> study = study.fit(learners=["t"], n_folds=3, n_boot=20)
    >>> default_segment_columns(study.result, study.data)
    [['channel'], ['region']]
    """
    cats = result.schema.categories
    names = [f for f in result.schema.names if f in data.frame.columns]
    chosen = [[f] for f in names if f in cats and 2 <= len(cats[f]) <= max_levels]
    if not chosen:
        numeric = [f for f in names if f not in cats]
        chosen = [[numeric[0]]] if numeric else []
    return chosen[:2]


def _group_mean_se(groups: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Per-group count, mean and standard error of the mean (two-pass, vectorised over rows)."""
    n = np.bincount(groups, minlength=size).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(groups, weights=values, minlength=size) / n
        resid = values - mean[groups]
        var = np.bincount(groups, weights=resid**2, minlength=size) / (n - 1)
        se = np.sqrt(var / n)
    return n, mean, se, resid


def _control_scores(y: np.ndarray, is_control: np.ndarray, mu0: np.ndarray, e: np.ndarray) -> np.ndarray:
    """AIPW score of the outcome under control, so the baseline of a relative lift is unconfounded too."""
    return mu0 + is_control * (y - mu0) / (1 - np.clip(e, *E_CLIP))


# ---------------------------------------------------------------------------------------------- binning
def _band_labels(edges: np.ndarray) -> list[str]:
    """Labels of right-closed bands between inner ``edges``: "≤ a", "(a, b]", …, "> z"."""
    if len(edges) == 0:
        return ["all"]
    labels = [f"≤ {fmt_level(edges[0])}"]
    labels += [f"({fmt_level(lo)}, {fmt_level(hi)}]" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return labels + [f"> {fmt_level(edges[-1])}"]


def _quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner quantile edges, rounded to 3 significant digits so that the labels state the exact rule."""
    finite = values[np.isfinite(values)]
    qs = np.nanquantile(finite, np.linspace(0, 1, bins + 1)[1:-1]) if len(finite) else np.array([])
    rounded = np.array([float(f"{q:.3g}") for q in qs])
    # A band above the largest value would be empty: drop edges at or past the maximum.
    return np.unique(rounded[rounded < finite.max()]) if len(finite) else rounded


def _segment_column(frame: pd.DataFrame, col: str, bins, categories: dict) -> tuple[np.ndarray, list[str]]:
    """Integer segment code per row and the label of each code, for one ``by`` column."""
    series = frame[col]
    missing = series.isna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    spec = bins.get(col, 5) if isinstance(bins, dict) else bins
    # Compare in the column's own precision: a float32 59.2 must fall in the band labelled "≤ 59.2".
    dtype = np.float32 if numeric and series.dtype == np.float32 else np.float64
    values = series.to_numpy(dtype=dtype, na_value=np.nan) if numeric else None
    if numeric and isinstance(spec, int | np.integer) and not isinstance(spec, bool):
        if spec < 1:
            raise UpliftInputError(f"bins for column {col!r} must be a positive number of bands, got {spec}")
        distinct = np.unique(values[~missing])
        if len(distinct) > spec:
            edges = _quantile_edges(values, int(spec))
        else:  # few distinct values (e.g. number of past orders): each value is its own segment
            numeric = False
    elif numeric:
        try:
            edges = np.unique(np.asarray(spec, dtype=float))
        except (TypeError, ValueError):
            raise UpliftInputError(f"bins for column {col!r} must be an int or a list of numeric edges, "
                                   f"got {spec!r}") from None
        if len(edges) == 0 or not np.isfinite(edges).all():
            raise UpliftInputError(f"bins for column {col!r} must list at least one finite edge, "
                                   f"got {spec!r}")
        # Bands outside the analyst's edges stay visible ("≤ first edge", "> last edge") rather than dropped.
    elif isinstance(bins, dict) and col in bins:
        raise UpliftInputError(f"bins were given for column {col!r}, but it is categorical; "
                               "drop it from bins")
    if numeric:
        edges = np.unique(edges.astype(dtype))
        codes = np.searchsorted(edges, values, side="left")
        labels = _band_labels(edges)
    else:
        text = series.astype("string").to_numpy(dtype=object, na_value=None)
        present = pd.unique(text[~missing])
        known = [lv for lv in categories.get(col, ()) if lv in set(present)]
        labels = known + sorted(set(present) - set(known), key=str)
        if not categories.get(col) and pd.api.types.is_numeric_dtype(series):
            labels = sorted(labels, key=float)  # numbers in numeric order, not text order
        codes = pd.Index(labels).get_indexer(np.where(missing, labels[0] if labels else "", text))
    if missing.any():
        codes = np.where(missing, len(labels), codes)
        labels = [*labels, MISSING_LABEL]
    return codes.astype(np.int64), labels


def _condition(col: str, label: str, numeric_band: bool) -> str:
    if label == MISSING_LABEL:
        return f"{col} is missing"
    if numeric_band and label.startswith(("≤", ">")):
        return f"{col} {label}"
    if numeric_band and label.startswith("("):
        lo, hi = label[1:-1].split(", ")
        return f"{lo} < {col} ≤ {hi}"
    return f"{col} = {label}"


# ---------------------------------------------------------------------------------------- segment_uplift
def segment_uplift(result, data, by: list[str] | str, *, bins: int | dict = 5, min_size: int = MIN_SEGMENT_SIZE,
                   arm: str | None = None, learner: str | None = None) -> pd.DataFrame:
    """Uplift per segment, with 95% CIs, for segments defined by the analyst's columns.

    Parameters
    ----------
    result : FitResult
        The fitted result (:attr:`uplift.Study.result`): its cross-fitted doubly-robust scores and uplift.
    data : CampaignData
        The data it was fitted on (:attr:`uplift.Study.data`).
    by : list of str
        Columns of ``data.frame`` to segment by (features or any other pre-campaign column). Categorical
        columns are used as they are; numeric ones are cut into ``bins`` quantile bands.
    bins : int or dict
        Number of quantile bands for numeric columns, or a dict ``{column: [edges]}`` (or ``{column: n}``);
        columns not in the dict get 5 bands. Bands are right-closed: ``(a, b]``.
    min_size : int
        Segments with fewer customers (treated + control) are flagged ``small`` and carry a
        ``too_small_to_report`` note: their CI is shown but too wide to act on.
    arm : str, optional
        Treated arm to compare with control. Default: every treated arm, one block per arm.
    learner : str, optional
        Learner whose mean out-of-fold prediction is shown as ``predicted_uplift`` (default: the best).

    Returns
    -------
    DataFrame
        One row per (arm, segment): ``arm``, ``segment`` (readable rule), one column per ``by`` column,
        ``n``, ``n_treated``, ``n_control``, observed ``mean_treated`` / ``mean_control``, ``uplift`` (mean
        AIPW score) with ``se``, ``lower``, ``upper``; ``relative_lift`` (uplift / doubly-robust control mean)
        with ``relative_lower``/``relative_upper``; ``predicted_uplift``; ``label`` (e.g. "+2.10 [1.40,
        2.80] pp"); ``small`` and ``note``.

    Examples
    --------
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(3000, seed=1)
    >>> truth = [c for c in df if c.startswith(("true_", "propensity"))] + ["revenue"]
    >>> study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth)
    >>> study = study.fit(learners=["t"], n_folds=3, n_boot=20)
    >>> table = segment_uplift(study.result, study.data, ["channel"])
    >>> {"segment", "uplift", "lower", "upper", "small"} <= set(table.columns)
    True
    """
    cf = result.crossfit
    _check_rows(result, data)
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise UpliftInputError("give at least one column to segment by, e.g. by=['channel']")
    frame = data.frame
    for col in by:
        if col not in frame.columns:
            raise UpliftInputError(f"segment column {col!r} not found in the data "
                                   f"(columns: {', '.join(map(str, frame.columns[:20]))})")
    roles = result.roles
    post = {roles.get("treatment"), *roles.get("outcomes", [])}
    for col in by:
        if col in post:
            raise UpliftInputError(f"cannot segment by {col!r}: it is the treatment or an outcome, not a "
                                   "customer attribute known before the campaign")
    if isinstance(bins, dict):
        unknown = [c for c in bins if c not in by]
        if unknown:
            raise UpliftInputError(f"bins were given for {unknown[0]!r}, which is not in by={by}")
    if min_size < 0:
        raise UpliftInputError(f"min_size must be 0 or more, got {min_size}")
    learner = _learner(result, learner)

    per_col = [_segment_column(frame, col, bins, data.schema.categories) for col in by]
    banded = [_is_band(labels) for _, labels in per_col]
    combos, seg = np.unique(np.column_stack([codes for codes, _ in per_col]), axis=0, return_inverse=True)
    seg = seg.ravel()
    n_seg = len(combos)
    cond = [[_condition(col, labels[c], band) for c in combos[:, j]]
            for j, (col, (_, labels), band) in enumerate(zip(by, per_col, banded, strict=True))]
    seg_label = [" and ".join(parts) for parts in zip(*cond, strict=True)]

    y = data.outcomes[result.outcome]
    T = data.treatment
    blocks = []
    for a in _treated_codes(result, arm, all_if_none=True):
        pair = (T == 0) | (T == a)
        g, t, yy = seg[pair], (T[pair] == a).astype(float), y[pair]
        n, uplift, se, resid_u = _group_mean_se(g, cf.dr[pair, a - 1], n_seg)
        n_t = np.bincount(g, weights=t, minlength=n_seg)
        n_c = n - n_t
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_t = np.bincount(g, weights=yy * t, minlength=n_seg) / n_t
            mean_c = np.bincount(g, weights=yy * (1 - t), minlength=n_seg) / n_c
            c_scores = _control_scores(yy, 1 - t, cf.mu[pair, 0], cf.e[pair, a])
            _, base, base_se, resid_b = _group_mean_se(g, c_scores, n_seg)
            cov = np.bincount(g, weights=resid_u * resid_b, minlength=n_seg) / (n - 1) / n
            rel = uplift / base
            # Delta method for a ratio of two correlated means.
            rel_se = np.sqrt(np.maximum(se**2 / base**2 + uplift**2 * base_se**2 / base**4
                                        - 2 * uplift * cov / base**3, 0.0))
            predicted = np.bincount(g, weights=cf.uplift[learner][pair, a - 1], minlength=n_seg) / n
        lower, upper = uplift - Z95 * se, uplift + Z95 * se
        unmeasurable = (n_t < 2) | (n_c < 2)
        uplift, se, lower, upper = (np.where(unmeasurable, np.nan, v) for v in (uplift, se, lower, upper))
        rel = np.where(unmeasurable | (base <= 0), np.nan, rel)
        small = n < min_size
        block = pd.DataFrame({"arm": result.arms[a], "segment": seg_label})
        for j, (col, (_, labels)) in enumerate(zip(by, per_col, strict=True)):
            block[col] = np.asarray(labels, dtype=object)[combos[:, j]]
        block = block.assign(
            n=n.astype(int), n_treated=n_t.astype(int), n_control=n_c.astype(int),
            mean_treated=mean_t, mean_control=mean_c, uplift=uplift, se=se, lower=lower, upper=upper,
            relative_lift=rel, relative_lower=rel - Z95 * rel_se, relative_upper=rel + Z95 * rel_se,
            predicted_uplift=predicted,
            label=_labels(uplift, lower, upper, result.kind), small=small, note="")
        block.loc[small, "note"] = [
            f"too_small_to_report: {int(k)} customers < min_size={min_size}; the CI is too wide to act on"
            for k in n[small]]
        block.loc[unmeasurable, "note"] = ("too_small_to_report: needs at least 2 treated and 2 control "
                                           "customers")
        blocks.append(block[n > 0])
    return pd.concat(blocks, ignore_index=True)


def _is_band(labels: list[str]) -> bool:
    return any(lb.startswith(("≤", "(")) for lb in labels if lb != MISSING_LABEL)


# ---------------------------------------------------------------------------------------------- discover
def _tree_features(X: np.ndarray, dr: np.ndarray, fit: np.ndarray,
                   n_levels: dict[int, int]) -> tuple[np.ndarray, dict]:
    """Features for the tree, with each categorical's levels ranked by their mean score on the fitting half.

    Sorting levels by the mean response makes one threshold split the best split into two sets of levels
    (Breiman et al. 1984), and lets the rule be read back as "channel in {web, app}".
    """
    Z = X.astype(np.float64, copy=True)
    order = {}
    for j, size in n_levels.items():
        codes = X[:, j]
        level = np.where(np.isnan(codes), size - 1, codes).astype(np.int64)  # last level = missing
        counts = np.bincount(level[fit], minlength=size)
        sums = np.bincount(level[fit], weights=dr[fit], minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / counts, dr[fit].mean())  # unseen levels sit in the middle
        rank = np.empty(size)
        rank[np.argsort(means, kind="stable")] = np.arange(size)
        Z[:, j] = rank[level]
        order[j] = rank
    return Z, order


def _leaf_rules(tree, names: tuple[str, ...], order: dict, level_names: dict, integer: np.ndarray,
                has_missing: np.ndarray) -> dict[int, str]:
    """Readable rule of every leaf, merging all splits on the same feature along its path."""
    t = tree.tree_
    rules: dict[int, str] = {}
    stack = [(0, {})]
    while stack:
        node, conds = stack.pop()
        if t.children_left[node] == -1:
            rules[node] = " and ".join(_describe(j, c, names, order, level_names, integer, has_missing)
                                       for j, c in conds.items()) or "all customers"
            continue
        j, thr = int(t.feature[node]), float(t.threshold[node])
        miss_left = bool(t.missing_go_to_left[node]) if hasattr(t, "missing_go_to_left") else True
        for child, go_left in ((t.children_left[node], True), (t.children_right[node], False)):
            c = dict(conds.get(j, {"lo": -np.inf, "hi": np.inf, "missing": True, "levels": None}))
            if j in order:
                keep = (order[j] <= thr) if go_left else (order[j] > thr)
                c["levels"] = keep if c["levels"] is None else (c["levels"] & keep)
            else:
                c["hi" if go_left else "lo"] = min(c["hi"], thr) if go_left else max(c["lo"], thr)
                c["missing"] = c["missing"] and (miss_left == go_left)
            stack.append((child, {**conds, j: c}))
    return rules


def _describe(j: int, c: dict, names, order, level_names, integer, has_missing) -> str:
    name = names[j]
    if j in order:
        labels = level_names[j]
        chosen = [lv for lv, keep in zip(labels, c["levels"], strict=True) if keep and lv is not None]
        others = [lv for lv, keep in zip(labels, c["levels"], strict=True) if not keep and lv is not None]
        if len(chosen) == 1:
            return f"{name} = {chosen[0]}"
        if len(others) == 1:
            return f"{name} ≠ {others[0]}"
        return f"{name} in {{{', '.join(chosen)}}}"
    fmt = (lambda v: fmt_level(np.floor(v))) if integer[j] else fmt_level  # integer data: "≤ 30", not "≤ 30.5"
    lo, hi = c["lo"], c["hi"]
    if np.isfinite(lo) and np.isfinite(hi):
        text = f"{fmt(lo)} < {name} ≤ {fmt(hi)}"
    elif np.isfinite(hi):
        text = f"{name} ≤ {fmt(hi)}"
    else:
        text = f"{name} > {fmt(lo)}"
    return f"({text} or missing)" if has_missing[j] and c["missing"] else text


def discover_segments(result, data, *, max_depth: int = 3, min_leaf: int = 500, arm: str | None = None,
                      random_state: int = 0, learner: str | None = None) -> pd.DataFrame:
    """Find groups of customers whose uplift differs, and measure them honestly.

    A regression tree (scikit-learn's ``DecisionTreeRegressor``) is grown on the cross-fitted
    doubly-robust scores of a random half of the customers (stratified by arm). Each leaf's uplift is then
    estimated, with a 95% CI, from the customers of the *other* half only, so the search does not bias the
    estimates.

    Parameters
    ----------
    result : FitResult
        The fitted result (:attr:`uplift.Study.result`).
    data : CampaignData
        The data it was fitted on (:attr:`uplift.Study.data`).
    max_depth : int
        Most conditions in a rule (tree depth).
    min_leaf : int
        Fewest customers of the fitting half in a leaf; larger gives fewer, steadier segments.
    arm : str, optional
        Treated arm compared with control (default: every treated arm, one block of rows per arm, each row
        naming its ``arm``).
    random_state : int
        Seed of the half split.
    learner : str, optional
        Learner whose mean out-of-fold prediction is shown as ``predicted_uplift`` (default: the best).

    Returns
    -------
    DataFrame
        One row per leaf, highest uplift first: ``arm``, ``rule`` (e.g. "recency_days ≤ 30 and channel =
        web", with the data's column names and category labels), ``n`` / ``n_treated`` / ``n_control`` (in
        the estimation half), ``uplift``, ``se``, ``lower``, ``upper``, ``label`` ("+2.10 [1.40, 2.80] pp"),
        ``predicted_uplift``, ``n_fit`` (customers of the fitting half) and ``note``.
        ``attrs["heterogeneity_p"]`` holds the p-value of the test that all leaves have the same uplift (with
        several arms: of the first arm), ``attrs["heterogeneity_p_by_arm"]`` that of every arm.

    Examples
    --------
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(4000, seed=2)
    >>> truth = [c for c in df if c.startswith(("true_", "propensity"))] + ["revenue"]
    >>> study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth)
    >>> study = study.fit(learners=["t"], n_folds=3, n_boot=20)
    >>> leaves = discover_segments(study.result, study.data, max_depth=2, min_leaf=400)
    >>> int(leaves["n"].sum()) == 2000
    True
    """
    if max_depth < 1:
        raise UpliftInputError(f"max_depth must be at least 1, got {max_depth}")
    if min_leaf < 1:
        raise UpliftInputError(f"min_leaf must be at least 1, got {min_leaf}")
    arms = [arm] if arm is not None else list(result.arms[1:])
    blocks = [_discover_arm(result, data, max_depth=max_depth, min_leaf=min_leaf, arm=name,
                            random_state=random_state, learner=learner) for name in arms]
    out = pd.concat(blocks, ignore_index=True) if len(blocks) > 1 else blocks[0]
    by_arm = {name: block.attrs["heterogeneity_p"] for name, block in zip(arms, blocks, strict=True)}
    out.attrs.update(heterogeneity_p=by_arm[arms[0]], heterogeneity_p_by_arm=by_arm)
    return out


def _discover_arm(result, data, *, max_depth: int, min_leaf: int, arm: str, random_state: int,
                  learner: str | None) -> pd.DataFrame:
    """:func:`discover_segments` for one treated arm vs control."""
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeRegressor
    cf = result.crossfit
    _check_rows(result, data)
    learner = _learner(result, learner)
    a = result.arm_code(arm)
    pair = np.flatnonzero((data.treatment == 0) | (data.treatment == a))
    X, dr = data.X[pair], cf.dr[pair, a - 1]
    t = (data.treatment[pair] == a).astype(float)
    fit_rows, est_rows = train_test_split(np.arange(len(pair)), test_size=0.5, stratify=t,
                                          random_state=random_state)
    fit = np.zeros(len(pair), dtype=bool)
    fit[fit_rows] = True

    schema = data.schema
    cat_idx = schema.categorical_indices
    n_levels = {j: len(schema.categories[schema.names[j]]) + 1 for j in cat_idx}  # + 1: missing
    Z, order = _tree_features(X, dr, fit, n_levels)
    tree = DecisionTreeRegressor(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=random_state)
    tree.fit(Z[fit], dr[fit])

    # Only levels some customer has are named in a rule ("channel ≠ web" must not hide an unused level).
    level_names = {}
    for j in cat_idx:
        present = np.bincount(np.where(np.isnan(X[:, j]), n_levels[j] - 1, X[:, j]).astype(np.int64),
                              minlength=n_levels[j]) > 0
        level_names[j] = [lv if ok else None for lv, ok in
                          zip([*schema.categories[schema.names[j]], "missing"], present, strict=True)]
    finite = np.where(np.isnan(X), 0.0, X)
    integer = np.all(finite == np.round(finite), axis=0)
    has_missing = np.isnan(X).any(axis=0)
    rules = _leaf_rules(tree, schema.names, order, level_names, integer, has_missing)

    leaves = np.array(sorted(rules))
    index = np.searchsorted(leaves, tree.apply(Z))  # leaf node id -> 0..k-1
    est = ~fit
    k = len(leaves)
    n, uplift, se, _ = _group_mean_se(index[est], dr[est], k)
    n_t = np.bincount(index[est], weights=t[est], minlength=k)
    n_c = n - n_t
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(index[est], weights=cf.uplift[learner][pair[est], a - 1], minlength=k) / n
    unmeasurable = (n_t < 2) | (n_c < 2)
    uplift, se = np.where(unmeasurable, np.nan, uplift), np.where(unmeasurable, np.nan, se)
    lower, upper = uplift - Z95 * se, uplift + Z95 * se
    out = pd.DataFrame({
        "arm": result.arms[a], "rule": [rules[node] for node in leaves],
        "n": n.astype(int), "n_treated": n_t.astype(int), "n_control": n_c.astype(int),
        "uplift": uplift, "se": se, "lower": lower, "upper": upper,
        "label": _labels(uplift, lower, upper, result.kind),
        "predicted_uplift": predicted, "n_fit": np.bincount(index[fit], minlength=k).astype(int), "note": "",
    })
    out.loc[unmeasurable, "note"] = ("too_small_to_report: the estimation half has < 2 treated or control "
                                     "customers")
    if k == 1:
        out["note"] = (f"no split found: no group of ≥ {min_leaf} customers differs enough; try a smaller "
                       "min_leaf or more data")
    out = out.sort_values("uplift", ascending=False, na_position="last", ignore_index=True)
    out.attrs["heterogeneity_p"] = _heterogeneity_p(out["uplift"].to_numpy(), out["se"].to_numpy())
    return out


def _heterogeneity_p(uplift: np.ndarray, se: np.ndarray) -> float:
    """p-value of Cochran's Q test that every segment has the same uplift (independent estimates)."""
    from scipy.stats import chi2
    ok = np.isfinite(uplift) & np.isfinite(se) & (se > 0)
    if ok.sum() < 2:
        return float("nan")
    w = 1 / se[ok] ** 2
    pooled = np.sum(w * uplift[ok]) / w.sum()
    q = np.sum(w * (uplift[ok] - pooled) ** 2)
    return float(chi2.sf(q, ok.sum() - 1))
