"""Design checks for a campaign study: was the split as declared, are the arms comparable, can weights work?

Each check is a plain function over arrays / DataFrames with a binary treatment ``t`` (1 = campaign,
0 = control), so the :class:`uplift.Study`, the CLI and the report all call the same code:

==========================  =================================================================================
:func:`srm_test`            sample-ratio mismatch: chi-square of arm counts vs the declared split
:func:`sample_ratio_check`  the study's SRM check: vs the declared split, or the split described when none is
:func:`balance_table`       standardized mean difference per feature (per level for categories), optionally
                            after weighting
:func:`balance_auc`         can a cross-fitted classifier tell the arms apart? AUC with a DeLong 95% CI
:func:`overlap_summary`     how many rows have propensities near 0 or 1 (where comparisons rest on few rows)
:func:`trim_mask`           rows to keep: fixed bounds or the Crump et al. (2009) optimal rule
:func:`leakage_check`       features that give the treatment away (post-treatment variables, arm-only codes)
:func:`e_value`             how strong an unmeasured confounder would have to be to explain the effect away
==========================  =================================================================================

The checks that need a propensity (balance AUC, overlap, trimming, leakage, weighted balance) take it as an
array of out-of-fold predictions: fitting it is the fit layer's job (:mod:`uplift.fit.nuisance`), which this
layer never imports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from uplift._stats import Z95
from uplift.data.campaign import feature_frame
from uplift.errors import UpliftInputError

#: |SMD| above this is the usual sign of imbalance (Austin 2009).
SMD_THRESHOLD = 0.1
#: SRM is declared at p < 0.001: an assignment bug is a hard stop, so false alarms must be rare.
SRM_ALPHA = 0.001
#: Propensities are clipped to this range before they become weights (same guard as the learners use).
WEIGHT_CLIP = (0.01, 0.99)


# --------------------------------------------------------------------------------------------- validation
def _treatment(t, n: int | None = None, name: str = "t") -> np.ndarray:
    """Return ``t`` as a 0/1 int array, or raise naming the problem."""
    arr = np.asarray(t)
    if arr.ndim != 1:
        raise UpliftInputError(f"{name} must be a 1-D array of 0/1 treatment flags, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise UpliftInputError(f"{name} has {len(arr)} rows but the features have {n}; pass aligned rows")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
        bad = np.flatnonzero(~pd.Series(arr).isin([0, 1]).to_numpy())[0]
        raise UpliftInputError(f"{name} must hold only 0 (control) and 1 (treated); "
                               f"row {bad} holds {arr[bad]!r}")
    arr = arr.astype(np.int64)
    if arr.min() == arr.max():
        raise UpliftInputError(f"{name} has only arm {arr[0]}; a design check needs treated and control rows")
    return arr


def _propensity(e_hat, n: int) -> np.ndarray:
    e = np.asarray(e_hat, dtype=np.float64)
    if e.shape != (n,):
        raise UpliftInputError(f"e_hat must be a 1-D array with one propensity per row ({n}), got {e.shape}")
    if not np.isfinite(e).all() or (e < 0).any() or (e > 1).any():
        row = int(np.flatnonzero(~(np.isfinite(e) & (e >= 0) & (e <= 1)))[0])
        raise UpliftInputError(f"e_hat must be probabilities in [0, 1]; row {row} holds {e[row]!r}")
    return e


# -------------------------------------------------------------------------------------------------- SRM
def srm_test(counts: Mapping[str, int] | Sequence[int] | np.ndarray, expected_shares=None,
             *, alpha: float = SRM_ALPHA) -> dict:
    """Sample-ratio mismatch test: chi-square of the arm counts against the declared split.

    A randomised campaign whose arms are not in the declared proportions usually has an assignment or
    logging bug (some treated customers lost, bots filtered in one arm...), which biases every estimate.

    Parameters
    ----------
    counts : dict of arm -> rows, or array of counts per arm
        For a label array use ``np.bincount(t)`` or ``pd.Series(arm).value_counts().to_dict()``.
    expected_shares : dict or array, optional
        Declared split, in the same order / keys as ``counts`` (normalised to sum to 1). Default: equal.
    alpha : float
        The check fails when ``p_value < alpha`` (default 0.001: a failure stops the analysis).

    Returns
    -------
    dict
        ``observed`` and ``expected`` counts (dicts keyed by arm), ``chi2``, ``p_value``, ``passed``,
        ``message`` (one line with observed vs expected counts).

    Examples
    --------
    >>> r = srm_test({"control": 51_000, "coupon": 49_000})
    >>> r["passed"], r["expected"]["coupon"]
    (False, 50000.0)
    >>> srm_test([5_010, 4_990])["passed"]
    True
    """
    from scipy import stats
    if isinstance(counts, Mapping):
        arms = [str(k) for k in counts]
        observed = np.asarray(list(counts.values()), dtype=np.float64)
    else:
        observed = np.asarray(counts, dtype=np.float64).ravel()
        arms = [f"arm_{i}" for i in range(len(observed))]
    if len(observed) < 2:
        raise UpliftInputError("srm_test needs the counts of at least two arms")
    if not np.isfinite(observed).all() or (observed < 0).any() or (observed != np.round(observed)).any():
        raise UpliftInputError(f"srm_test counts must be non-negative whole numbers, got {observed.tolist()}")
    if expected_shares is None:
        shares = np.full(len(observed), 1.0 / len(observed))
    else:
        if isinstance(expected_shares, Mapping):
            missing = [a for a in arms if a not in {str(k) for k in expected_shares}]
            if missing:
                raise UpliftInputError(f"expected_shares has no share for arm {missing[0]!r}; "
                                       "give one per arm")
            lookup = {str(k): v for k, v in expected_shares.items()}
            shares = np.asarray([lookup[a] for a in arms], dtype=np.float64)
        else:
            shares = np.asarray(expected_shares, dtype=np.float64).ravel()
        if shares.shape != observed.shape or not np.isfinite(shares).all() or (shares <= 0).any():
            raise UpliftInputError(f"expected_shares must be {len(observed)} positive numbers (one per arm), "
                                   f"got {np.asarray(expected_shares).tolist()}")
        shares = shares / shares.sum()
    total = observed.sum()
    if total == 0:
        raise UpliftInputError("srm_test got zero rows in every arm")
    expected = total * shares
    chi2, p_value = stats.chisquare(observed, expected)
    passed = bool(p_value >= alpha)
    verdict = "no sample-ratio mismatch" if passed else "SAMPLE-RATIO MISMATCH (check assignment and logging)"
    message = f"{verdict}: {_split_text(arms, observed, expected)} (chi2={chi2:.1f}, p={p_value:.2g})"
    return {
        "observed": dict(zip(arms, observed.astype(int).tolist(), strict=True)),
        "expected": dict(zip(arms, expected.tolist(), strict=True)),
        "chi2": float(chi2), "p_value": float(p_value), "passed": passed, "message": message,
    }


def _split_text(arms, observed, expected=None) -> str:
    """``observed control 7,512 (75.1%) / coupon 2,488 (24.9%) vs expected 7,500 / 2,500``."""
    share = observed / observed.sum()
    text = "observed " + " / ".join(f"{a} {int(o):,} ({s:.1%})" for a, o, s in zip(arms, observed, share, strict=True))
    if expected is not None:
        text += " vs expected " + " / ".join(f"{e:,.0f}" for e in expected)
    return text


def declared_split(expected_split, arms: Sequence[str]) -> dict[str, float] | None:
    """The declared split as one share per arm (summing to 1), from shares, percentages or counts.

    Parameters
    ----------
    expected_split : dict of arm -> share, iterable of ``"ARM=SHARE"`` strings, or None
        One entry per arm; any positive numbers (``0.4``, ``40`` or ``40000``), normalised to sum to 1.
    arms : sequence of str
        The study's arm labels.

    Returns
    -------
    dict or None
        Share of each arm, in the order of ``arms``; None when no split is declared.

    Examples
    --------
    >>> declared_split(["control=75", "coupon=25"], ["control", "coupon"])
    {'control': 0.75, 'coupon': 0.25}
    >>> declared_split({"a": 40_000, "b": 20_000, "c": 20_000}, ["a", "b", "c"])["a"]
    0.5
    """
    if expected_split is None:
        return None
    if isinstance(expected_split, Mapping):
        given = {str(k): v for k, v in expected_split.items()}
    else:
        items = [expected_split] if isinstance(expected_split, str) else list(expected_split)
        if not items:
            return None
        given = {}
        for item in items:
            name, sep, share = str(item).partition("=")
            if not sep:
                raise UpliftInputError(f"expected split {item!r}: give ARM=SHARE for every arm "
                                       f"(arms: {', '.join(map(str, arms))})")
            given[name.strip()] = share.strip()
    shares = {}
    for name, share in given.items():
        try:
            shares[name] = float(share)
        except (TypeError, ValueError):
            raise UpliftInputError(f"expected split of arm {name!r}: {share!r} is not a number") from None
        if not np.isfinite(shares[name]) or shares[name] <= 0:
            raise UpliftInputError(f"expected split of arm {name!r} must be a positive share or count, "
                                   f"got {share!r}")
    arms = [str(a) for a in arms]
    unknown = [a for a in shares if a not in arms]
    if unknown:
        raise UpliftInputError(f"expected split names arm {unknown[0]!r}, which is not in the data; "
                               f"arms: {', '.join(arms)}")
    missing = [a for a in arms if a not in shares]
    if missing:
        raise UpliftInputError(f"expected split has no share for arm {missing[0]!r}; declare every arm "
                               f"({', '.join(arms)})")
    total = sum(shares.values())
    return {a: shares[a] / total for a in arms}


def vanished_arm(codes, arms: Sequence[str], *, chunks: int = 10, min_expected: float = 20.0) -> str | None:
    """An arm that disappears over part of the data: implausible for any design, so no split needs declaring.

    The rows are cut, in file order, into ``chunks`` equal slices. When the arms are interleaved (the table is
    not sorted by arm), an arm with no row in a slice where at least ``min_expected`` of its rows were
    expected points to lost or filtered logging, whatever the declared split.

    Returns
    -------
    str or None
        One sentence naming the arm and the slice, or None when every arm is present throughout.

    Examples
    --------
    >>> codes = np.tile([0, 1], 500)
    >>> vanished_arm(codes, ["control", "coupon"]) is None
    True
    >>> codes[600:800] = 0          # the coupon stopped being logged for 200 rows
    >>> vanished_arm(codes, ["control", "coupon"])
    "arm 'coupon' has no rows in rows 601-700 of 1,000 although 40 were expected"
    """
    codes = np.asarray(codes)
    n = len(codes)
    # A table sorted (or grouped) by arm has few arm changes; its slices say nothing about the logging.
    if n < chunks or np.count_nonzero(np.diff(codes)) < 10 * len(arms) * chunks:
        return None
    edges = np.linspace(0, n, chunks + 1).astype(int)
    slice_of = np.repeat(np.arange(chunks), np.diff(edges))
    table = np.zeros((chunks, len(arms)))
    np.add.at(table, (slice_of, codes), 1)
    expected = np.outer(np.diff(edges), table.sum(axis=0) / n)
    empty = (table == 0) & (expected >= min_expected)
    if not empty.any():
        return None
    c, a = np.argwhere(empty)[0]
    return (f"arm {str(arms[a])!r} has no rows in rows {edges[c] + 1:,}-{edges[c + 1]:,} of {n:,} although "
            f"{expected[c, a]:,.0f} were expected")


def sample_ratio_check(codes, arms: Sequence[str], expected_split=None, *, alpha: float = SRM_ALPHA) -> dict:
    """The study's sample-ratio check: against the declared split, or a description of the split when none is.

    * With a declared split (see :func:`declared_split`): chi-square of the arm counts against it
      (:func:`srm_test`); ``passed`` is False at ``p < alpha``.
    * Without one: an equal split passes as before; an unequal split may be a valid design (75/25, a 90/10
      holdout, 40/20/20/20), so it is reported and ``passed`` is None (not checked: the check needs the
      declared split).
    * Either way an arm that vanishes over part of the data (:func:`vanished_arm`) fails the check.

    Returns
    -------
    dict
        The :func:`srm_test` fields (``observed``, ``expected``, ``chi2``, ``p_value``, ``passed``, ``message``)
        plus ``declared`` (the declared shares or None) and ``vanished`` (sentence or None).

    Examples
    --------
    >>> codes = np.tile([0, 0, 0, 1], 2_500)            # a 75/25 campaign
    >>> sample_ratio_check(codes, ["control", "coupon"])["passed"] is None
    True
    >>> sample_ratio_check(codes, ["control", "coupon"], ["control=3", "coupon=1"])["passed"]
    True
    >>> sample_ratio_check(codes, ["control", "coupon"], {"control": 1, "coupon": 1})["passed"]
    False
    """
    codes = np.asarray(codes)
    counts = {str(a): int(c) for a, c in zip(arms, np.bincount(codes, minlength=len(arms)), strict=True)}
    shares = declared_split(expected_split, list(counts))
    result = srm_test(counts, None if shares is None else list(shares.values()), alpha=alpha)
    result["declared"] = shares
    if shares is None and not result["passed"]:
        observed = np.asarray(list(counts.values()), dtype=np.float64)
        result["passed"] = None
        result["message"] = (f"not checked, the arms are not equal: {_split_text(list(counts), observed)}; "
                             "the check needs the declared split (expected_split=... / CLI --expected-split "
                             "ARM=SHARE)")
    result["vanished"] = vanished_arm(codes, list(counts))
    if result["vanished"]:
        result["passed"] = False
        result["message"] = f"SAMPLE-RATIO MISMATCH (an arm vanished): {result['vanished']}"
    return result


# ---------------------------------------------------------------------------------------------- balance
def _is_categorical(col: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col))


def _balance_columns(X: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, str | None]], np.ndarray]:
    """Expand features into numeric columns: numeric as is, categoricals as one indicator per level.

    Returns the (n, m) matrix (NaN where a numeric value is missing), a (feature, level) label per column
    and a flag per column saying whether it is an indicator. Missing values of a numeric feature also get
    a ``(missing)`` indicator, since missingness itself can be imbalanced.
    """
    blocks, labels, is_ind = [], [], []
    for name in X.columns:
        col = X[name]
        if _is_categorical(col):
            values = col.astype("string").fillna("(missing)")
            dummies = pd.get_dummies(values, dtype=np.float64)
            blocks.append(dummies.to_numpy())
            labels += [(str(name), str(level)) for level in dummies.columns]
            is_ind += [True] * dummies.shape[1]
        else:
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            blocks.append(values[:, None])
            labels.append((str(name), None))
            is_ind.append(False)
            missing = np.isnan(values)
            if missing.any():
                blocks.append(missing[:, None].astype(np.float64))
                labels.append((str(name), "(missing)"))
                is_ind.append(True)
    if not blocks:
        raise UpliftInputError("the feature table has no columns; pass the customer features to check")
    return np.hstack(blocks), labels, np.asarray(is_ind)


def _arm_moments(M: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and variance of every column of ``M`` over its non-missing rows."""
    valid = ~np.isnan(M)
    Mz = np.where(valid, M, 0.0)
    W = valid * w[:, None]
    sw = W.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (W * Mz).sum(axis=0) / sw
        var = (W * (Mz - mean) ** 2).sum(axis=0) / sw
    return mean, var


