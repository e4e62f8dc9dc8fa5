"""Figures of a fitted study: Qini and uplift curves, calibration, average effects, segments, design checks, profit
and the drivers of uplift (SHAP).

Every function is named ``plot_*`` and returns a :class:`matplotlib.figure.Figure` built without
:mod:`matplotlib.pyplot`, so no global figure state leaks between calls (safe in notebooks, servers and the report)
and no display backend is needed: ``fig.savefig("x.png")`` renders with Agg. The figures take the tables and arrays
that the computing modules return (:mod:`uplift.evaluate`, :mod:`uplift.effects`, :mod:`uplift.design`,
:mod:`uplift.targeting`), or the fitted result and its data where they draw out-of-fold arrays; the only numbers
computed here are the curve points drawn (by :mod:`uplift.evaluate.metrics`). Effects on conversion outcomes are
drawn in percentage points, other outcomes in their own units (or the currency when one is given), always with
their 95% CI.

Examples
--------
>>> from uplift import Study, simulate_campaign
>>> df = simulate_campaign(2000, seed=3)
>>> truth = [c for c in df if c.startswith(("true_", "propensity"))] + ["revenue"]
>>> study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth)
>>> study = study.fit(["t"], n_folds=3, n_boot=20)
>>> fig = plot_qini(study.result, study.data)
>>> fig.axes[0].get_xlabel()
'share of customers targeted (highest predicted uplift first)'
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import uplift.evaluate.metrics as metrics
from uplift._display import effect_unit, fmt_ci
from uplift.errors import UpliftInputError

if TYPE_CHECKING:  # imported where a figure is drawn: matplotlib costs every `uplift` command ~0.5 s otherwise
    from matplotlib.figure import Figure

#: Colour-blind-safe palette (Okabe & Ito 2008), in the order learners / arms / estimands are drawn.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: Curves with more points than this are thinned before drawing: beyond it the PNG looks the same.
MAX_CURVE_POINTS = 2000
GREY = "0.55"


# ---------------------------------------------------------------------------------------------- helpers
def _new_figure(width: float = 7.0, height: float = 4.2) -> tuple[Figure, object]:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_subplot()
    ax.grid(True, color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def _plain(text: object) -> str:
    """Text drawn as written: matplotlib reads ``$...$`` as maths (``$100 - $200`` would lose its dollars).

    Examples
    --------
    >>> print(_plain("$100 - $200"))
    \\$100 - \\$200
    """
    return str(text).replace("$", r"\$")


def _title(ax, text: str, fontsize: float = 10, width: int = 78) -> None:
    """A title wrapped onto two lines rather than cut at the figure's edge (long arm names)."""
    ax.set_title("\n".join(textwrap.wrap(_plain(text), width)) or "", fontsize=fontsize)


