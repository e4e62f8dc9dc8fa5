"""Uplift evaluation metrics: Qini and uplift curves, their normalised areas, uplift@k, calibration by decile.

Every metric is a plain function of numpy arrays ``(y, uplift, treatment)``: ``y`` the outcome (binary or
continuous), ``uplift`` the model's predicted uplift (higher = target first) and ``treatment`` 0 = control,
1 = treated. The point estimates follow the scikit-uplift (``sklift.metrics``) definitions exactly, ties and
normalisation included, so numbers can be compared with published sklift results.

Observational designs pass ``dr``, a per-row doubly-robust (AIPW) score whose mean over any group of customers
estimates that group's average uplift. It replaces the raw treated-minus-control comparison:

* uplift curve at ``n`` = ``sum(dr)`` over the top ``n`` rows (incremental outcomes had the top ``n`` been
  treated), where the raw curve is ``(mean_T - mean_C) * n``;
* Qini curve at ``n`` = that sum times the overall treated share ``N_T / N``. The raw Qini is the uplift curve
  times the treated share *among the top n*; in an RCT that share is ``N_T / N`` in expectation, and under
  confounding the local share depends on the score, so the DR version uses the overall share. The Qini and
  uplift curves then differ only by a constant, so with ``negative_effect=True`` the normalised Qini and AUUC
  coincide in DR mode;
* the perfect curves rank rows by ``dr`` itself (the pointwise-highest curve of cumulative ``dr``). For the
  Qini this matches sklift's raw ideal ordering in an RCT with IPW scores; sklift's raw *uplift* normaliser
  also credits the empty-control start of its ideal curve, so raw and DR AUUC values are on different scales
  (compare learners within one mode, not across);
* uplift@k = mean of ``dr`` over the selected rows (``by_group``: over the top-k share of each group).

Everything is computed by one engine (:class:`_Scorer`) that ranks rows once and evaluates the metrics under
per-row weights. The point estimate uses unit weights; :func:`metric_ci` and :func:`evaluate_scores` reuse the
same ranking with Poisson(1) bootstrap weights, so a bootstrap replicate is exactly the metric of the
replicated rows, ties included, without re-sorting.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

from uplift.errors import UpliftInputError
from uplift.evaluate._areas import curve_areas

__all__ = [
    "auuc", "evaluate_scores", "metric_ci", "perfect_qini_curve", "perfect_uplift_curve", "qini_auc_score",
    "qini_curve", "uplift_at_k", "uplift_auc_score", "uplift_by_decile", "uplift_curve",
]

Strategy = Literal["overall", "by_group"]

#: Resample x row cells handled per bootstrap chunk; bounds memory (~4 cumulative arrays of this size).
_CHUNK_CELLS = 1 << 21
#: A ranking with at most this many distinct scores is accumulated group by group (see _Ranked.cumsums).
_FEW_GROUPS = 32
#: Bootstrap weights are Poisson(1) truncated at this count (P(w > 8) ~ 1e-6), stored as uint8.
_MAX_WEIGHT = 8
_POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(i) for i in range(_MAX_WEIGHT)]).astype(np.float32)
#: Customer types (treated responder, treated non-responder, control responder, control non-responder): with a
#: binary outcome the perfect curves depend on the rows only through the (weighted) count of each type.
_TYPE_T = np.array([1.0, 1.0, 0.0, 0.0])
_TYPE_Y = np.array([1.0, 0.0, 1.0, 0.0])


# ---------------------------------------------------------------------------------------------------------
# Validation, once at the boundary
# ---------------------------------------------------------------------------------------------------------

def _column(values, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise UpliftInputError(
            f"{name} must be one-dimensional (one value per customer); got shape {arr.shape}")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise UpliftInputError(
            f"{name} must be numeric with no missing values; got dtype {arr.dtype}") from None
    if n is not None and arr.size != n:
        raise UpliftInputError(
            f"{name} has {arr.size} rows but y has {n}: pass one value per customer, aligned row by row")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise UpliftInputError(
            f"{name} has {int(bad.sum())} missing or infinite value(s) (first at row {int(np.argmax(bad))}); "
            "drop or impute those rows before scoring")
    return arr


def _validate(y, uplift, treatment, dr=None):
    """Arrays as float64 vectors of one length, finite, with ``treatment`` 0/1 and both groups present."""
    y = _column(y, "y")
    if y.size == 0:
        raise UpliftInputError("y is empty: score at least one treated and one control customer")
    uplift = _column(uplift, "uplift", y.size)
    treatment = _column(treatment, "treatment", y.size)
    treated = treatment == 1.0
    if not (treated | (treatment == 0.0)).all():
        levels = np.unique(treatment)
        raise UpliftInputError(
            f"treatment must be coded 0 = control, 1 = treated; found values {levels[:5].tolist()}: "
            "recode it (for several arms, score each arm against control separately)")
    if treated.all() or not treated.any():
        missing = "control" if treated.all() else "treated"
        raise UpliftInputError(
            f"treatment has no {missing} rows: uplift needs both treated and control customers")
    if dr is not None:
        dr = _column(dr, "dr", y.size)
    return y, uplift, treatment, dr


def _check_k(k, n: int) -> int | float:
    kind = np.asarray(k).dtype.kind
    if kind == "f" and 0 < k < 1:
        return float(k)
    if kind in "iu" and 0 < k < n:
        return int(k)
    raise UpliftInputError(
        f"k={k!r} must be a share in (0, 1) or a whole number of customers in [1, {n - 1}]")


def _check_strategy(strategy: str) -> None:
    if strategy not in ("overall", "by_group"):
        raise UpliftInputError(f"strategy must be 'overall' or 'by_group', got {strategy!r}")


# ---------------------------------------------------------------------------------------------------------
# The one place that sorts and counts
# ---------------------------------------------------------------------------------------------------------

def _descending_order(score: np.ndarray) -> np.ndarray:
    # sklift's order: stable ascending sort reversed, so tied rows come last-row-first. Only uplift@k can
    # see the order inside a tie (curves are read at the end of each tied group); matching it keeps
    # uplift@k equal to sklift's.
    return np.argsort(score, kind="mergesort")[::-1]


def _columns(treatment: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Per-row quantities whose cumulative (weighted) sums make every curve: N_T, N_C, Y_T, Y_C."""
    control = 1.0 - treatment
    return np.stack([treatment, control, outcome * treatment, outcome * control])