def balance_table(X: pd.DataFrame, t, weights=None, *, threshold: float = SMD_THRESHOLD) -> pd.DataFrame:
    """Standardized mean difference (treated − control) of every feature, per level for categoricals.

    ``SMD = (mean_treated − mean_control) / sqrt((var_treated + var_control) / 2)``. Variances are the
    sample variances (``p(1 − p)`` for level indicators; Austin 2009). With ``weights`` (e.g. inverse
    propensity weights) the means are weighted but the denominator stays the *unweighted* pooled SD, so a
    before/after comparison moves only because the means moved (the convention of R's ``cobalt``).

    Parameters
    ----------
    X : DataFrame
        Pre-treatment features. Object / category / string columns are expanded per level (missing is its
        own level); numeric columns with missing values get an extra ``(missing)`` indicator row.
    t : array of 0/1
    weights : array, optional
        Non-negative row weights, e.g. ``t / e + (1 − t) / (1 − e)`` for after-IPW balance.
    threshold : float
        Rows with ``|smd| > threshold`` are flagged (default 0.1).

    Returns
    -------
    DataFrame
        ``feature``, ``level`` (None for numeric features), ``mean_treated``, ``mean_control``, ``smd``,
        ``variance_ratio`` (treated / control, weighted when weights are given), ``flagged``.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [20., 30., 40., 50.], "channel": ["web", "web", "app", "web"]})
    >>> tab = balance_table(X, [1, 1, 0, 0])
    >>> tab[["feature", "level", "smd"]].round(3).values.tolist()
    [['age', None, -2.828], ['channel', 'app', -1.414], ['channel', 'web', 1.414]]
    """
    X = feature_frame(X)
    t = _treatment(t, len(X))
    if weights is None:
        w = np.ones(len(X))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(X),) or not np.isfinite(w).all() or (w < 0).any():
            raise UpliftInputError(f"weights must be {len(X)} finite non-negative numbers, one per row")
    M, labels, is_ind = _balance_columns(X)
    treated = t == 1
    ones = np.ones(len(X))
    # Unweighted spread for the denominator (see docstring); sample variance for continuous features.
    _, v1 = _arm_moments(M[treated], ones[treated])
    _, v0 = _arm_moments(M[~treated], ones[~treated])
    n1 = (~np.isnan(M[treated])).sum(axis=0)
    n0 = (~np.isnan(M[~treated])).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        v1 = np.where(is_ind, v1, v1 * n1 / np.maximum(n1 - 1, 1))
        v0 = np.where(is_ind, v0, v0 * n0 / np.maximum(n0 - 1, 1))
    m1, wv1 = _arm_moments(M[treated], w[treated])
    m0, wv0 = _arm_moments(M[~treated], w[~treated])
    diff = m1 - m0
    pooled = np.sqrt((v1 + v0) / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # A feature constant within each arm but different between them is perfectly separating: infinite SMD.
        smd = np.where(pooled > 0, diff / pooled, np.where(np.abs(diff) > 1e-12, np.sign(diff) * np.inf, 0.0))
        vratio = np.where(is_ind, np.nan, wv1 / wv0)
    return pd.DataFrame({
        "feature": [f for f, _ in labels],
        "level": pd.Series([lv for _, lv in labels], dtype=object),
        "mean_treated": m1, "mean_control": m0, "smd": smd, "variance_ratio": vratio,
        "flagged": np.abs(smd) > threshold,
    })


def ipw_weights(e_hat, t) -> np.ndarray:
    """Inverse-propensity (ATE) weights ``t / e + (1 − t) / (1 − e)`` with ``e`` clipped to [0.01, 0.99]."""
    t = _treatment(t)
    e = np.clip(_propensity(e_hat, len(t)), *WEIGHT_CLIP)
    return t / e + (1 - t) / (1 - e)


# ------------------------------------------------------------------------------------ AUC and propensity
def delong_auc(y_true, score) -> tuple[float, float]:
    """ROC AUC and its DeLong standard error (fast midrank form of Sun & Xu 2014).

    Examples
    --------
    >>> auc, se = delong_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(auc, 2)
    0.75
    """
    from scipy import stats
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = s[y], s[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise UpliftInputError("AUC needs rows of both classes")
    rank_all = stats.rankdata(np.concatenate([pos, neg]))
    rank_pos, rank_neg = stats.rankdata(pos), stats.rankdata(neg)
    auc = (rank_all[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    # Structural components: for each positive the share of negatives it beats, and vice versa.
    v_pos = (rank_all[:m] - rank_pos) / n
    v_neg = 1.0 - (rank_all[m:] - rank_neg) / m
    var = (v_pos.var(ddof=1) if m > 1 else 0.0) / m + (v_neg.var(ddof=1) if n > 1 else 0.0) / n
    return float(auc), float(np.sqrt(var))


def balance_auc(t, e_hat, *, max_auc: float = 0.55) -> dict:
    """Can a classifier tell treated from control rows? The AUC of cross-fitted propensities, with a DeLong
    95% CI.

    In a randomised campaign the features carry no information about the arm, so the out-of-fold AUC of
    a propensity model is 0.5 up to noise. **Rule:** the check passes when the 95% CI includes 0.5 (no
    detectable imbalance) *or* the AUC is below ``max_auc`` = 0.55 (at large n a tiny, real imbalance is
    detectable but too weak to bias effect estimates materially; beyond 0.55 treat the design as
    observational and adjust for the features).

    Parameters
    ----------
    t : array of 0/1
    e_hat : array
        Out-of-fold propensities ``P(t=1 | x)`` of the same rows, e.g. from
        :func:`uplift.fit.nuisance.cross_fit_propensity`. In-sample predictions would find "imbalance" in any
        data: only a model that never saw a row may score it.

    Returns
    -------
    dict
        ``auc``, ``lower``, ``upper`` (95% CI), ``se``, ``passed``, ``rule``, ``message``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> balance_auc(rng.integers(0, 2, 2000), rng.uniform(0.4, 0.6, 2000))["passed"]
    True
    >>> t = rng.integers(0, 2, 2000)
    >>> balance_auc(t, np.where(t == 1, 0.6, 0.4))["passed"]
    False
    """
    t = _treatment(t)
    e_hat = _propensity(e_hat, len(t))
    auc, se = delong_auc(t, e_hat)
    lower, upper = max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se)
    passed = bool(lower <= 0.5 <= upper or auc < max_auc)
    verdict = ("arms look exchangeable" if passed
               else "treatment is predictable from the features: analyse as observational")
    return {
        "auc": auc, "lower": lower, "upper": upper, "se": se, "passed": passed,
        "rule": f"pass when the 95% CI includes 0.5 or AUC < {max_auc}",
        "message": f"{verdict} (cross-fitted AUC {auc:.3f} [{lower:.3f}, {upper:.3f}])",
    }


# ------------------------------------------------------------------------------------------------ overlap
def overlap_summary(e_hat, t, bounds: tuple[float, float] = (0.05, 0.95), *, max_outside: float = 0.10,
                    n_bins: int = 20) -> dict:
    """How much of each arm sits at propensities where the other arm is scarce.

    Rows with ``e(x)`` near 0 or 1 have few comparable rows in the other arm, so their effects rest on
    extrapolation and their weights explode. The check fails when more than ``max_outside`` of either arm
    lies outside ``bounds``.

    Returns
    -------
    dict
        ``bounds``; ``share_outside_treated`` / ``_control`` and ``n_outside_treated`` / ``_control``;
        ``min_treated``, ``max_treated``, ``min_control``, ``max_control``; ``bin_edges`` (``n_bins`` + 1
        edges on [0, 1]) with ``hist_treated`` / ``hist_control`` counts; ``passed``; ``message``.

    Examples
    --------
    >>> import numpy as np
    >>> o = overlap_summary(np.array([0.01, 0.5, 0.5, 0.99]), np.array([0, 0, 1, 1]))
    >>> o["share_outside_treated"], o["passed"]
    (0.5, False)
    """
    t = _treatment(t)
    e = _propensity(e_hat, len(t))
    lo, hi = _bounds(bounds)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = {"bounds": (lo, hi)}
    outside = (e < lo) | (e > hi)
    for arm, label in ((1, "treated"), (0, "control")):
        sel = t == arm
        out[f"n_outside_{label}"] = int(outside[sel].sum())
        out[f"share_outside_{label}"] = float(outside[sel].mean())
        out[f"min_{label}"] = float(e[sel].min())
        out[f"max_{label}"] = float(e[sel].max())
        out[f"hist_{label}"] = np.histogram(e[sel], bins=edges)[0]
    out["bin_edges"] = edges
    worst = max(out["share_outside_treated"], out["share_outside_control"])
    out["passed"] = bool(worst <= max_outside)
    verdict = "overlap is adequate" if out["passed"] else "poor overlap, consider trimming (trim_mask)"
    out["message"] = (f"{verdict}: {out['share_outside_treated']:.1%} of treated and "
                      f"{out['share_outside_control']:.1%} of control rows have propensity outside "
                      f"[{lo:g}, {hi:g}]")
    return out


def _bounds(bounds) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise UpliftInputError(f"bounds must be two numbers (low, high) or 'crump', got {bounds!r}") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise UpliftInputError(f"bounds must satisfy 0 <= low < high <= 1, got ({lo}, {hi})")
    return lo, hi


def crump_bounds(e_hat) -> tuple[float, float]:
    """Optimal trimming bounds ``(α, 1 − α)`` of Crump, Hotz, Imbens & Mitnik (2009).

    With ``g = 1 / (e (1 − e))``: no trimming (α = 0) when ``max g ≤ 2 E[g]``; otherwise ``γ`` solves
    ``γ = 2 E[g | g ≤ γ]`` and ``α = 1/2 − sqrt(1/4 − 1/γ)``. Keeping ``α ≤ e ≤ 1 − α`` minimises the
    asymptotic variance of the effect on the kept rows. With roughly beta-shaped propensities α ≈ 0.1.

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = crump_bounds(np.linspace(0.001, 0.999, 10_000))
    >>> round(lo, 2), round(hi, 2)
    (0.1, 0.9)
    """
    e = np.clip(np.asarray(e_hat, dtype=np.float64), 1e-12, 1 - 1e-12)
    g = np.sort(1.0 / (e * (1.0 - e)))
    if g[-1] <= 2.0 * g.mean():
        return 0.0, 1.0
    # E[g | g <= γ] is a step function of γ: on [g_k, g_{k+1}) it equals the running mean of g_0..g_k,
    # so the fixed point is 2 * running_mean_k at the first k where the next g already exceeds it.
    running = np.cumsum(g) / np.arange(1, len(g) + 1)
    k = int(np.argmax(g[1:] > 2.0 * running[:-1]))
    gamma = 2.0 * running[k]
    alpha = 0.5 - np.sqrt(max(0.25 - 1.0 / gamma, 0.0))
    return float(alpha), float(1.0 - alpha)


def trim_mask(e_hat, bounds: tuple[float, float] | str = (0.05, 0.95)) -> tuple[np.ndarray, int]:
    """Rows to keep after trimming extreme propensities, and how many were dropped.

    Parameters
    ----------
    e_hat : array
        Propensities (e.g. from :func:`uplift.fit.nuisance.cross_fit_propensity`).
    bounds : (low, high) or "crump"
        Keep ``low <= e <= high``; ``"crump"`` uses :func:`crump_bounds`.

    Returns
    -------
    keep : ndarray of bool
    n_dropped : int

    Examples
    --------
    >>> import numpy as np
    >>> keep, n_dropped = trim_mask(np.array([0.01, 0.05, 0.5, 0.96]))
    >>> keep.tolist(), n_dropped
    ([False, True, True, False], 2)
    """
    e = np.asarray(e_hat, dtype=np.float64)
    e = _propensity(e, e.shape[0] if e.ndim == 1 else -1)
    if isinstance(bounds, str):
        if bounds.lower() != "crump":
            raise UpliftInputError(f"bounds must be (low, high) or 'crump', got {bounds!r}")
        lo, hi = crump_bounds(e)
    else:
        lo, hi = _bounds(bounds)
    keep = (e >= lo) & (e <= hi)
    return keep, int((~keep).sum())


# ------------------------------------------------------------------------------------------------ leakage
def _single_feature_auc(col: pd.Series, t: np.ndarray) -> float:
    """How well one feature alone separates the arms: max(AUC, 1 − AUC), missing values as their own value."""
    if _is_categorical(col):
        # Score each level by its treated share: the best any rule on this feature alone can do.
        codes, _ = pd.factorize(col.astype("string").fillna("(missing)"))
        share = np.bincount(codes, weights=t) / np.bincount(codes)
        score = share[codes]
    else:
        score = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(score).all():
            return 0.5
        # Missing sorts below every observed value, so "missing only in one arm" counts as separation.
        score = np.where(np.isnan(score), np.nanmin(score) - 1.0, score)
    auc, _ = delong_auc(t, score)
    return max(auc, 1.0 - auc)


def outcome_proxy_check(X: pd.DataFrame, y, *, threshold: float = 0.995, max_rows: int = 200_000,
                        random_state: int = 0) -> pd.DataFrame:
    """Features that are (almost) the outcome itself, e.g. ``revenue`` left in as a feature of ``conversion``.

    Such a feature explains the outcome in every arm, so the outcome models leave no residual and every effect
    estimate collapses to zero. A feature is flagged when, on its own, it ranks the outcome almost perfectly:
    AUC > ``threshold`` for a 0/1 outcome, |Spearman correlation| > ``threshold`` for a continuous one
    (computed on at most ``max_rows`` random rows).

    Returns
    -------
    DataFrame
        ``feature``, ``statistic`` (AUC or |Spearman|) and ``message``; empty when nothing is suspicious.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> y = (rng.random(3000) < 0.1).astype(int)
    >>> X = pd.DataFrame({"age": rng.normal(40, 10, 3000), "revenue": y * rng.gamma(2.0, 30.0, 3000)})
    >>> outcome_proxy_check(X, y)["feature"].tolist()
    ['revenue']
    """
    from scipy import stats
    X = feature_frame(X)
    y = np.asarray(y, dtype=np.float64)
    if len(y) > max_rows:
        keep = np.sort(np.random.default_rng(random_state).choice(len(y), max_rows, replace=False))
        X, y = X.iloc[keep], y[keep]
    binary = bool(np.isin(np.unique(y), (0.0, 1.0)).all())
    if binary and len(np.unique(y)) < 2:
        return pd.DataFrame(columns=["feature", "statistic", "message"])
    rows = []
    for name in X.columns:
        col = X[name]
        if _is_categorical(col):
            continue
        x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        ok = ~np.isnan(x)
        if ok.sum() < 10 or np.nanstd(x) == 0:
            continue
        if binary:
            stat = _single_feature_auc(col, y.astype(int))
            what = f"on its own it predicts the outcome almost perfectly (AUC {stat:.4f})"
        else:
            rho = stats.spearmanr(x[ok], y[ok]).statistic
            stat = float(abs(rho)) if np.isfinite(rho) else 0.0
            what = f"it moves in lockstep with the outcome (|Spearman| {stat:.4f})"
        if stat > threshold:
            rows.append((str(name), float(stat), f"{what}: it is probably another outcome (recorded after the "
                         "campaign); declare it as an outcome or exclude it"))
    return pd.DataFrame(rows, columns=["feature", "statistic", "message"])


def leakage_check(X: pd.DataFrame, t, e_hat, *, auc_threshold: float = 0.99, min_expected: float = 10.0,
                  max_weighted_smd: float = 0.2, max_levels: int = 10,
                  support: tuple[float, float] = (0.05, 0.95), min_support_rows: int = 30) -> pd.DataFrame:
    """Features that give the treatment away: likely post-treatment variables or arm-specific codes.

    Three symptoms are checked, each reported as one row (``reason`` is the symptom's code):

    * ``single_feature_auc`` — the feature alone predicts the arm almost perfectly (AUC > ``auc_threshold``,
      missing values counted as a value), e.g. "coupon_code" or "redeemed_at".
    * ``single_arm_level`` — a level (of a categorical, or of a numeric feature with at most ``max_levels``
      distinct values) occurs only in one arm although at least ``min_expected`` rows of the other arm were
      expected there (the chance of that under a common distribution is about ``exp(−min_expected)``).
    * ``weighted_smd`` — after inverse-propensity weighting with ``e_hat`` the feature is still far from
      balanced (|SMD| > ``max_weighted_smd``). Weighting by a propensity of the pre-treatment features
      balances every pre-treatment feature; a variable the campaign itself moved stays imbalanced.
      Pass ``e_hat`` fitted on the features you trust (see :func:`uplift.fit.nuisance.cross_fit_propensity`):
      a propensity that itself uses the suspect feature re-balances it, and then only the first two checks
      can see it.
      Weighting can only balance where the arms overlap, so this check uses the rows with ``e_hat`` inside
      ``support`` (and is skipped when either arm has fewer than ``min_support_rows`` there): with poor
      overlap, every strong confounder would otherwise look like a post-treatment variable.

    Returns
    -------
    DataFrame
        ``feature``, ``reason`` (``single_feature_auc`` / ``single_arm_level`` / ``weighted_smd``),
        ``statistic`` (AUC, rows in the largest one-arm level, or weighted SMD) and ``message`` (plain
        language). Empty when nothing is suspicious.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> t = rng.integers(0, 2, 4000)
    >>> X = pd.DataFrame({"age": rng.normal(40, 10, 4000), "opened_coupon": t * rng.integers(0, 2, 4000)})
    >>> leakage_check(X, t, np.full(4000, 0.5))["feature"].unique().tolist()
    ['opened_coupon']
    """
    X = feature_frame(X)
    t = _treatment(t, len(X))
    e = _propensity(e_hat, len(X))
    share_t = t.mean()
    rows = []
    for name in X.columns:
        col = X[name]
        auc = _single_feature_auc(col, t)
        if auc > auc_threshold:
            why = ("it is nearly unique per row, like an identifier: drop it"
                   if _is_categorical(col) and col.nunique() > len(col) / 2
                   else "it is probably recorded after or because of the campaign")
            rows.append((str(name), "single_feature_auc",
                         f"on its own it predicts the arm almost perfectly (AUC {auc:.3f}); {why}", auc))
        if _is_categorical(col) or col.nunique(dropna=True) <= max_levels:
            values = col.astype("string").fillna("(missing)")
            n_level = values.value_counts()
            n_treated = values[t == 1].value_counts().reindex(n_level.index, fill_value=0)
            n_control = n_level - n_treated
            # Rows of the other arm each level should have had if the feature ignored the campaign.
            only_treated = (n_control == 0) & (n_level * (1 - share_t) >= min_expected)
            only_control = (n_treated == 0) & (n_level * share_t >= min_expected)
            suspicious = n_level[only_treated | only_control].sort_values(ascending=False)
            if len(suspicious):
                parts = [f"{level!r} ({n:,} rows, all {'treated' if only_treated[level] else 'control'})"
                         for level, n in suspicious.head(3).items()]
                more = f" and {len(suspicious) - 3} more" if len(suspicious) > 3 else ""
                reason = (f"value(s) {', '.join(parts)}{more} occur in one arm only although at least "
                          f"{min_expected:g} rows of the other arm were expected")
                rows.append((str(name), "single_arm_level", reason, float(suspicious.iloc[0])))
    inside = (e >= support[0]) & (e <= support[1])
    if min(int((t[inside] == 1).sum()), int((t[inside] == 0).sum())) >= min_support_rows:
        weighted = balance_table(X[inside], t[inside], weights=ipw_weights(e[inside], t[inside]),
                                 threshold=max_weighted_smd)
        bad = weighted[weighted["flagged"]].copy()
    else:
        bad = pd.DataFrame(columns=["feature", "level", "smd", "flagged"])
    if len(bad):
        bad["abs_smd"] = bad["smd"].abs()
        for _, r in bad.sort_values("abs_smd", ascending=False).drop_duplicates("feature").iterrows():
            what = r["feature"] if r["level"] is None else f"{r['feature']}={r['level']}"
            rows.append((r["feature"], "weighted_smd",
                         f"{what} stays imbalanced after propensity weighting (SMD {r['smd']:.2f}); "
                         "a variable the campaign itself changed looks like this", float(r["smd"])))
    out = pd.DataFrame([(f, code, stat, msg) for f, code, msg, stat in rows],
                       columns=["feature", "reason", "statistic", "message"])
    return out.sort_values(["feature", "reason"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ E-value
def _e_of_rr(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017): RR + sqrt(RR (RR − 1)), after inverting RR < 1."""
    rr = 1.0 / rr if rr < 1 else rr
    return float(rr + np.sqrt(rr * (rr - 1.0)))


def e_value(estimate: float, lower: float, upper: float, baseline_risk: float | None = None,
            kind: str = "rd") -> dict:
    """E-value: the minimum strength of association (risk-ratio scale) that an unmeasured confounder would
    need with both treatment and outcome to fully explain away the effect (VanderWeele & Ding 2017).

    Reported for the point estimate and for the CI limit nearest the null (1 when the CI includes the
    null: no confounding is needed to make the effect compatible with zero).

    Parameters
    ----------
    estimate, lower, upper : float
        The effect and its 95% CI, on the scale given by ``kind``.
    baseline_risk : float, optional
        Control-arm outcome rate; required for ``kind="rd"``.
    kind : {"rd", "rr", "smd"}
        ``"rd"`` risk difference (converted with ``RR = (p0 + RD) / p0``, treating ``p0`` as known);
        ``"rr"`` risk ratio; ``"smd"`` standardized mean difference ``d`` of a continuous outcome
        (``RR ≈ exp(0.91 d)``, VanderWeele & Ding's approximation).

    Returns
    -------
    dict
        ``rr``, ``rr_lower``, ``rr_upper``, ``e_value`` (point), ``e_value_ci``, ``message``.

    Examples
    --------
    >>> r = e_value(3.9, 1.8, 8.7, kind="rr")      # VanderWeele & Ding's worked example
    >>> round(r["e_value"], 2), round(r["e_value_ci"], 2)
    (7.26, 3.0)
    >>> round(e_value(0.05, 0.02, 0.08, baseline_risk=0.10)["e_value"], 3)   # RR = 1.5
    2.366
    """
    est, lo, hi = float(estimate), float(lower), float(upper)
    if not np.isfinite([est, lo, hi]).all() or not lo <= est <= hi:
        raise UpliftInputError(f"e_value needs lower <= estimate <= upper, got {lo}, {est}, {hi}")
    if kind == "rd":
        if baseline_risk is None or not 0.0 < float(baseline_risk) < 1.0:
            raise UpliftInputError("e_value(kind='rd') needs baseline_risk, the control-arm outcome rate "
                                   "in (0, 1)")
        p0 = float(baseline_risk)
        if p0 + est <= 0:
            raise UpliftInputError(f"risk difference {est} with baseline risk {p0} implies a negative "
                                   "treated risk")
        to_rr = lambda d: (p0 + d) / p0 if p0 + d > 0 else np.nan  # noqa: E731
    elif kind == "rr":
        if lo <= 0:
            raise UpliftInputError(f"risk ratios must be positive, got lower limit {lo}")
        to_rr = float
    elif kind == "smd":
        to_rr = lambda d: float(np.exp(0.91 * d))  # noqa: E731
    else:
        raise UpliftInputError(f"kind must be 'rd', 'rr' or 'smd', got {kind!r}")
    rr, rr_lo, rr_hi = to_rr(est), to_rr(lo), to_rr(hi)
    e_point = _e_of_rr(rr)
    if (rr_lo if np.isfinite(rr_lo) else 0.0) <= 1.0 <= rr_hi:
        e_ci = 1.0
    else:
        e_ci = _e_of_rr(rr_lo if rr > 1 else rr_hi)
    message = (f"an unmeasured confounder associated with both treatment and outcome by a risk ratio of "
               f"{e_point:.2f} each could explain the effect away; {e_ci:.2f} each could move the CI to "
               "include no effect")
    return {"rr": rr, "rr_lower": rr_lo, "rr_upper": rr_hi, "e_value": e_point, "e_value_ci": e_ci,
            "message": message}