def _message_figure(text: str) -> Figure:
    """A small figure that says why there is nothing to draw (instead of an empty axes)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 1.2), dpi=100)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color="0.3", wrap=True)
    return fig


def _thin_index(n: int) -> np.ndarray:
    """At most MAX_CURVE_POINTS evenly spaced positions of n, always keeping both ends."""
    return np.unique(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS)).round().astype(int))


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = _thin_index(len(x))
    return x[keep], y[keep]


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise UpliftInputError(f"expected the {what} table (a DataFrame), got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UpliftInputError(f"{what} table lacks column(s) {', '.join(missing)}; pass the table returned "
                               f"by the study (columns: {', '.join(map(str, table.columns))})")


# ---------------------------------------------------------------------------------------------- curves
def _training_rows(result, data) -> tuple[np.ndarray, np.ndarray]:
    """Arm code and modelled outcome of every training row: from the data, or kept in the fitted result."""
    if data is not None:
        return data.treatment, data.outcomes[result.outcome]
    cf = result.crossfit
    if cf.treatment is None or cf.y is None:
        raise UpliftInputError("this model directory predates the kept treatment and outcome vectors; pass the "
                               "training data (CLI: --data) to draw the curves")
    return cf.treatment, cf.y


def _gain_curves(result, data, kind: str, learners: Sequence[str] | None, arm: str | None,
                 max_learners: int) -> Figure:
    cf = result.crossfit
    a = result.arm_code(arm)
    treatment, outcome = _training_rows(result, data)
    pair = cf.in_arm(treatment, a)
    y = outcome[pair]
    t = (treatment[pair] == a).astype(int)
    # Observational designs score rankings with the doubly-robust scores, exactly as the leaderboard does.
    dr = cf.dr[pair, a - 1] if cf.design == "observational" else None
    board = result.leaderboard
    board = board[board["arm"] == result.arms[a]]
    if learners is None:
        learners = list(board.sort_values("rank")["learner"])[:max_learners]
    unknown = [name for name in learners if name not in cf.uplift]
    if unknown:
        raise UpliftInputError(f"learner {unknown[0]!r} was not fitted; fitted: {', '.join(cf.uplift)}")
    curve_fn = metrics.qini_curve if kind == "qini" else metrics.uplift_curve
    score = "qini" if kind == "qini" else "auuc"

    fig, ax = _new_figure()
    end = 0.0
    for i, name in enumerate(learners):
        x, gain = curve_fn(y, cf.uplift[name][pair, a - 1], t, dr=dr)
        x, gain = np.ravel(x), np.ravel(gain)
        share = x / x[-1]
        label = f"{name}-learner" if name != "ensemble" else "ensemble"
        if (board["learner"] == name).any():
            row = board[board["learner"] == name].iloc[0]
            ci = fmt_ci(row[score], row[f"{score}_lower"], row[f"{score}_upper"])
            label += f"  ({score.upper()} {ci})"
        ax.plot(*_thin(share, gain), color=PALETTE[i % len(PALETTE)], lw=1.6, label=_plain(label))
        end = gain[-1]
    # Random targeting gains in proportion to the share targeted: a straight line to the overall gain.
    ax.plot([0, 1], [0, end], color=GREY, lw=1.2, ls="--", label="random targeting")
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of customers targeted (highest predicted uplift first)")
    what = "treated customers only (Qini)" if kind == "qini" else "all targeted customers"
    ax.set_ylabel(_plain(f"incremental {result.outcome}"))
    title = "Qini curve" if kind == "qini" else "Uplift curve"
    arms = result.arms
    arm_text = f", arm {arms[a]} vs control {arms[0]}" if len(arms) > 2 else ""
    _title(ax, f"{title}: out-of-fold, {what}{arm_text}")
    ax.legend(fontsize=8, loc="best", frameon=False)
    fig.tight_layout()
    return fig


def plot_qini(result, data, learners: Sequence[str] | None = None, arm: str | None = None, *,
              max_learners: int = 4) -> Figure:
    """Out-of-fold Qini curves of the top learners, with the random-targeting line.

    Parameters
    ----------
    result : FitResult
        The fitted result (:attr:`uplift.Study.result`): out-of-fold uplift and the leaderboard.
    data : CampaignData or None
        The data it was fitted on (:attr:`uplift.Study.data`): treatment and outcome of each row. None: the
        treatment and outcome vectors the fitted result keeps (no features, no ids).
    learners : list of str, optional
        Learners to draw (default: the ``max_learners`` best of the leaderboard).
    arm : str, optional
        Treated arm compared with control (default: the first treated arm).
    max_learners : int
        How many learners to draw when ``learners`` is not given.

    Returns
    -------
    matplotlib.figure.Figure
        The legend gives each learner's Qini coefficient with its 95% bootstrap CI.

    Examples
    --------
    >>> # fig = plot_qini(study.result, study.data); fig.savefig("qini.png")
    """
    return _gain_curves(result, data, "qini", learners, arm, max_learners)


def plot_uplift_curve(result, data, learners: Sequence[str] | None = None, arm: str | None = None, *,
                      max_learners: int = 4) -> Figure:
    """Out-of-fold uplift (gain) curves of the top learners, with the random-targeting line.

    Parameters and return value as in :func:`plot_qini`; the legend gives AUUC with its 95% CI.

    Examples
    --------
    >>> # fig = plot_uplift_curve(study.result, study.data, learners=["t", "dr"]); fig.savefig("uplift.png")
    """
    return _gain_curves(result, data, "uplift", learners, arm, max_learners)


# ---------------------------------------------------------------------------------------------- calibration
def plot_calibration(table: pd.DataFrame, *, kind: str, currency: str | None = None) -> Figure:
    """Predicted vs observed uplift by decile of predicted uplift, with 95% CI bars on the observed uplift.

    Parameters
    ----------
    table : DataFrame
        The calibration table (:attr:`uplift.fit.result.FitResult.calibration`, :meth:`uplift.Study.calibration`).
    kind : {"binary", "continuous"}
        Outcome kind, for the units (:attr:`uplift.fit.result.FitResult.kind`).
    currency : str, optional
        Unit of a continuous outcome that is money (e.g. ``"$"``).

    Returns
    -------
    matplotlib.figure.Figure
        Points on the dashed diagonal are well calibrated; one colour per treated arm.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"arm": "1", "bin": [1, 2], "predicted_uplift": [0.05, 0.01],
    ...                       "observed_uplift": [0.04, 0.0], "observed_lower": [0.01, -0.02],
    ...                       "observed_upper": [0.07, 0.02]})
    >>> fig = plot_calibration(table, kind="binary")
    >>> fig.axes[0].get_xlabel()
    'mean predicted uplift (percentage points)'
    """
    _require(table, ("predicted_uplift", "observed_uplift", "observed_lower", "observed_upper"),
             "calibration")
    unit = effect_unit(kind, currency)
    scale = unit.scale
    fig, ax = _new_figure(6.0, 4.8)
    arms = table["arm"].unique() if "arm" in table else [None]
    for i, arm in enumerate(arms):
        part = table if arm is None else table[table["arm"] == arm]
        x = part["predicted_uplift"].to_numpy(float) * scale
        y = part["observed_uplift"].to_numpy(float) * scale
        err = np.vstack([y - part["observed_lower"].to_numpy(float) * scale,
                         part["observed_upper"].to_numpy(float) * scale - y])
        label = f"arm {arm}" if arm is not None and len(arms) > 1 else "decile of predicted uplift"
        ax.errorbar(x, y, yerr=err, fmt="o", color=PALETTE[i % len(PALETTE)], ms=5, capsize=3, lw=1.2,
                    label=label)
    # The diagonal spans the predictions (padded), not the CIs: wide CIs would squeeze the points together.
    pred = table["predicted_uplift"].to_numpy(float) * scale
    pred = pred[np.isfinite(pred)]
    lo, hi = (pred.min(), pred.max()) if pred.size else (-1.0, 1.0)
    pad = 0.25 * (hi - lo) if hi > lo else 1.0
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color=GREY, ls="--", lw=1.0, label="perfect calibration")
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xlabel(_plain(f"mean predicted uplift ({unit.long})"))
    ax.set_ylabel(_plain(f"observed uplift, 95% CI ({unit.long})"))
    ax.set_title("Calibration: out-of-fold predicted vs observed uplift by decile", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- effects
def plot_ate(table: pd.DataFrame) -> Figure:
    """Forest plot of the average effects with 95% CIs: one panel per outcome, one row per arm and estimand.

    For observational designs the naive (unadjusted) difference is drawn beside the adjusted ATE/ATT, so the
    size of the confounding correction is visible.

    Parameters
    ----------
    table : DataFrame
        The average-effects table (:attr:`uplift.fit.result.FitResult.ate`, :meth:`uplift.Study.ate`), drawn in
        its display units (``estimate_display``, ``lower_display``, ``upper_display`` and ``unit``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"arm": "1", "outcome": "conversion", "estimand": ["ATE", "ATT"],
    ...                       "estimate_display": [1.2, 1.3], "lower_display": [0.1, 0.2],
    ...                       "upper_display": [2.3, 2.4], "unit": "pp"})
    >>> fig = plot_ate(table)
    >>> fig.axes[0].get_xlabel()
    'effect on conversion (pp), 95% CI'
    """
    from matplotlib.figure import Figure
    _require(table, ("arm", "outcome", "estimand", "estimate_display", "lower_display", "upper_display",
                     "unit"), "ATE")
    outcomes = list(dict.fromkeys(table["outcome"]))
    estimands = list(dict.fromkeys(table["estimand"]))
    colour = {e: PALETTE[i % len(PALETTE)] for i, e in enumerate(estimands)}
    rows_max = max(len(table[table["outcome"] == o]) for o in outcomes)
    fig = Figure(figsize=(7, 0.9 + (0.42 * rows_max + 0.9) * len(outcomes)), dpi=100)
    axes = fig.subplots(len(outcomes), 1, squeeze=False)[:, 0]
    for ax, outcome in zip(axes, outcomes, strict=True):
        part = table[table["outcome"] == outcome].reset_index(drop=True)
        pos = np.arange(len(part))[::-1]
        est = part["estimate_display"].to_numpy(float)
        err = np.vstack([est - part["lower_display"].to_numpy(float),
                         part["upper_display"].to_numpy(float) - est])
        for e in estimands:
            m = (part["estimand"] == e).to_numpy()
            if m.any():
                ax.errorbar(est[m], pos[m], xerr=err[:, m], fmt="s" if e == "naive" else "o", ms=6, capsize=4,
                            color=colour[e], lw=1.4, label=e)
        multi_arm = part["arm"].nunique() > 1
        ax.set_yticks(pos, [_plain(r.estimand + (f" (arm {r.arm})" if multi_arm else "")) for r in part.itertuples()])
        ax.axvline(0, color="0.3", lw=0.8)
        ax.grid(True, axis="x", color="0.9", lw=0.6)
        ax.set_ylim(-0.7, len(part) - 0.3)
        ax.set_xlabel(_plain(f"effect on {outcome} ({part['unit'].iloc[0]}), 95% CI"))
        ax.legend(fontsize=8, frameon=False, loc="best")
    axes[0].set_title("Average effect of the campaign vs control", fontsize=10)
    fig.tight_layout()
    return fig


def plot_segments(segments_df: pd.DataFrame, *, kind: str, reference: float | Mapping[str, float] | None = None,
                  max_segments: int = 30, currency: str | None = None) -> Figure:
    """Uplift per segment with 95% CI bars (segments too small to act on drawn in grey).

    Parameters
    ----------
    segments_df : DataFrame
        The table of :func:`uplift.effects.segments.segment_uplift`: ``segment``, ``uplift``, ``lower``, ``upper``
        (and optionally ``n``, ``arm``, ``small``).
    kind : {"binary", "continuous"}
        Outcome kind, for the units (:attr:`uplift.fit.result.FitResult.kind`).
    reference : float or dict of arm -> float, optional
        Overall uplift (e.g. the ATE) drawn as a dotted line, in the table's (unscaled) units; with several arms,
        one dotted line per arm.
    max_segments : int
        Draw at most this many segments (the largest ones).
    currency : str, optional
        Unit of a continuous outcome that is money (e.g. ``"$"``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> seg = pd.DataFrame({"segment": ["channel = web", "channel = app"], "n": [900, 1100],
    ...                     "uplift": [0.03, 0.01], "lower": [0.01, -0.01], "upper": [0.05, 0.03]})
    >>> fig = plot_segments(seg, kind="binary")
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]  # top to bottom, in the table's order
    ['channel = web  (n=900)', 'channel = app  (n=1,100)']
    """
    _require(segments_df, ("segment", "uplift", "lower", "upper"), "segment")
    table = segments_df
    if len(table) > max_segments and "n" in table:
        table = table.nlargest(max_segments, "n").sort_index()
    table = table.reset_index(drop=True)
    if table.empty:
        return _message_figure("no segments to draw")
    unit = effect_unit(kind, currency)
    scale = unit.scale
    multi_arm = "arm" in table and table["arm"].nunique() > 1
    labels = [str(s) + (f" [arm {a}]" if multi_arm else "") + (f"  (n={int(n):,})" if n is not None else "")
              for s, a, n in zip(table["segment"], table["arm"] if "arm" in table else [None] * len(table),
                                 table["n"] if "n" in table else [None] * len(table), strict=True)]
    height = 0.8 + 0.34 * len(table)
    legend_height = 0.3  # inches below the axes: a legend inside them would cover segments' intervals
    fig, ax = _new_figure(7.5, height + legend_height)
    pos = np.arange(len(table))[::-1]
    est = table["uplift"].to_numpy(float) * scale
    err = np.vstack([est - table["lower"].to_numpy(float) * scale,
                     table["upper"].to_numpy(float) * scale - est])
    small = table["small"].to_numpy(bool) if "small" in table else np.zeros(len(table), bool)
    for mask, colour, label in ((~small, PALETTE[0], "segment uplift"),
                                (small, GREY, "too small to act on")):
        if mask.any():
            ax.errorbar(est[mask], pos[mask], xerr=err[:, mask], fmt="o", ms=5, capsize=3, color=colour,
                        lw=1.3, label=label)
    ax.axvline(0, color="0.3", lw=0.8)
    references = reference if isinstance(reference, Mapping) else {None: reference}
    for i, (arm, ref) in enumerate(references.items()):
        if ref is not None and np.isfinite(ref):
            ax.axvline(ref * scale, color=PALETTE[(1 + i) % len(PALETTE)], ls=":", lw=1.4,
                       label=_plain("overall average" + (f", arm {arm}" if arm is not None else "")))
    ax.set_yticks(pos, [_plain(label) for label in labels], fontsize=8)
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlabel(_plain(f"uplift ({unit.long}), 95% CI"))
    ax.set_title("Uplift by segment (mean doubly-robust score)", fontsize=10)
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, frameon=False, loc="lower center", ncol=min(len(names), 3))
    fig.tight_layout(rect=(0, legend_height / (height + legend_height), 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------- design checks
def plot_propensity_overlap(e, t, *, bounds: tuple[float, float] | None = (0.05, 0.95), bins: int = 40,
                       arm_labels: tuple[str, str] = ("control", "treated")) -> Figure:
    """Histograms of the estimated propensity per arm: where the arms overlap, comparisons are supported.

    Parameters
    ----------
    e : array (n,)
        Estimated P(treated | x) of each row.
    t : array (n,) of 0/1
        1 for the treated arm, 0 for control.
    bounds : (float, float), optional
        Propensity range outside which rows rest on extrapolation (shaded).
    bins : int
        Histogram bins on [0, 1].
    arm_labels : (str, str)
        Legend names of the control and treated arm.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = rng.integers(0, 2, 500)
    >>> fig = plot_propensity_overlap(np.clip(0.3 + 0.4 * t + rng.normal(0, 0.1, 500), 0, 1), t)
    >>> fig.axes[0].get_xlabel()
    'estimated propensity P(treated | features)'
    """
    e = np.asarray(e, dtype=float).ravel()
    t = np.asarray(t).ravel()
    if e.shape != t.shape:
        raise UpliftInputError(f"propensity and treatment differ in length ({e.size} vs {t.size}); "
                               "pass one propensity per row")
    ok = np.isfinite(e)
    e, t = e[ok], t[ok]
    fig, ax = _new_figure(7.0, 3.8)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for code, colour, name in ((0, PALETTE[0], arm_labels[0]), (1, PALETTE[1], arm_labels[1])):
        part = e[t == code]
        # Density, so arms of different sizes are comparable in shape.
        ax.hist(part, bins=edges, density=True, alpha=0.5, color=colour, label=f"{name} (n={part.size:,})")
    if bounds is not None:
        lo, hi = bounds
        ax.axvspan(0, lo, color="0.85", zorder=0)
        ax.axvspan(hi, 1, color="0.85", zorder=0, label=f"outside [{lo:g}, {hi:g}]")
    ax.set_xlim(0, 1)
    ax.set_xlabel("estimated propensity P(treated | features)")
    ax.set_ylabel("density")
    ax.set_title("Propensity overlap (out-of-fold)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_love(balance_df: pd.DataFrame, weighted_df: pd.DataFrame | None = None, *, threshold: float = 0.1,
              max_rows: int = 40) -> Figure:
    """Absolute standardized mean difference per feature, before (and after) weighting.

    Parameters
    ----------
    balance_df : DataFrame
        :func:`uplift.design.checks.balance_table` output (``feature``, ``level``, ``smd``; optional ``arm``),
        or one table with ``smd_before`` / ``smd_after`` columns.
    weighted_df : DataFrame, optional
        The same table after inverse-propensity weighting.
    threshold : float
        |SMD| above which a feature counts as imbalanced (dashed line).
    max_rows : int
        Draw at most this many rows (largest |SMD| first).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> bal = pd.DataFrame({"feature": ["age", "channel"], "level": [None, "web"], "smd": [0.25, -0.05]})
    >>> fig = plot_love(bal, bal.assign(smd=[0.02, 0.01]))
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['channel = web', 'age']
    """
    if "smd_before" in balance_df:
        before = balance_df.assign(smd=balance_df["smd_before"])
        after = balance_df.assign(smd=balance_df["smd_after"]) if "smd_after" in balance_df else None
    else:
        _require(balance_df, ("feature", "smd"), "balance")
        before, after = balance_df, weighted_df
    keys = ["arm", "feature", "level"]
    keys = [k for k in keys if k in before]
    multi_arm = "arm" in before and before["arm"].nunique() > 1

    def label(row) -> str:
        text = str(row["feature"])
        level = row.get("level")
        if level is not None and not (isinstance(level, float) and np.isnan(level)):
            text += f" = {level}"
        return text + (f" [arm {row['arm']}]" if multi_arm else "")

    table = before[keys].copy()
    table["before"] = before["smd"].abs().to_numpy(float)
    if after is not None:
        after_abs = after[keys].assign(after=after["smd"].abs().to_numpy(float))
        table["after"] = table.merge(after_abs, on=keys, how="left")["after"].to_numpy(float)
    table["label"] = [label(r) for _, r in before.iterrows()]
    table = table.sort_values("before", ascending=False, kind="stable").head(max_rows)
    table = table.iloc[::-1]  # largest at the top
    fig, ax = _new_figure(7.0, 1.0 + 0.26 * len(table))
    pos = np.arange(len(table))
    ax.scatter(table["before"], pos, color=PALETTE[1], s=22, label="unweighted", zorder=3)
    if "after" in table:
        ax.scatter(table["after"], pos, color=PALETTE[0], s=22, marker="D", label="after IPW", zorder=3)
    ax.axvline(threshold, color=GREY, ls="--", lw=1.0, label=f"|SMD| = {threshold:g}")
    ax.set_yticks(pos, [_plain(label) for label in table["label"]], fontsize=8)
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlim(left=0)
    ax.set_xlabel("absolute standardized mean difference (treated vs control)")
    ax.set_title("Covariate balance (love plot)", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- targeting
def plot_profit_curve(curve_df: pd.DataFrame, *, currency: str | None = None) -> Figure:
    """Cumulative profit against the share targeted: the honest estimate with its 95% band, the model's own
    expectation beside it, and the list's cut.

    Parameters
    ----------
    curve_df : DataFrame
        :func:`uplift.targeting.honest_profit_curve` (or :func:`uplift.targeting.allocation.profit_curve`)
        output: ``share_targeted``, ``expected_profit``, optionally ``estimated_profit`` with
        ``estimated_profit_lower``/``_upper`` (the honest, held-out doubly-robust value, drawn as the main line
        with a 95% band; the model's expectation is then the secondary, dashed line) and ``attrs["cutoff"]``
        (the row where the list stops: the budget cut).
    currency : str, optional
        Unit shown on the profit axis (default: none, the units of the cost and value given).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from uplift.targeting.allocation import profit_curve
    >>> curve = profit_curve(np.array([0.1, 0.3, 0.0]), 1.0, value=10.0, dr=np.array([0.2, 0.1, -0.1]))
    >>> [line.get_label() for line in plot_profit_curve(curve).axes[0].lines][:2]
    ['honest estimate (held-out, doubly robust)', 'model-expected (secondary)']
    """
    _require(curve_df, ("share_targeted", "expected_profit"), "profit curve")
    share = curve_df["share_targeted"].to_numpy(float)
    keep = _thin_index(len(share))
    fig, ax = _new_figure(7.0, 4.5)
    honest = {"estimated_profit", "estimated_profit_lower", "estimated_profit_upper"} <= set(curve_df.columns)
    if honest:
        est, lo, hi = (curve_df[c].to_numpy(float)[keep] for c in
                       ("estimated_profit", "estimated_profit_lower", "estimated_profit_upper"))
        ax.plot(share[keep], est, color=PALETTE[0], lw=1.8, label="honest estimate (held-out, doubly robust)")
        ax.plot(share[keep], curve_df["expected_profit"].to_numpy(float)[keep], color=GREY, lw=1.1, ls="--",
                label="model-expected (secondary)")
        ax.fill_between(share[keep], lo, hi, color=PALETTE[0], alpha=0.18, lw=0, label="95% CI of the estimate")
    else:
        ax.plot(share[keep], curve_df["expected_profit"].to_numpy(float)[keep], color=PALETTE[0], lw=1.6,
                label="expected profit (model)")
    cutoff = curve_df.attrs.get("cutoff")
    if cutoff is not None and 0 <= int(cutoff) < len(curve_df):
        x = share[int(cutoff)]
        n = int(curve_df["n_targeted"].iloc[int(cutoff)]) if "n_targeted" in curve_df else int(cutoff)
        ax.axvline(x, color="0.2", ls=":", lw=1.4, label=f"this list: {n:,} customers ({x:.0%})")
        if honest:
            y = float(curve_df["estimated_profit"].iloc[int(cutoff)])
            ax.plot([x], [y], "o", color=PALETTE[0], ms=5)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of customers targeted (in the list's order, then the rest best first)")
    from matplotlib.ticker import StrMethodFormatter
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))  # 30,000 as the tables write money
    ax.set_ylabel(f"cumulative incremental profit{f' ({_plain(currency)})' if currency else ''}")
    ax.set_title("Profit as the list grows: honest estimate vs the model's expectation", fontsize=10)
    # Below the axes: inside them the legend sat on the band or the budget cut.
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, frameon=False, loc="lower center", ncol=2)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------- drivers (SHAP)
def plot_shap_summary(explanation, *, max_display: int = 15, currency: str | None = None) -> Figure:
    """Beeswarm-style summary: one row per feature (strongest on top), one dot per customer.

    Dots are coloured by the feature's value (low blue → high red; categories in grey), so the plot shows
    both how much and in which direction each feature moves uplift.

    Parameters
    ----------
    explanation : Explanation
        The result of :func:`uplift.effects.explanation.explain`.
    max_display : int
        Most features drawn (the strongest ones).
    currency : str, optional
        Unit of a continuous outcome's SHAP values (money, e.g. ``"EUR"``), as the report's tables show it.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> # fig = plot_shap_summary(explain(study.result, study.data)); fig.savefig("shap_summary.png")
    """
    from matplotlib.figure import Figure
    ex = explanation
    unit = effect_unit(ex.kind, currency)
    order = [ex.feature_names.index(f) for f in ex.importance["feature"][:max_display]][::-1]
    fig = Figure(figsize=(7, 0.45 * len(order) + 1.5))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    points = None
    for pos, j in enumerate(order):
        x = ex.values[:, j] * unit.scale
        jitter = (rng.random(len(x)) - 0.5) * 0.6
        col = ex.codes[:, j] if ex.codes is not None else np.zeros(len(x))
        if ex.feature_names[j] in ex.categorical or not np.isfinite(col).any():
            ax.scatter(x, pos + jitter, s=6, color=GREY, alpha=0.6, linewidths=0)
            continue
        # Rank-normalise so one outlier does not wash out the colour scale.
        colour = pd.Series(col).rank(pct=True).to_numpy()
        points = ax.scatter(x, pos + jitter, s=6, c=colour, cmap="coolwarm", vmin=0, vmax=1, alpha=0.7,
                            linewidths=0)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(range(len(order)), [_plain(ex.feature_names[j]) for j in order])
    ax.set_xlabel(_plain(f"effect on predicted uplift ({unit.long})"))
    lo, hi = ex.surrogate_r2_ci
    _title(ax, f"What drives uplift ({ex.learner}-learner, arm {ex.arm}); "
               f"surrogate R² {fmt_ci(ex.surrogate_r2, lo, hi, digits=2)}", fontsize=9)
    if points is not None:
        bar = fig.colorbar(points, ax=ax, ticks=[0, 1], pad=0.01)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value")
    fig.tight_layout()
    return fig


def plot_shap_dependence(explanation, feature: str) -> Figure:
    """How one feature's value moves predicted uplift: its SHAP value against the feature, per customer.

    Categorical features show one column of dots per level with the level's mean marked.

    Parameters
    ----------
    explanation : Explanation
        The result of :func:`uplift.effects.explanation.explain`.
    feature : str
        One of the explained features.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> # fig = plot_shap_dependence(explain(study.result, study.data), "recency_days")
    """
    from matplotlib.figure import Figure
    ex = explanation
    if feature not in ex.feature_names:
        raise UpliftInputError(f"feature {feature!r} was not explained; "
                               f"features: {', '.join(ex.feature_names)}")
    j = ex.feature_names.index(feature)
    unit = effect_unit(ex.kind)
    y = ex.values[:, j] * unit.scale
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    raw = ex.data[feature]
    if feature in ex.categorical or not pd.api.types.is_numeric_dtype(raw):
        labels = raw.astype("string").fillna("missing").to_numpy(dtype=object)
        levels = sorted(set(labels), key=str)
        pos = pd.Index(levels).get_indexer(labels)
        rng = np.random.default_rng(0)
        jitter = (rng.random(len(pos)) - 0.5) * 0.5
        ax.scatter(pos + jitter, y, s=6, alpha=0.5, color="tab:blue", linewidths=0)
        means = np.bincount(pos, weights=y, minlength=len(levels)) / np.bincount(pos, minlength=len(levels))
        ax.scatter(range(len(levels)), means, marker="_", s=600, color="black", label="mean")
        ax.set_xticks(range(len(levels)), [_plain(v) for v in levels], rotation=30 if len(levels) > 5 else 0)
        ax.legend(loc="best", fontsize=8)
    else:
        x = raw.to_numpy(dtype=float, na_value=np.nan)
        ax.scatter(x, y, s=6, alpha=0.5, color="tab:blue", linewidths=0)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel(_plain(feature))
    ax.set_ylabel(_plain(f"effect on predicted uplift ({unit.long})"))
    _title(ax, f"{feature}: contribution to uplift ({ex.learner}-learner, arm {ex.arm})", fontsize=9)
    fig.tight_layout()
    return fig