class _Ranked:
    """Rows ranked once by descending score, and cumulative sums of their columns down the ranking.

    Parameters
    ----------
    score : (n,) array
        Ranking score; rows with equal score form one group (one point on a curve).
    columns : (m, n) array
        Per-row values to accumulate, in the caller's row order.
    presorted : bool
        The rows are already in ranked order (skips the sort; ties keep the given order).
    """

    def __init__(self, score: np.ndarray, columns: np.ndarray, *, presorted: bool = False) -> None:
        self.order = None if presorted else _descending_order(score)
        ranked = score if presorted else score[self.order]
        self.columns = columns if presorted else columns[:, self.order]
        self.n = ranked.size
        self.ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
        self.all_distinct = self.ends.size == self.n
        self._exact: np.ndarray | None = None

    def _exact_columns(self) -> np.ndarray:
        # Which columns (counts, binary outcomes) stay exact in int32 under uint8 weights: an int32 cumulative
        # sum is about four times faster than a float64 one. Checked once, on the first weighted call.
        if self._exact is None:
            small = np.abs(self.columns).max(axis=1, initial=0) * self.n * _MAX_WEIGHT < 2**31
            self._exact = small & (self.columns == np.round(self.columns)).all(axis=1)
            self._int_columns = self.columns[self._exact].astype(np.int32)
            self._float_columns = self.columns[~self._exact]
        return self._exact

    def cumsums(self, weights: np.ndarray | None = None, *, at_ends: bool = True) -> list[np.ndarray]:
        """Cumulative weighted sums of each column: a list of m arrays (B, T), read at the end of each tied
        group (or (B, n) at every row with ``at_ends=False``).

        ``weights`` is (B, n) in the caller's row order, or None for unit weights (B = 1).
        """
        if weights is None:
            sums = list(np.cumsum(self.columns, axis=-1)[:, None, :])
        elif at_ends and self.ends.size <= _FEW_GROUPS:
            # Few distinct scores (e.g. the ideal ranking of a binary or zero-inflated outcome): sum each tied
            # group with one matrix product and accumulate across groups, not a running sum over every row.
            w = (weights if self.order is None else np.take(weights, self.order, axis=1)).astype(np.float64)
            starts = np.r_[0, self.ends[:-1] + 1]
            groups = np.stack([w[:, a:b + 1] @ self.columns[:, a:b + 1].T
                               for a, b in zip(starts, self.ends, strict=True)], axis=-1)
            return list(np.cumsum(groups, axis=-1).transpose(1, 0, 2))
        else:
            w = weights if self.order is None else np.take(weights, self.order, axis=1)
            if w.dtype == np.uint8:
                exact = self._exact_columns()
                blocks = [(np.int32, exact, self._int_columns), (np.float64, ~exact, self._float_columns)]
            else:
                blocks = [(np.float64, np.ones(len(self.columns), bool), self.columns)]
            sums = [None] * len(self.columns)
            for dtype, which, columns in blocks:
                if which.any():
                    block = np.empty((w.shape[0], *columns.shape), dtype=dtype)
                    np.multiply(w[:, None, :], columns[None], out=block)
                    np.cumsum(block, axis=-1, out=block)
                    for j, column_sums in zip(np.flatnonzero(which), block.transpose(1, 0, 2), strict=True):
                        sums[j] = column_sums
        if at_ends and not self.all_distinct:
            return [np.take(column_sums, self.ends, axis=-1) for column_sums in sums]
        return sums


def _totals(sums: list[np.ndarray]) -> np.ndarray:
    """(B, m) float totals: the last cumulative sum of each column."""
    return np.stack([column_sums[:, -1] for column_sums in sums], axis=1).astype(np.float64)


def _points(totals: np.ndarray) -> list[np.ndarray]:
    """Totals (B, m) as one-point cumulative sums: the end of every curve."""
    return [totals[:, j, None] for j in range(totals.shape[1])]


# ---------------------------------------------------------------------------------------------------------
# Curves and areas, vectorised over resamples (first axis)
# ---------------------------------------------------------------------------------------------------------

def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` for a count ``den`` (0 or at least 1) and a sum ``num`` over the same rows.

    A group with no rows yet has ``num == 0`` and contributes 0 (sklift's convention) without a masked
    divide.
    """
    return np.divide(num, np.maximum(den, 1), dtype=np.float64)


def _curve(kind: str, sums: list[np.ndarray], totals: np.ndarray,
           observational: bool) -> tuple[np.ndarray, np.ndarray]:
    """(x, gain) of the uplift or Qini curve from cumulative N_T, N_C, Y_T, Y_C (B, T); x = customers."""
    treated, control, treated_out, control_out = sums
    x = treated + control
    if observational:
        gain = np.add(treated_out, control_out, dtype=np.float64)
        if kind == "qini":
            gain *= _ratio(totals[:, 0], totals[:, 0] + totals[:, 1])[:, None]
    elif kind == "uplift":
        gain = _ratio(treated_out, treated)
        gain -= _ratio(control_out, control)
        gain *= x
    else:
        gain = _ratio(treated, control)
        gain *= control_out
        np.subtract(treated_out, gain, out=gain)
    return x, gain


def _span(x: np.ndarray) -> np.ndarray:
    """Trapezoid weights of the curve through (0, 0) and (x_j, gain_j): area = sum_j gain_j * span_j / 2.

    span_j = x_{j+1} - x_{j-1} (x_0 = 0, and the last point has no right neighbour); computed once per ranking
    and shared by the Qini and uplift curves, one dot product each instead of four array passes.
    """
    span = np.empty(x.shape)
    span[:, -1] = x[:, -1] - (x[:, -2] if x.shape[1] > 1 else 0.0)
    if x.shape[1] > 1:
        span[:, 0] = x[:, 1]
        span[:, 1:-1] = x[:, 2:] - x[:, :-2]
    return span


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("bj,bj->b", a, b)


def _curve_areas(sums: list[np.ndarray], totals: np.ndarray, observational: bool,
                 kinds) -> dict[str, np.ndarray]:
    """Trapezoid areas under the uplift and/or Qini curves of cumulative N_T, N_C, Y_T, Y_C, per resample.

    The formulas of :func:`_curve`, expanded so each area is a few dot products with the trapezoid weights
    and no (B, T) curve is materialised (the bootstrap's hot loop):
    uplift = (Y_T/N_T - Y_C/N_C) * N, qini = Y_T - (Y_C/N_C) * N_T; with dr, uplift = Y_T + Y_C (the dr sums)
    and qini = uplift * overall treated share. With dr, ``sums`` may also be just (N, sum of dr).
    """
    if observational:
        if len(sums) == 2:
            n_all, dr_sums = sums
            span = _span(n_all)
            uplift = _dot(dr_sums, span) / 2.0
        else:
            span = _span(sums[0] + sums[1])
            uplift = (_dot(sums[2], span) + _dot(sums[3], span)) / 2.0
        return {"uplift": uplift, "qini": _dr_qini(uplift, totals)}
    treated, control, treated_out, control_out = sums
    n_all = treated + control
    span = _span(n_all)
    control_mean = _ratio(control_out, control)
    out = {}
    if "uplift" in kinds:
        n_span = np.multiply(n_all, span, out=span if "qini" not in kinds else None)
        out["uplift"] = (_dot(_ratio(treated_out, treated), n_span) - _dot(control_mean, n_span)) / 2.0
    if "qini" in kinds:
        out["qini"] = (_dot(treated_out, span) - _dot(control_mean, np.multiply(treated, span))) / 2.0
    return out


def _dr_qini(uplift: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """The DR Qini area: the DR uplift area times the overall treated share (see the module docstring)."""
    return uplift * _ratio(totals[:, 0], totals[:, 0] + totals[:, 1])


def _baseline(kind: str, totals: np.ndarray, observational: bool) -> np.ndarray:
    """Area under the random-targeting chord from (0, 0) to the curve's end (the same for every ranking)."""
    end = _curve(kind, _points(totals), totals, observational)[1][:, 0]
    return (totals[:, 0] + totals[:, 1]) * end / 2.0


def _with_origin(x: np.ndarray, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[0.0, x[0]], np.r_[0.0, gain[0]]


def _perfect_uplift_score(y: np.ndarray, treatment: np.ndarray, by_outcome: bool) -> np.ndarray:
    # sklift's ideal ordering: treated responders, control non-responders, then control responders and
    # treated non-responders in the order that keeps the curve highest.
    return 2.0 * (y == treatment) + (y if by_outcome else treatment)


def _perfect_qini_score(y: np.ndarray, treatment: np.ndarray) -> np.ndarray:
    return y * treatment - y * (1.0 - treatment)


def _first_at_least(count: Callable[[np.ndarray, np.ndarray], np.ndarray], target: np.ndarray,
                    n: int) -> np.ndarray:
    """First position where the non-decreasing ``count(b, i)`` reaches ``target[b]`` (n if never).

    A binary search vectorised over resamples: O(B log n) reads instead of a pass over the (B, n) array.
    """
    rows = np.arange(target.size)
    lo, hi = np.zeros(target.size, np.int64), np.full(target.size, n, np.int64)
    while (active := lo < hi).any():
        mid = (lo + hi) // 2
        reached = count(rows, np.minimum(mid, n - 1)) >= target
        hi = np.where(active & reached, mid, hi)
        lo = np.where(active & ~reached, mid + 1, lo)
    return lo


@dataclass(frozen=True)
class _Metric:
    kind: Literal["qini", "auuc", "uplift_at_k"]
    negative_effect: bool = True
    k: int | float = 0.3
    strategy: Strategy = "overall"


class _Scorer:
    """Validated rows ranked once by predicted uplift; evaluates metrics under (B, n) row weights.

    ``weights=None`` gives the point estimate; uint8 Poisson counts give bootstrap replicates. The weights
    are in the scorer's ranked row order (rows are iid in a bootstrap, so no re-ordering is needed).
    """

    def __init__(self, y: np.ndarray, uplift: np.ndarray, treatment: np.ndarray,
                 dr: np.ndarray | None = None) -> None:
        order = _descending_order(uplift)
        self.observational = dr is not None
        self.t = treatment[order]
        self.y = (y if dr is None else dr)[order]
        self.n = self.t.size
        self.ranked = _Ranked(uplift[order], _columns(self.t, self.y), presorted=True)
        # A binary outcome lets the perfect curves be built from four type counts per resample.
        self.by_type = not self.observational and bool(np.isin(self.y, (0.0, 1.0)).all())
        self._perfect: dict[str, _Ranked] = {}

    @classmethod
    def of_binary_totals(cls, n: int) -> _Scorer:
        """A scorer that knows only the outcome is binary (raw design): enough for the perfect curves, which
        then depend on the per-resample totals alone (see ``by_type``)."""
        shell = cls.__new__(cls)
        shell.observational, shell.by_type, shell.n, shell._perfect = False, True, n, {}
        return shell

    # -- perfect curves ------------------------------------------------------------------------------------
    def _perfect_ranking(self, key: str) -> _Ranked:
        if key not in self._perfect:
            t, y = (_TYPE_T, _TYPE_Y) if self.by_type else (self.t, self.y)
            if key == "dr":  # the DR curves need only the running count and the running sum of dr
                self._perfect[key] = _Ranked(y, np.stack([np.ones_like(y), y]))
                return self._perfect[key]
            elif key == "qini":
                score = _perfect_qini_score(y, t)
            else:
                score = _perfect_uplift_score(y, t, by_outcome=key == "uplift_y")
            self._perfect[key] = _Ranked(score, _columns(t, y))
        return self._perfect[key]

    def _perfect_sums(self, key: str, weights: np.ndarray | None, totals: np.ndarray) -> list[np.ndarray]:
        if self.by_type:
            treated, control, treated_out, control_out = totals.T
            weights = np.stack([treated_out, treated - treated_out, control_out, control - control_out],
                               axis=1)
        return self._perfect_ranking(key).cumsums(weights)

    def _perfect_area(self, kind: str, weights, totals: np.ndarray, negative_effect: bool,
                      memo: dict) -> np.ndarray:
        """Area under the perfect curve, per resample (``memo`` shares work between metrics of one call)."""
        if kind == "qini" and not negative_effect:
            # sklift: the ideal model reaches the total incremental outcome R with R customers, then is flat.
            n_all = totals[:, 0] + totals[:, 1]
            reach = _curve("qini", _points(totals), totals, self.observational)[1][:, 0]
            # Outside [0, N] that path is not a curve (sklift raises); the metric is undefined there.
            reach[(reach < 0) | (reach > n_all)] = np.nan
            return reach * (n_all - reach / 2.0)
        if self.observational:  # one ranking by dr serves both curves
            if "dr" not in memo:
                memo["dr"] = _curve_areas(self._perfect_sums("dr", weights, totals), totals, True, ())
            return memo["dr"][kind]
        if kind == "qini":
            return _curve_areas(self._perfect_sums("qini", weights, totals), totals, False, ("qini",))["qini"]
        # Raw uplift: sklift picks one of two orderings by comparing control responders with treated
        # non-responders, and in a resample that choice can flip, so each resample gets its own.
        if self.by_type:
            control_responders, treated_nonresponders = totals[:, 3], totals[:, 0] - totals[:, 2]
        else:
            cr = np.flatnonzero((self.y == 1) & (self.t == 0))
            tn = np.flatnonzero((self.y == 0) & (self.t == 1))
            control_responders, treated_nonresponders = (
                np.array([float(idx.size)]) if weights is None else np.take(weights, idx, axis=1).sum(axis=1)
                for idx in (cr, tn))
        by_outcome = control_responders > treated_nonresponders
        area = np.empty(totals.shape[0])
        for flag, key in ((True, "uplift_y"), (False, "uplift_t")):
            rows = by_outcome == flag
            if rows.any():
                sums = self._perfect_sums(key, None if weights is None else weights[rows], totals[rows])
                area[rows] = _curve_areas(sums, totals[rows], False, ("uplift",))["uplift"]
        return area

    def _top(self, full: list[np.ndarray], count_row: int | None, target: np.ndarray) -> np.ndarray:
        """Column sums (B, 4) over the top-ranked rows until the cumulative count reaches ``target``.

        ``count_row`` 0 / 1 counts treated / control rows; None counts all rows. The row where the target is
        crossed enters only with the part of its weight needed (a replicated row is several rows).
        """
        def count(b, i):
            return full[0][b, i] + full[1][b, i] if count_row is None else full[count_row][b, i]

        pos = _first_at_least(count, target, self.n)
        rows, last = np.arange(target.size), np.minimum(pos, self.n - 1)
        before = np.maximum(last - 1, 0)
        started = (last > 0)[:, None]
        prev = np.where(started, np.stack([column_sums[rows, before] for column_sums in full], axis=1), 0.0)
        prev_count = np.where(started[:, 0], count(rows, before), 0.0)
        top = prev + (target - prev_count)[:, None] * self.ranked.columns[:, last].T
        top[(pos >= self.n) | (target <= 0)] = np.nan
        return top

    def _uplift_at_k(self, full: list[np.ndarray], totals: np.ndarray, k: int | float,
                     strategy: str) -> np.ndarray:
        def cutoff(size):
            return np.floor(k * size) if isinstance(k, float) else np.full(size.shape, float(k))

        with np.errstate(divide="ignore", invalid="ignore"):
            if strategy == "overall":
                target = cutoff(totals[:, 0] + totals[:, 1])
                top = self._top(full, None, target)
                if self.observational:
                    return (top[:, 2] + top[:, 3]) / target
                return top[:, 2] / top[:, 0] - top[:, 3] / top[:, 1]
            treated_target, control_target = cutoff(totals[:, 0]), cutoff(totals[:, 1])
            treated_top = self._top(full, 0, treated_target)
            control_top = self._top(full, 1, control_target)
            if self.observational:
                return (treated_top[:, 2] + control_top[:, 3]) / (treated_target + control_target)
            return treated_top[:, 2] / treated_target - control_top[:, 3] / control_target

    def scores(self, weights: np.ndarray | None, metrics: dict[str, _Metric]) -> dict[str, np.ndarray]:
        """Each metric per resample, shape (B,); B = 1 for ``weights=None``."""
        full = self.ranked.cumsums(weights, at_ends=False)
        totals = _totals(full)
        kinds = {"qini": "qini", "auuc": "uplift"}
        wanted = {kinds[m.kind] for m in metrics.values() if m.kind in kinds}
        if not wanted:
            actual = {}
        elif weights is not None:  # resamples: one compiled pass each, no (B, n) temporaries (uplift.evaluate._areas)
            actual = curve_areas(full, None if self.ranked.all_distinct else self.ranked.ends, self.observational)
            if self.observational:
                actual["qini"] = _dr_qini(actual["uplift"], totals)
        else:
            at_ends = full if self.ranked.all_distinct else [np.take(c, self.ranked.ends, axis=-1) for c in full]
            actual = _curve_areas(at_ends, totals, self.observational, wanted)
        out, memo = {}, {}
        for name, metric in metrics.items():
            if metric.kind == "uplift_at_k":
                out[name] = self._uplift_at_k(full, totals, metric.k, metric.strategy)
                continue
            kind = kinds[metric.kind]
            perfect = self._perfect_area(kind, weights, totals, metric.negative_effect, memo)
            base = _baseline(kind, totals, self.observational)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[name] = (actual[kind] - base) / (perfect - base)
        return out


#: From this many rows on, :func:`evaluate_scores` computes its point estimates by walking the ranking in
#: blocks (:func:`_streamed_scores`): memory stays a few arrays of n, not the ~27 of the vectorised engine.
_STREAM_ROWS = 2_000_000
_BLOCK = 1 << 18


def _validate_blocks(y, uplift, treatment, dr=None):
    """The checks of :func:`_validate`, block by block and without float64 copies of the inputs."""
    arrays = {"y": np.asarray(y), "uplift": np.asarray(uplift), "treatment": np.asarray(treatment)}
    if dr is not None:
        arrays["dr"] = np.asarray(dr)
    n = arrays["y"].size
    for arr in arrays.values():
        if arr.ndim != 1 or arr.size != n or arr.dtype.kind not in "biuf":
            return _validate(y, uplift, treatment, dr)  # let the general path name the problem
    n_treated = 0
    for start in range(0, n, _BLOCK):
        for arr in arrays.values():
            block = arr[start:start + _BLOCK]
            if arr.dtype.kind == "f" and not np.isfinite(block).all():
                return _validate(y, uplift, treatment, dr)
        t = arrays["treatment"][start:start + _BLOCK]
        if not ((t == 0) | (t == 1)).all():
            return _validate(y, uplift, treatment, dr)
        n_treated += int(np.count_nonzero(t))
    if n_treated in (0, n):
        return _validate(y, uplift, treatment, dr)
    return arrays["y"], arrays["uplift"], arrays["treatment"], arrays.get("dr")


def _stream_curves(score: np.ndarray, treatment: np.ndarray, outcome: np.ndarray, observational: bool,
                   top_rows: int | None = None) -> tuple[dict[str, float], np.ndarray, np.ndarray | None]:
    """Areas under the uplift and Qini curves of rows ranked by ``score``, walking the ranking in blocks.

    Exactly the quantities of the vectorised engine (same order, ties, trapezoids and conventions), with O(block)
    memory besides the ranking. Returns the areas, the totals (N_T, N_C, Y_T, Y_C) and the column sums over the
    first ``top_rows`` ranked rows (for uplift@k).
    """
    order = _descending_order(score)
    n = order.size
    carry = np.zeros(4)
    prev_x = prev_up = prev_q = 0.0
    area_up = area_q = 0.0
    top = None
    for start in range(0, n, _BLOCK):
        idx = order[start:start + _BLOCK]
        ranked = score[idx]
        nxt = score[order[start + _BLOCK]] if start + _BLOCK < n else None
        ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True if nxt is None else ranked[-1] != nxt))
        t = treatment[idx].astype(np.float64)
        v = outcome[idx].astype(np.float64)
        cols = np.cumsum(np.stack([t, 1.0 - t, v * t, v * (1.0 - t)]), axis=1)
        cols += carry[:, None]
        if top_rows is not None and start < top_rows <= start + idx.size:
            top = cols[:, top_rows - start - 1].copy()
        carry = cols[:, -1].copy()
        if ends.size == 0:
            continue  # the whole block lies inside one run of tied scores: no curve point ends in it
        treated, control, treated_out, control_out = cols[:, ends]
        x = treated + control
        if observational:
            up = treated_out + control_out
            q = up
        else:
            up = (_ratio(treated_out, treated) - _ratio(control_out, control)) * x
            q = treated_out - _ratio(treated, control) * control_out
        xs = np.r_[prev_x, x]
        area_up += float(np.dot(np.diff(xs), np.r_[prev_up, up][1:] + np.r_[prev_up, up][:-1]) / 2.0)
        area_q += float(np.dot(np.diff(xs), np.r_[prev_q, q][1:] + np.r_[prev_q, q][:-1]) / 2.0)
        prev_x, prev_up, prev_q = float(x[-1]), float(up[-1]), float(q[-1])
    if observational:  # the DR Qini is the DR uplift curve times the overall treated share
        area_q = area_up * float(_ratio(carry[0], carry[0] + carry[1]))
    return {"uplift": area_up, "qini": area_q}, carry, top


def _streamed_scores(y, uplift, treatment, dr, metrics: dict[str, _Metric]) -> dict[str, float] | None:
    """Point estimates of Qini, AUUC and uplift@k ("overall") with little memory, or None when the case needs
    the vectorised engine (a continuous outcome's raw perfect curve, or other metric options)."""
    observational = dr is not None
    binary = observational or bool(np.isin(y, (0, 1)).all())
    if not binary or any(m.kind == "qini" and not m.negative_effect or m.kind == "uplift_at_k"
                         and m.strategy != "overall" for m in metrics.values()):
        return None
    outcome = y if dr is None else dr
    n = np.asarray(y).size
    ks = {m.k for m in metrics.values() if m.kind == "uplift_at_k"}
    if len(ks) > 1:
        return None
    k = next(iter(ks), None)
    top_rows = None if k is None else int(np.floor(k * n)) if isinstance(k, float) else int(k)
    areas, totals, top = _stream_curves(uplift, treatment, outcome, observational,
                                        top_rows if top_rows and top_rows > 0 else None)
    totals = totals[None]
    if observational:  # the perfect ranking orders rows by dr itself; both curves come from it
        perfect, _, _ = _stream_curves(outcome, treatment, outcome, True)
    else:
        shell = _Scorer.of_binary_totals(n)
        memo: dict = {}
        perfect = {kind: float(shell._perfect_area(kind, None, totals, True, memo)[0]) for kind in ("qini", "uplift")}
    kinds = {"qini": "qini", "auuc": "uplift"}
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, metric in metrics.items():
            if metric.kind == "uplift_at_k":
                if top is None:
                    out[name] = np.nan
                elif observational:
                    out[name] = float((top[2] + top[3]) / top_rows)
                else:
                    out[name] = float(top[2] / top[0] - top[3] / top[1])
                continue
            kind = kinds[metric.kind]
            base = float(_baseline(kind, totals, observational)[0])
            out[name] = (areas[kind] - base) / (perfect[kind] - base)
    return out


def _point(y, uplift, treatment, dr, metric: _Metric) -> float:
    return float(_Scorer(y, uplift, treatment, dr).scores(None, {"m": metric})["m"][0])


# ---------------------------------------------------------------------------------------------------------
# Public curves and scores
# ---------------------------------------------------------------------------------------------------------

def uplift_curve(y, uplift, treatment, *, dr=None) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve: incremental outcomes if the top ``x`` customers by predicted uplift were treated.

    Raw: ``(mean_T - mean_C) * x`` over the top ``x`` rows (scikit-uplift's definition); with ``dr``: the sum
    of ``dr`` over the top ``x`` rows. Tied scores form one point.

    Parameters
    ----------
    y : (n,) array
        Outcome, binary or continuous.
    uplift : (n,) array
        Predicted uplift; higher is targeted first.
    treatment : (n,) array of 0/1
    dr : (n,) array, optional
        Doubly-robust (AIPW) scores, for observational data.

    Returns
    -------
    x, gain : arrays starting at (0, 0)
        Customers targeted and incremental outcomes.

    Examples
    --------
    >>> x, gain = uplift_curve([1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1], [1, 0, 0, 1])
    >>> x.tolist(), gain.tolist()
    ([0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 1.5, 0.0])
    """
    y, uplift, treatment, dr = _validate(y, uplift, treatment, dr)
    sums = _Ranked(uplift, _columns(treatment, y if dr is None else dr)).cumsums()
    return _with_origin(*_curve("uplift", sums, _totals(sums), dr is not None))


def qini_curve(y, uplift, treatment, *, dr=None) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: incremental outcomes among the treated customers in the top ``x``.

    Raw: ``Y_T - Y_C * N_T / N_C`` over the top ``x`` rows (Radcliffe 2007; scikit-uplift's definition); with
    ``dr``: ``sum(dr)`` over the top ``x`` rows times the overall treated share (see the module docstring).

    Parameters
    ----------
    y, uplift, treatment, dr : arrays
        As in :func:`uplift_curve`.

    Returns
    -------
    x, gain : arrays starting at (0, 0)

    Examples
    --------
    >>> x, gain = qini_curve([1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1], [1, 0, 0, 1])
    >>> gain.tolist()
    [0.0, 1.0, 1.0, 0.5, 0.0]
    """
    y, uplift, treatment, dr = _validate(y, uplift, treatment, dr)
    sums = _Ranked(uplift, _columns(treatment, y if dr is None else dr)).cumsums()
    return _with_origin(*_curve("qini", sums, _totals(sums), dr is not None))


def perfect_uplift_curve(y, treatment, *, dr=None) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve of an ideal ranking, the normaliser of :func:`uplift_auc_score`.

    Raw: scikit-uplift's ordering built from ``(y, treatment)`` (treated responders and control
    non-responders first); it is a binary-outcome construction and is applied unchanged to continuous ``y``
    for comparability with sklift. With ``dr``: rows ranked by ``dr``.

    Examples
    --------
    >>> perfect_uplift_curve([1, 0, 1, 0], [1, 0, 0, 1])[1].tolist()
    [0.0, 1.0, 2.0, 1.5, 0.0]
    """
    y, _, treatment, dr = _validate(y, np.zeros(np.shape(y)), treatment, dr)
    outcome = y if dr is None else dr
    if dr is None:
        by_outcome = np.sum((y == 1) & (treatment == 0)) > np.sum((y == 0) & (treatment == 1))
        score = _perfect_uplift_score(y, treatment, bool(by_outcome))
    else:
        score = dr
    sums = _Ranked(score, _columns(treatment, outcome)).cumsums()
    return _with_origin(*_curve("uplift", sums, _totals(sums), dr is not None))


def perfect_qini_curve(y, treatment, *, negative_effect: bool = True,
                       dr=None) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve of an ideal ranking, the normaliser of :func:`qini_auc_score`.

    With ``negative_effect=True`` the ideal ranking puts treated responders first and control responders last
    (or ranks by ``dr``); with ``False`` it reaches the total incremental outcome and stays flat (sklift).

    Examples
    --------
    >>> perfect_qini_curve([1, 0, 1, 0], [1, 0, 0, 1])[1].tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    y, _, treatment, dr = _validate(y, np.zeros(np.shape(y)), treatment, dr)
    if not isinstance(negative_effect, bool):
        raise UpliftInputError(f"negative_effect must be True or False, got {negative_effect!r}")
    observational = dr is not None
    outcome = y if dr is None else dr
    if not negative_effect:
        totals = _columns(treatment, outcome).sum(axis=1)[None]
        reach = float(_curve("qini", _points(totals), totals, observational)[1][0, 0])
        return np.array([0.0, reach, float(y.size)]), np.array([0.0, reach, reach])
    score = dr if observational else _perfect_qini_score(y, treatment)
    sums = _Ranked(score, _columns(treatment, outcome)).cumsums()
    return _with_origin(*_curve("qini", sums, _totals(sums), observational))


def qini_auc_score(y, uplift, treatment, *, negative_effect: bool = True, dr=None) -> float:
    """Qini coefficient: area between the Qini curve and the random-targeting chord, over the perfect one's.

    Equals ``sklift.metrics.qini_auc_score``. 1 = perfect ranking, 0 = no better than random.

    Parameters
    ----------
    y, uplift, treatment, dr : arrays
        As in :func:`uplift_curve`.
    negative_effect : bool
        Whether the perfect curve may exploit customers whom the campaign harms
        (see :func:`perfect_qini_curve`).

    Returns
    -------
    float

    Examples
    --------
    >>> round(qini_auc_score([1, 0, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 0, 1, 0, 1, 0]), 4)
    0.7692
    """
    y, uplift, treatment, dr = _validate(y, uplift, treatment, dr)
    if not isinstance(negative_effect, bool):
        raise UpliftInputError(f"negative_effect must be True or False, got {negative_effect!r}")
    value = _point(y, uplift, treatment, dr, _Metric("qini", negative_effect=negative_effect))
    if np.isnan(value) and not negative_effect:
        raise UpliftInputError(
            "qini_auc_score with negative_effect=False needs a total incremental outcome between 0 and the "
            "number of customers; it is outside that range here, so use negative_effect=True")
    return value


def uplift_auc_score(y, uplift, treatment, *, dr=None) -> float:
    """Normalised area under the uplift curve (AUUC), as ``sklift.metrics.uplift_auc_score``.

    Examples
    --------
    >>> round(uplift_auc_score([1, 0, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 0, 1, 0, 1, 0]), 4)
    0.8125
    """
    y, uplift, treatment, dr = _validate(y, uplift, treatment, dr)
    return _point(y, uplift, treatment, dr, _Metric("auuc"))


auuc = uplift_auc_score


def uplift_at_k(y, uplift, treatment, *, k: int | float = 0.3, strategy: Strategy = "overall",
                dr=None) -> float:
    """Observed uplift among the top ``k`` customers by predicted uplift, as ``sklift.metrics.uplift_at_k``.

    Parameters
    ----------
    y, uplift, treatment, dr : arrays
        As in :func:`uplift_curve`.
    k : float in (0, 1) or int
        Share of customers (``int(k * n)`` rows) or number of customers.
    strategy : {"overall", "by_group"}
        ``overall``: take the top ``k`` of all rows, then compare treated and control means there.
        ``by_group``: take the top ``k`` of the treated and of the control rows separately.

    Returns
    -------
    float
        Treated-minus-control mean outcome (with ``dr``: mean ``dr``) in the targeted rows.

    Examples
    --------
    >>> uplift_at_k([1, 0, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 0, 1, 0, 1, 0], k=0.5)
    0.5
    """
    y, uplift, treatment, dr = _validate(y, uplift, treatment, dr)
    metric = _metric("uplift_at_k", y.size, treatment, k=k, strategy=strategy)
    value = _point(y, uplift, treatment, dr, metric)
    if not np.isfinite(value):
        raise UpliftInputError(
            f"uplift@k is undefined for k={k!r}, strategy={strategy!r}: the targeted rows lack treated or "
            "control customers; raise k or use strategy='by_group'")
    return value


def _metric(kind: str, n: int, treatment: np.ndarray, *, negative_effect: bool = True,
            k: int | float = 0.3, strategy: Strategy = "overall") -> _Metric:
    """A validated metric specification (k and strategy only matter for uplift@k)."""
    if kind == "uplift_at_k":
        k = _check_k(k, n)
        _check_strategy(strategy)
        if strategy == "by_group" and isinstance(k, int):
            smallest = int(min(treatment.sum(), n - treatment.sum()))
            if k > smallest:
                raise UpliftInputError(
                    f"k={k} exceeds the smaller group ({smallest} customers) for strategy='by_group'; "
                    "lower k")
    elif not isinstance(negative_effect, bool):
        raise UpliftInputError(f"negative_effect must be True or False, got {negative_effect!r}")
    return _Metric(kind, negative_effect=negative_effect, k=k, strategy=strategy)


# ---------------------------------------------------------------------------------------------------------
# Bootstrap confidence intervals
# ---------------------------------------------------------------------------------------------------------

_NAMES = {"qini": "qini", "qini_auc_score": "qini", "auuc": "auuc", "uplift_auc_score": "auuc",
          "uplift_at_k": "uplift_at_k"}
_FUNCTIONS = {qini_auc_score: "qini", uplift_auc_score: "auuc", uplift_at_k: "uplift_at_k"}


def _poisson_weights(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    # Inverse-CDF on float32 uniforms: several times faster than Generator.poisson, and uint8 keeps a
    # (B, n) chunk small. Truncation at _MAX_WEIGHT changes nothing measurable (P ~ 1e-6 per row).
    u = rng.random(shape, dtype=np.float32)
    weights = np.greater(u, _POISSON_CDF[0]).view(np.uint8)  # 0/1 bytes, reused in place as counts
    for threshold in _POISSON_CDF[1:3]:
        weights += u > threshold
    tail = np.flatnonzero(u > _POISSON_CDF[3])  # counts of 4 or more: ~2% of cells, looked up one by one
    weights.flat[tail] = np.searchsorted(_POISSON_CDF, u.flat[tail])
    return weights


def _summary(estimate: float, draws: np.ndarray, alpha: float, name: str) -> dict[str, float]:
    finite = draws[np.isfinite(draws)]
    if finite.size < draws.size:
        warnings.warn(f"{draws.size - finite.size} of {draws.size} bootstrap resamples left {name} undefined "
                      "(e.g. no control rows among the top k); the interval uses the rest", RuntimeWarning,
                      stacklevel=3)
    if finite.size < 2:
        return {"estimate": estimate, "lower": np.nan, "upper": np.nan, "se": np.nan}
    lower, upper = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return {"estimate": estimate, "lower": float(lower), "upper": float(upper),
            "se": float(finite.std(ddof=1))}


def _check_boot(n_boot: int, alpha: float) -> None:
    if not (isinstance(n_boot, int | np.integer) and n_boot >= 2):
        raise UpliftInputError(f"n_boot must be a whole number of at least 2, got {n_boot!r}")
    if not 0 < alpha < 1:
        raise UpliftInputError(f"alpha must be in (0, 1), got {alpha!r}")


class BootstrapDraws:
    """The Poisson(1) resampling weights of ``n_boot`` resamples from seed ``random_state``, drawn once per row
    count and shared by every set of scores of the same rows (the learners of a leaderboard: each would
    otherwise draw the very same weights again). Holds ``n_boot`` bytes a row; safe to share between threads.

    Examples
    --------
    >>> draws = BootstrapDraws(n_boot=50, random_state=0)
    >>> [c.shape for c in draws.chunks(100_000)]
    [(20, 100000), (20, 100000), (10, 100000)]
    >>> draws.chunks(100_000)[0] is draws.chunks(100_000)[0]
    True
    """

    def __init__(self, n_boot: int, random_state: int | None) -> None:
        self.n_boot, self.random_state = n_boot, random_state
        self._chunks: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def chunks(self, n: int) -> list[np.ndarray]:
        """The weights for ``n`` rows, as (B, n) uint8 chunks of about :data:`_CHUNK_CELLS` cells."""
        with self._lock:
            if n not in self._chunks:
                self._chunks[n] = list(_draw_chunks(self.n_boot, self.random_state, n))
            return self._chunks[n]


def _draw_chunks(n_boot: int, random_state: int | None, n: int) -> Iterator[np.ndarray]:
    """Poisson(1) weights of ``n_boot`` resamples of ``n`` rows, one (B, n) chunk of ~:data:`_CHUNK_CELLS` at a time."""
    rng = np.random.default_rng(random_state)
    per_chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_boot, per_chunk):
        yield _poisson_weights(rng, (min(per_chunk, n_boot - start), n))


def _bootstrap(scorer: _Scorer, metrics: dict[str, _Metric], n_boot: int, alpha: float,
               random_state: int | None, sample: tuple[_Scorer, float] | None = None,
               shared: BootstrapDraws | None = None) -> dict[str, dict[str, float]]:
    """Point estimates on ``scorer``; percentile CIs from Poisson bootstrap draws.

    With ``sample = (sub_scorer, scale)`` the draws are taken on ``sub_scorer`` (m of the n rows) and mapped
    back to the full sample as ``estimate + scale * (draw - sub_estimate)``, ``scale = sqrt(m / n)``: the
    m-out-of-n bootstrap (Bickel, Götze & van Zwet 1997), valid for these root-n-consistent statistics.
    """
    if isinstance(scorer, dict):  # point estimates computed elsewhere (streamed); draws from the sample
        estimates = scorer
    else:
        estimates = {name: float(v[0]) for name, v in scorer.scores(None, metrics).items()}
    boot, scale = (scorer, 1.0) if sample is None else sample
    centre = estimates if sample is None else {name: float(v[0]) for name, v in boot.scores(None, metrics).items()}
    draws: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
    for weights in _draw_chunks(n_boot, random_state, boot.n) if shared is None else shared.chunks(boot.n):
        for name, values in boot.scores(weights, metrics).items():
            draws[name].append(values)
    return {name: _summary(estimates[name], estimates[name] + scale * (np.concatenate(draws[name]) - centre[name]),
                           alpha, name) for name in metrics}


def _subsample(y, uplift, treatment, dr, max_rows: int | None, random_state: int | None):
    """``(sub_scorer, sqrt(m / n))`` on a random ``max_rows`` rows (each arm keeps its share), or None."""
    if max_rows is None or y.size <= max_rows:
        return None
    if not (isinstance(max_rows, int | np.integer) and max_rows >= 100):
        raise UpliftInputError(f"max_rows must be a whole number of at least 100, got {max_rows!r}")
    # A separate stream from the resampling weights, and stratified by arm so both arms are always present.
    rng = np.random.default_rng(None if random_state is None else [random_state, 1])
    rows = []
    for value in (1.0, 0.0):
        # int32 row numbers (half the memory of np.flatnonzero's int64 at tens of millions of rows), and the
        # same draws as rng.choice(group, size, replace=False).
        group = np.arange(y.size, dtype=np.int32 if y.size < 2**31 else np.int64)[treatment == value]
        size = max(1, int(round(max_rows * group.size / y.size)))
        rows.append(group[rng.choice(group.size, size, replace=False)])
        del group
    rows = np.sort(np.concatenate(rows))
    sub = _Scorer(*(None if a is None else a[rows].astype(np.float64) for a in (y, uplift, treatment, dr)))
    return sub, math.sqrt(rows.size / y.size)


def metric_ci(metric: str | Callable, y, uplift, treatment, *, dr=None, n_boot: int = 200,
              alpha: float = 0.05, random_state: int | None = 0, **metric_kwargs) -> dict[str, float]:
    """Point estimate and Poisson-bootstrap percentile interval of an uplift metric.

    The rows are ranked once; each resample gives every row a Poisson(1) count and the metric is read off
    weighted cumulative sums in that fixed order, so ties are treated exactly as in the point estimate. About
    ``n * n_boot`` cells are processed in chunks of ~2M (memory stays ~100 MB for any ``n``).

    Parameters
    ----------
    metric : str or callable
        ``"qini"`` (``qini_auc_score``), ``"auuc"`` (``uplift_auc_score``), ``"uplift_at_k"``, or one of
        those functions. Any other callable ``f(y, uplift, treatment, **metric_kwargs)`` is bootstrapped the
        slow way, by replicating rows and calling it ``n_boot`` times.
    y, uplift, treatment, dr : arrays
        As in :func:`uplift_curve`.
    n_boot : int
        Bootstrap resamples.
    alpha : float
        1 - confidence level of the interval.
    random_state : int or None
        Seed of the resampling.
    **metric_kwargs
        ``negative_effect`` for Qini; ``k`` and ``strategy`` for uplift@k.

    Returns
    -------
    dict
        ``estimate``, ``lower``, ``upper`` (percentile interval) and ``se`` (bootstrap standard deviation).
        Resamples where the metric is undefined are dropped with a warning.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.integers(0, 2, 2000); score = rng.normal(size=2000)
    >>> y = (rng.random(2000) < 0.1 + 0.1 * t * (score > 0)).astype(int)
    >>> ci = metric_ci("uplift_at_k", y, score, t, k=0.3)
    >>> ci["lower"] < ci["estimate"] < ci["upper"]
    True
    """
    y, uplift, treatment, dr = _validate(y, uplift, treatment, dr)
    _check_boot(n_boot, alpha)
    kind = _NAMES.get(metric) if isinstance(metric, str) else _FUNCTIONS.get(metric)
    if kind is not None:
        spec = _metric(kind, y.size, treatment, **metric_kwargs)
        return _bootstrap(_Scorer(y, uplift, treatment, dr), {kind: spec}, n_boot, alpha, random_state)[kind]
    if not callable(metric):
        raise UpliftInputError(
            f"unknown metric {metric!r}; use one of {', '.join(sorted(_NAMES))} or a callable")
    extra = {} if dr is None else {"dr": dr}
    estimate = float(metric(y, uplift, treatment, **extra, **metric_kwargs))
    rng = np.random.default_rng(random_state)
    draws = np.empty(n_boot)
    for b in range(n_boot):  # one call per resample: the price of an arbitrary callable
        rows = np.repeat(np.arange(y.size), _poisson_weights(rng, (1, y.size))[0])
        try:
            draws[b] = metric(y[rows], uplift[rows], treatment[rows],
                              **({} if dr is None else {"dr": dr[rows]}), **metric_kwargs)
        except UpliftInputError:
            draws[b] = np.nan
    return _summary(estimate, draws, alpha, getattr(metric, "__name__", "metric"))


def evaluate_scores(y, uplift, treatment, *, dr=None, k: int | float = 0.3, n_boot: int = 200,
                    random_state: int | None = 0, alpha: float = 0.05, max_rows: int | None = None,
                    draws: BootstrapDraws | None = None) -> dict[str, dict[str, float]]:
    """Qini coefficient, AUUC and uplift@k of one set of predictions, each with a bootstrap CI.

    The three metrics share one ranking and one set of bootstrap weights (one pass over the data).

    Parameters
    ----------
    y, uplift, treatment, dr : arrays
        As in :func:`uplift_curve`.
    k : float or int
        Targeted share (or count) for uplift@k (strategy ``"overall"``).
    n_boot, random_state, alpha
        As in :func:`metric_ci`.
    max_rows : int, optional
        With more rows than this, the bootstrap resamples a random ``max_rows`` of them (stratified by arm)
        and rescales the spread by ``sqrt(max_rows / n)`` (m-out-of-n bootstrap); the point estimates always
        use every row. Bounds the cost at ``max_rows * n_boot`` cells however large ``n`` is.
    draws : BootstrapDraws, optional
        Resampling weights shared with other calls on the same rows (its ``n_boot`` and ``random_state`` are
        used); the intervals are those of a call without it.

    Returns
    -------
    dict
        ``{"qini": {...}, "auuc": {...}, "uplift_at_k": {...}}``, each ``{estimate, lower, upper, se}``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> t = rng.integers(0, 2, 3000); score = rng.normal(size=3000)
    >>> y = (rng.random(3000) < 0.1 + 0.1 * t * (score > 0)).astype(int)
    >>> sorted(evaluate_scores(y, score, t, n_boot=50))
    ['auuc', 'qini', 'uplift_at_k']
    """
    large = max_rows is not None and np.size(y) >= max(_STREAM_ROWS, max_rows)
    y, uplift, treatment, dr = (_validate_blocks if large else _validate)(y, uplift, treatment, dr)
    _check_boot(n_boot, alpha)
    if draws is not None and (draws.n_boot, draws.random_state) != (n_boot, random_state):
        raise ValueError("draws were made for another n_boot or random_state")
    metrics = {"qini": _metric("qini", y.size, treatment), "auuc": _metric("auuc", y.size, treatment),
               "uplift_at_k": _metric("uplift_at_k", y.size, treatment, k=k)}
    sample = _subsample(y, uplift, treatment, dr, max_rows, random_state)
    streamed = _streamed_scores(y, uplift, treatment, dr, metrics) if large else None
    if large and streamed is None:
        y, uplift, treatment, dr = _validate(y, uplift, treatment, dr)
    scorer = streamed if streamed is not None else _Scorer(y, uplift, treatment, dr)
    return _bootstrap(scorer, metrics, n_boot, alpha, random_state, sample, draws)


# ---------------------------------------------------------------------------------------------------------
# Calibration table
# ---------------------------------------------------------------------------------------------------------

def uplift_by_decile(y, uplift, treatment, *, dr=None, n_bins: int = 10, alpha: float = 0.05) -> pd.DataFrame:
    """Predicted vs observed uplift in bins of predicted uplift (bin 1 = highest predicted).

    Rows are ranked as in the other metrics and cut into ``n_bins`` consecutive bins of near-equal size (the
    first ``n % n_bins`` bins get one extra row), so tied scores can straddle a bin edge.

    Parameters
    ----------
    y, uplift, treatment, dr : arrays
        As in :func:`uplift_curve`.
    n_bins : int
        Number of bins.
    alpha : float
        1 - confidence level of the observed-uplift interval.

    Returns
    -------
    DataFrame
        ``bin, n, n_treated, n_control, predicted_uplift`` (mean), ``observed_uplift`` (treated-minus-control
        difference in means, or mean ``dr``), ``observed_lower, observed_upper`` (normal interval with the
        Neyman standard error, or the standard error of mean ``dr``). Bins with fewer than two treated or
        control rows get NaN bounds.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.integers(0, 2, 1000); score = rng.normal(size=1000)
    >>> y = rng.normal(size=1000) + t * score
    >>> table = uplift_by_decile(y, score, t, n_bins=5)
    >>> table["n"].tolist(), bool(table["observed_uplift"].is_monotonic_decreasing)
    ([200, 200, 200, 200, 200], True)
    """
    # Large inputs are checked block by block and never copied whole as float64 (at 14M rows each copy is
    # 112 MB); each bin's rows are gathered and summed on their own.
    large = np.size(y) >= _STREAM_ROWS
    y, uplift, treatment, dr = (_validate_blocks if large else _validate)(y, uplift, treatment, dr)
    if not (isinstance(n_bins, int | np.integer) and 1 <= n_bins <= y.size):
        raise UpliftInputError(f"n_bins must be a whole number between 1 and the number of rows ({y.size})")
    order = _descending_order(uplift)
    size = np.full(n_bins, y.size // n_bins) + (np.arange(n_bins) < y.size % n_bins)
    starts = np.r_[0, np.cumsum(size)[:-1]]
    n_treated, predicted, observed, se = (np.zeros(n_bins) for _ in range(4))
    z = NormalDist().inv_cdf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(n_bins):
            idx = order[starts[b]:starts[b] + size[b]]
            tb = treatment[idx].astype(np.float64)
            n_treated[b] = tb.sum()
            predicted[b] = uplift[idx].astype(np.float64).sum() / size[b]
            if dr is None:
                yb = y[idx].astype(np.float64)
                means, variances = [], []
                for group, count in ((tb, n_treated[b]), (1.0 - tb, size[b] - n_treated[b])):
                    mean = (yb * group).sum() / count
                    # Deviations from the bin's own mean: safer than sum of squares minus square of sum.
                    variances.append((group * (yb - mean) ** 2).sum() / (count - 1))
                    means.append(mean)
                observed[b] = means[0] - means[1]
                se[b] = np.sqrt(variances[0] / n_treated[b] + variances[1] / (size[b] - n_treated[b]))
            else:
                db = dr[idx].astype(np.float64)
                observed[b] = db.sum() / size[b]
                se[b] = np.sqrt(((db - observed[b]) ** 2).sum() / (size[b] - 1) / size[b])
    n_control = size - n_treated
    if dr is None:
        se[(n_treated < 2) | (n_control < 2)] = np.nan
    return pd.DataFrame({
        "bin": np.arange(1, n_bins + 1), "n": size, "n_treated": n_treated.astype(int),
        "n_control": n_control.astype(int), "predicted_uplift": predicted,
        "observed_uplift": observed, "observed_lower": observed - z * se, "observed_upper": observed + z * se,
    })
